"""Fixtures of the Entra exchange tests (the helpers themselves live in ``entra_support``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from entra_support import ENTRA_TOKENS, Flavour, ScriptedServer


@pytest.fixture(scope="module")
def _module_server() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


@pytest.fixture
def server(_module_server: ScriptedServer, secret_registry: Any) -> Iterator[ScriptedServer]:
    """The module's server, reset; the tokens it issued join the session's secret scan at teardown."""
    _module_server.reset()
    secret_registry.register_all(ENTRA_TOKENS)
    yield _module_server
    secret_registry.register_all(issued.token for issued in _module_server.issued)


@pytest.fixture(params=["sync", "async"])
async def flavour(request: pytest.FixtureRequest) -> AsyncIterator[Flavour]:
    made = Flavour(request.param)
    yield made
    await made.close_all()

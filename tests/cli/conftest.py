"""Fixtures for the CLI tests: a shared in-process emulator and a clean environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cli_support import CONNECTION_STRING_ENV


@pytest.fixture(scope="package")
def emulator() -> Iterator[Any]:
    """One in-process emulator (short tokens allowed) for the CLI tests."""
    from acs_emulator import Emulator

    with Emulator(allow_short_tokens=True) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_connection_string_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process tests must not pick up a developer's real connection string.
    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)

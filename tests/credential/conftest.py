"""Fixtures of the credential tests: a fake clock, a manual scheduler and the sync/aio flavours."""

from __future__ import annotations

import pytest
from token_credential_helpers import FakeClock, Flavor, ManualScheduler

from azure.communication.common import _tokens


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scheduler(clock: FakeClock) -> ManualScheduler:
    return ManualScheduler(clock)


@pytest.fixture(params=["sync", "aio"])
def flavor(request: pytest.FixtureRequest, clock: FakeClock, scheduler: ManualScheduler) -> Flavor:
    return Flavor(request.param, clock, scheduler)


@pytest.fixture
def fresh_opaque_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget that this process already logged the opaque-token notice."""
    monkeypatch.setattr(_tokens, "_opaque_warned", False)

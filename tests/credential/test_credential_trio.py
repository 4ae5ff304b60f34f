"""The async credential under trio: the scenario table of the asyncio credential, and what trio adds.

pytest-trio is not installed (and pytest-asyncio runs every ``async def`` test under asyncio), so these are
plain test functions calling ``trio.run``. Time is the fake clock of the scenario table, or trio's
``MockClock`` (virtual time that jumps when every task sleeps) where trio's own timers are under test.
"""

from __future__ import annotations

import functools
import inspect
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import test_credential_lifecycle as lifecycle
import test_credential_scenarios as scenarios
import trio
import trio.testing
from token_credential_helpers import EPOCH, AsyncCredential, FakeClock, Flavor, ManualScheduler, Refresher, make_jwt

HOUR = 3600.0


_PARAMETERS = {"flavor", "clock", "scheduler", "mono"}


def _table() -> list[Callable[..., Any]]:
    """The async scenario functions (of the scenario and the lifecycle tables) that take only the flavour,
    its clocks and its scheduler."""
    found = []
    for module in (scenarios, lifecycle):
        for name, function in sorted(vars(module).items()):
            if not name.startswith("test_") or not inspect.iscoroutinefunction(function):
                continue
            parameters = set(inspect.signature(function).parameters)
            if "flavor" in parameters and parameters <= _PARAMETERS:
                found.append(function)
    return found


SCENARIOS = _table()


def test_the_trio_table_is_most_of_the_scenario_table() -> None:
    assert len(SCENARIOS) >= 20


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f.__name__ for f in SCENARIOS])
def test_scenario_under_trio(scenario: Callable[..., Any]) -> None:
    clock = FakeClock()
    scheduler = ManualScheduler(clock)
    flavor = Flavor("trio", clock, scheduler)
    available: dict[str, Any] = {"flavor": flavor, "clock": clock, "scheduler": scheduler}
    parameters = inspect.signature(scenario).parameters
    if "mono" in parameters:
        # As the lifecycle table's fixture: a monotonic clock apart from the wall clock, driving the scheduler.
        available["mono"] = scheduler.clock = FakeClock(1_000.0)
    kwargs = {name: available[name] for name in parameters}
    trio.run(functools.partial(scenario, **kwargs))


def _credential(clock: FakeClock, refresher: Callable[[], Any], **kwargs: Any) -> Any:
    return AsyncCredential(token_refresher=refresher, _clock=clock, **kwargs)


def test_trio_callers_share_one_refresh() -> None:
    clock = FakeClock()
    token = make_jwt(EPOCH + HOUR)
    calls = []

    async def refresher() -> str:
        calls.append(1)
        await trio.sleep(0)
        return token

    async def main() -> None:
        credential = _credential(clock, refresher)
        results: list[str] = []

        async def call() -> None:
            results.append((await credential.get_token()).token)

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(call)
        assert results == [token] * 20
        assert calls == [1]
        await credential.close()

    trio.run(main)


def test_a_cancelled_trio_caller_does_not_cancel_the_refresh_for_the_others() -> None:
    clock = FakeClock()
    token = make_jwt(EPOCH + HOUR)
    release = trio.Event()

    async def refresher() -> str:
        await release.wait()
        return token

    async def main() -> None:
        credential = _credential(clock, refresher)
        got: list[str] = []

        async def patient() -> None:
            got.append((await credential.get_token()).token)

        async with trio.open_nursery() as nursery:
            with trio.CancelScope() as impatient:
                nursery.start_soon(patient)
                await trio.testing.wait_all_tasks_blocked()
                impatient.cancel()
                await credential.get_token()  # cancelled here, at once
            assert impatient.cancelled_caught
            release.set()
        assert got == [token]
        await credential.close()

    trio.run(main)


def test_trio_refresh_timeout_cancels_the_refresh_and_times_out_its_callers() -> None:
    clock = FakeClock()
    scheduler = ManualScheduler(clock)
    cancelled = []

    async def refresher() -> str:
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.append(1)
            raise
        return "never"

    async def main() -> None:
        credential = _credential(clock, refresher, _scheduler=scheduler, refresh_timeout=5)
        errors: list[BaseException] = []

        async def call() -> None:
            try:
                await credential.get_token()
            except TimeoutError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(call)
            await trio.testing.wait_all_tasks_blocked()
            clock.advance(5)
            assert scheduler.run_deadlines() == 1
        assert len(errors) == 3
        assert "refresh_timeout (5 s)" in str(errors[0])
        await trio.testing.wait_all_tasks_blocked()
        assert cancelled == [1]
        await credential.close()

    trio.run(main)


def test_trio_proactive_refresh_runs_in_a_system_task_on_trio_time() -> None:
    # No scheduler seam: the credential's own trio scheduler, on trio's virtual clock.
    mock = trio.testing.MockClock(autojump_threshold=0)
    tokens = []

    async def refresher() -> str:
        token = make_jwt(EPOCH + trio.current_time() + HOUR)
        tokens.append(token)
        return token

    async def main() -> None:
        credential = AsyncCredential(
            token_refresher=refresher,
            proactive_refresh=True,
            _clock=lambda: EPOCH + trio.current_time(),
            _monotonic=trio.current_time,
            _jitter=lambda: 0.0,
        )
        assert (await credential.get_token()).token == tokens[0]
        await trio.sleep(HOUR - 600 + 1)  # virtual time: past the first refresh_on
        assert len(tokens) == 2  # refreshed in the background, with nobody calling
        assert (await credential.get_token()).token == tokens[1]
        await credential.close()
        await trio.sleep(2 * HOUR)
        assert len(tokens) == 2  # closed: no more background refreshes

    trio.run(main, clock=mock)


def test_trio_refresher_reaching_its_credential_through_a_nursery() -> None:
    clock = FakeClock()
    holder: dict[str, Any] = {}

    async def refresher() -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(holder["credential"].get_token)
        return "never"

    async def main() -> None:
        credential = holder["credential"] = _credential(clock, refresher)
        with pytest.raises(Exception) as raised:  # the nursery wraps it in an exception group
            await credential.get_token()
        error = raised.value
        inner = getattr(error, "exceptions", (error,))
        assert [type(e) for e in inner] == [RuntimeError]
        assert "called get_token on its own" in str(inner[0])
        await credential.close()

    trio.run(main)


def test_credential_moves_from_one_trio_run_to_the_next_and_to_asyncio() -> None:
    import asyncio

    clock = FakeClock()
    refresher = Refresher(make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 2 * HOUR), make_jwt(EPOCH + 3 * HOUR))

    async def refresh() -> str:
        return refresher()  # type: ignore[no-any-return]

    credential = _credential(clock, refresh)

    async def use() -> str:
        return (await credential.get_token()).token  # type: ignore[no-any-return]

    assert trio.run(use) == make_jwt(EPOCH + HOUR)
    clock.advance(HOUR)
    assert trio.run(use) == make_jwt(EPOCH + 2 * HOUR)  # the first run has finished: rebound
    clock.advance(HOUR)
    assert asyncio.run(use()) == make_jwt(EPOCH + 3 * HOUR)
    assert refresher.calls == 3


def test_trio_is_never_imported_unless_it_runs() -> None:
    code = (
        "import asyncio, sys\n"
        "import azure.communication.common.aio as aio\n"
        "async def main():\n"
        "    async def refresh():\n"
        "        return 'an-opaque-token'\n"
        "    async with aio.CommunicationTokenCredential(token_refresher=refresh) as credential:\n"
        "        await credential.get_token()\n"
        "asyncio.run(main())\n"
        "assert 'trio' not in sys.modules, 'trio was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


def test_trio_closed_credential_and_times() -> None:
    clock = FakeClock()

    async def main() -> None:
        credential = AsyncCredential(make_jwt(EPOCH + HOUR), _clock=clock)
        info = await credential.get_token_info()
        assert info.refresh_on is None
        assert math.isclose(info.expires_on, EPOCH + HOUR)
        await credential.close()
        with pytest.raises(RuntimeError, match="closed"):
            await credential.get_token()

    trio.run(main)

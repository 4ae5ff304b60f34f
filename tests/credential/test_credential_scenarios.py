"""The credential's behaviour on a fake clock, each scenario run against the sync and the asyncio credential."""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import pickle
import re
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from token_credential_helpers import EPOCH, FakeClock, Flavor, ManualScheduler, Refresher, make_jwt

from azure.communication.common._refresh import EXPIRED_RESULT_MESSAGE

HOUR = 3600.0


class RefresherError(Exception):
    pass


# -- the four scenarios of the JS documentation --------------------------------------------------------


async def test_static_token_is_returned_even_when_expired(flavor: Flavor, clock: FakeClock) -> None:
    token = make_jwt(EPOCH + 60)
    credential = flavor.make(token)
    first = await flavor.get(credential)
    assert first.token == token
    assert first.expires_on == int(EPOCH) + 60
    clock.advance(HOUR)
    assert (await flavor.get(credential)).token == token
    info = await flavor.get_info(credential)
    assert (info.token, info.refresh_on) == (token, None)
    assert flavor.scheduler.entries == []


async def test_refresher_is_called_once_and_its_token_cached(flavor: Flavor, clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = Refresher(token)
    credential = flavor.make(token_refresher=refresher)
    assert refresher.calls == 0  # nothing happens at construction
    results = [await flavor.get(credential) for _ in range(3)]
    assert refresher.calls == 1
    assert {r.token for r in results} == {token}
    info = await flavor.get_info(credential)
    assert info.refresh_on == int(EPOCH + HOUR - 120)
    assert flavor.scheduler.entries == []  # no proactive refresh


async def test_proactive_refresh_starts_at_construction(flavor: Flavor, clock: FakeClock) -> None:
    tokens = [make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 2 * HOUR)]
    refresher = Refresher(*tokens)
    credential = flavor.make(token_refresher=refresher, proactive_refresh=True)
    assert flavor.scheduler.next_due(credential) == EPOCH  # due at once: there is no token yet
    assert await flavor.run_due(credential) == 1
    assert refresher.calls == 1
    assert (await flavor.get(credential)).token == tokens[0]
    assert refresher.calls == 1
    # The next background refresh is 10 minutes before expiry.
    assert flavor.scheduler.next_due(credential) == EPOCH + HOUR - 600
    clock.set(EPOCH + HOUR - 600)
    assert await flavor.run_due(credential) == 1
    assert refresher.calls == 2
    assert (await flavor.get(credential)).token == tokens[1]
    assert flavor.scheduler.next_due(credential) == EPOCH + 2 * HOUR - 600
    await flavor.close(credential)
    assert flavor.scheduler.live(credential) == []


async def test_proactive_with_initial_token_calls_the_refresher_only_when_needed(
    flavor: Flavor, clock: FakeClock
) -> None:
    initial, renewed = make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 2 * HOUR)
    refresher = Refresher(renewed)
    credential = flavor.make(initial, token_refresher=refresher, proactive_refresh=True)
    assert (await flavor.get(credential)).token == initial
    assert await flavor.run_due(credential) == 0
    assert refresher.calls == 0
    assert flavor.scheduler.next_due(credential) == EPOCH + HOUR - 600
    clock.set(EPOCH + HOUR - 601)
    assert await flavor.run_due(credential) == 0
    assert (await flavor.get(credential)).token == initial
    clock.advance(1)
    assert await flavor.run_due(credential) == 1
    assert refresher.calls == 1
    assert (await flavor.get(credential)).token == renewed


# -- windows and back-off ------------------------------------------------------------------------------


async def test_on_demand_window_is_two_minutes(flavor: Flavor, clock: FakeClock) -> None:
    initial, renewed = make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 2 * HOUR)
    refresher = Refresher(renewed)
    credential = flavor.make(initial, token_refresher=refresher)
    clock.set(EPOCH + HOUR - 120.001)
    assert (await flavor.get(credential)).token == initial
    assert refresher.calls == 0
    clock.set(EPOCH + HOUR - 120)
    assert (await flavor.get(credential)).token == renewed
    assert refresher.calls == 1


async def test_twenty_minute_token_backoff_series(flavor: Flavor, clock: FakeClock) -> None:
    # The refresher keeps returning the same 20-minute token: 10 min, then half the remaining life.
    token = make_jwt(EPOCH + 1200)
    refresher = Refresher(token)
    credential = flavor.make(token, token_refresher=refresher, proactive_refresh=True)
    dues = []
    for _ in range(5):
        due = flavor.scheduler.next_due(credential)
        dues.append(due - EPOCH)
        clock.set(due)
        assert await flavor.run_due(credential) == 1
    assert dues == [600, 900, 1050, 1125, 1162.5]
    assert refresher.calls == 5
    info = await flavor.get_info(credential)
    assert info.refresh_on == int(EPOCH + 1162.5 + (1200 - 1162.5) / 2)


async def test_on_demand_backoff_calls_at_half_the_remaining_life(flavor: Flavor, clock: FakeClock) -> None:
    token = make_jwt(EPOCH + 100)  # shorter than the on-demand window
    refresher = Refresher(token)
    credential = flavor.make(token_refresher=refresher)
    await flavor.get(credential)
    for expected_calls, at in [(1, 49.9), (2, 50), (2, 74.9), (3, 75), (4, 87.5)]:
        clock.set(EPOCH + at)
        assert (await flavor.get(credential)).token == token
        assert refresher.calls == expected_calls, at


async def test_refresh_on_requested_by_the_refresher_is_honoured_when_earlier(flavor: Flavor, clock: FakeClock) -> None:
    refresher = Refresher(AccessTokenInfo("tok", int(EPOCH + HOUR), refresh_on=int(EPOCH + 60)))
    credential = flavor.make(token_refresher=refresher)
    info = await flavor.get_info(credential)
    assert (info.token, info.refresh_on) == ("tok", int(EPOCH + 60))
    clock.set(EPOCH + 60)
    await flavor.get(credential)
    assert refresher.calls == 2


# -- failures --------------------------------------------------------------------------------------------


async def test_stale_token_is_kept_when_a_refresh_fails_and_retried_after_the_gap(
    flavor: Flavor, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="azure.communication.common")
    initial, renewed = make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 2 * HOUR)
    refresher = Refresher(RefresherError("secret-in-message"), renewed)
    credential = flavor.make(initial, token_refresher=refresher)
    clock.set(EPOCH + HOUR - 100)  # stale, 100 s left
    assert (await flavor.get(credential)).token == initial
    assert refresher.calls == 1
    # refresh_on reports the end of the retry gap: min(30 s, half of 100 s).
    info = await flavor.get_info(credential)
    assert info.refresh_on == int(EPOCH + HOUR - 70)
    clock.advance(29.9)
    assert (await flavor.get(credential)).token == initial
    assert refresher.calls == 1
    clock.advance(0.1)
    assert (await flavor.get(credential)).token == renewed
    assert refresher.calls == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "RefresherError" in warnings[0].getMessage()
    for record in caplog.records:
        assert "secret-in-message" not in record.getMessage()
        assert record.exc_info is None
        assert initial not in record.getMessage()


async def test_failure_gap_reraises_without_calling_then_doubles_and_resets(flavor: Flavor, clock: FakeClock) -> None:
    error = RefresherError("down")
    token = make_jwt(EPOCH + HOUR)
    refresher = Refresher(error, error, token)
    credential = flavor.make(token_refresher=refresher)
    with pytest.raises(RefresherError) as first:
        await flavor.get(credential)
    assert first.value is error
    clock.advance(0.99)
    with pytest.raises(RefresherError) as again:
        await flavor.get(credential)
    assert again.value is error
    assert refresher.calls == 1  # within the 1 s gap: not called
    clock.advance(0.01)
    with pytest.raises(RefresherError):
        await flavor.get(credential)
    assert refresher.calls == 2
    clock.advance(1.99)  # the gap doubled to 2 s
    with pytest.raises(RefresherError):
        await flavor.get(credential)
    assert refresher.calls == 2
    clock.advance(0.01)
    assert (await flavor.get(credential)).token == token
    assert refresher.calls == 3
    # A success resets the gap: the next failure waits 1 s again.
    refresher.results = [error, error]
    clock.set(EPOCH + HOUR + 1)
    with pytest.raises(RefresherError):
        await flavor.get(credential)
    clock.advance(1)
    with pytest.raises(RefresherError):
        await flavor.get(credential)
    assert refresher.calls == 5


async def test_expired_refresher_result_is_a_value_error_and_the_cache_is_kept(
    flavor: Flavor, clock: FakeClock
) -> None:
    initial = make_jwt(EPOCH + HOUR)
    refresher = Refresher(make_jwt(EPOCH + HOUR - 200))
    credential = flavor.make(initial, token_refresher=refresher)
    clock.set(EPOCH + HOUR - 100)
    assert (await flavor.get(credential)).token == initial  # stale: the failure is tolerated
    assert refresher.calls == 1
    clock.set(EPOCH + HOUR)
    with pytest.raises(ValueError, match=f"^{re.escape(EXPIRED_RESULT_MESSAGE)}$"):
        await flavor.get(credential)


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (42, "token_refresher result must be a token string"),
        (("user", AccessToken("t", 1)), r"result\[1\]\.token"),
        ("   ", "must not be empty"),
    ],
)
async def test_bad_refresher_results(flavor: Flavor, result: object, message: str) -> None:
    credential = flavor.make(token_refresher=Refresher(result))
    with pytest.raises((TypeError, ValueError), match=message):
        await flavor.get(credential)


async def test_refresher_that_calls_its_own_credential_gets_runtime_error(flavor: Flavor) -> None:
    holder: dict[str, Any] = {}

    def sync_refresher() -> str:
        return holder["credential"].get_token().token  # type: ignore[no-any-return]

    async def async_refresher() -> str:
        return (await holder["credential"].get_token()).token  # type: ignore[no-any-return]

    credential = flavor.cls(
        token_refresher=async_refresher if flavor.is_async else sync_refresher,
        _clock=flavor.clock,
    )
    holder["credential"] = credential
    with pytest.raises(RuntimeError, match="called get_token on its own"):
        await flavor.get(credential)


# -- close ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["static", "refresher", "proactive"])
async def test_close_is_idempotent_and_later_calls_raise(flavor: Flavor, scheduler: ManualScheduler, mode: str) -> None:
    token = make_jwt(EPOCH + HOUR)
    kwargs: dict[str, Any] = {}
    if mode != "static":
        kwargs["token_refresher"] = Refresher(token)
        kwargs["proactive_refresh"] = mode == "proactive"
    credential = flavor.make(token, **kwargs)
    assert (await flavor.get(credential)).token == token
    await flavor.close(credential)
    await flavor.close(credential)
    for call in (flavor.get, flavor.get_info):
        with pytest.raises(RuntimeError, match="is closed"):
            await call(credential)
    assert scheduler.live(credential) == []
    assert "closed=True" in repr(credential)


async def test_context_manager_closes(flavor: Flavor) -> None:
    token = make_jwt(EPOCH + HOUR)
    credential = flavor.make(token_refresher=Refresher(token), proactive_refresh=True)
    if flavor.is_async:
        async with credential as entered:
            assert entered is credential
            assert (await flavor.get(credential)).token == token
    else:
        with credential as entered:
            assert entered is credential
            assert (await flavor.get(credential)).token == token
    with pytest.raises(RuntimeError, match="is closed"):
        await flavor.get(credential)
    assert flavor.scheduler.live(credential) == []


async def test_closed_credential_never_starts_a_background_refresh(flavor: Flavor) -> None:
    refresher = Refresher(make_jwt(EPOCH + HOUR))
    credential = flavor.make(token_refresher=refresher, proactive_refresh=True)
    entry = flavor.scheduler.entries[0]
    await flavor.close(credential)
    assert entry.cancelled
    # Even if a scheduler ran the callback anyway, nothing starts.
    entry.callback(credential)
    await flavor.settle(credential)
    assert refresher.calls == 0


# -- background failures ---------------------------------------------------------------------------------


async def test_background_failures_are_logged_and_retried_with_backoff(
    flavor: Flavor, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="azure.communication.common")
    token = make_jwt(EPOCH + HOUR)
    error = RefresherError("secret")
    refresher = Refresher(error, error, error, token)
    credential = flavor.make(token_refresher=refresher, proactive_refresh=True)
    delays = []
    for _ in range(3):
        due = flavor.scheduler.next_due(credential)
        delays.append(due - clock())
        clock.set(due)
        assert await flavor.run_due(credential) == 1
    delays.append(flavor.scheduler.next_due(credential) - clock())
    assert delays == [0, 1, 2, 4]
    clock.advance(4)
    assert await flavor.run_due(credential) == 1
    assert refresher.calls == 4
    # Success: back to the proactive schedule, and the back-off resets.
    assert flavor.scheduler.next_due(credential) == EPOCH + HOUR - 600
    assert len([r for r in caplog.records if "RefresherError" in r.getMessage()]) == 3
    assert all("secret" not in r.getMessage() for r in caplog.records)


async def test_on_demand_refresh_replaces_the_background_schedule(flavor: Flavor, clock: FakeClock) -> None:
    initial, renewed = make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 3 * HOUR)
    refresher = Refresher(renewed)
    credential = flavor.make(initial, token_refresher=refresher, proactive_refresh=True)
    clock.set(EPOCH + HOUR - 300)  # stale, and before the background entry ran
    assert (await flavor.get(credential)).token == renewed
    assert flavor.scheduler.next_due(credential) == EPOCH + 3 * HOUR - 600
    assert await flavor.run_due(credential) == 0
    assert refresher.calls == 1


async def test_background_entry_firing_on_a_fresh_token_only_reschedules(flavor: Flavor, clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = Refresher(token)
    credential = flavor.make(token, token_refresher=refresher, proactive_refresh=True)
    flavor.scheduler.entries[0].callback(credential)  # early, e.g. a scheduler on another clock
    await flavor.settle(credential)
    assert refresher.calls == 0
    assert flavor.scheduler.next_due(credential) == EPOCH + HOUR - 600


# -- construction ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((), {}, ValueError, "needs a token, a token_refresher, or both"),
        (("t",), {"proactive_refresh": True}, ValueError, "proactive_refresh=True needs a token_refresher"),
        ((), {"token_refresher": "not callable"}, TypeError, "token_refresher must be a callable"),
        (("t",), {"resource_endpoint": "https://x"}, TypeError, "not both"),
        ((), {"token_refresher": str, "token_credential": object()}, TypeError, "not both"),
        ((), {"proactive_refresh": True, "scopes": ["s"]}, TypeError, "not both"),
        ((), {"resource_endpoint": "https://x"}, TypeError, "needs both resource_endpoint and token_credential"),
        (("t",), {"transport": object()}, TypeError, "unexpected keyword argument 'transport'"),
        ((b"token",), {}, TypeError, "decode the bytes"),
        (("  ",), {}, ValueError, "must not be empty"),
    ],
)
def test_constructor_errors(
    flavor: Flavor, args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        flavor.cls(*args, **kwargs)


async def test_not_picklable_or_copyable(flavor: Flavor) -> None:
    credential = flavor.make(make_jwt(EPOCH + HOUR))
    for attempt in (pickle.dumps, copy.copy, copy.deepcopy, lambda c: c.__reduce__()):
        with pytest.raises(TypeError, match="cannot be pickled or copied"):
            attempt(credential)


async def test_repr_shows_the_mode_never_the_token(flavor: Flavor) -> None:
    token = make_jwt(EPOCH + HOUR)
    static = flavor.make(token)
    refreshing = flavor.make(token, token_refresher=Refresher(token), proactive_refresh=True)
    assert repr(static) == f"{flavor.cls.__name__}(mode='static', proactive_refresh=False, closed=False)"
    assert "mode='refresher', proactive_refresh=True" in repr(refreshing)
    for credential in (static, refreshing):
        assert token not in repr(credential)
        assert token not in repr(await flavor.get(credential))
        assert token not in repr(await flavor.get_info(credential))
    await flavor.close(refreshing)


async def test_accepts_access_token_objects_and_opaque_strings(
    flavor: Flavor, clock: FakeClock, fresh_opaque_notice: None
) -> None:
    credential = flavor.make(AccessToken("opaque-1", int(EPOCH) + 30))
    assert (await flavor.get(credential)) == ("opaque-1", int(EPOCH) + 30)
    refresher = Refresher("opaque-2")
    credential = flavor.make(token_refresher=refresher)
    assert (await flavor.get(credential)).expires_on == int(EPOCH + 600)
    clock.advance(240)  # opaque tokens live 600 s: stale after 480 s (on-demand window)
    await flavor.get(credential)
    assert refresher.calls == 1
    clock.advance(240)
    await flavor.get(credential)
    assert refresher.calls == 2


# -- interrupted refreshes --------------------------------------------------------------------------------


async def test_interrupted_refresh_does_not_poison_the_credential(flavor: Flavor) -> None:
    token = make_jwt(EPOCH + HOUR)
    if flavor.is_async:
        # A refresher that raises CancelledError by itself (not because a caller was cancelled).
        interrupt: BaseException = asyncio.CancelledError()
        expected: type[BaseException] = RuntimeError
    else:
        interrupt = KeyboardInterrupt()
        expected = KeyboardInterrupt
    refresher = Refresher(interrupt, token)
    credential = flavor.make(token_refresher=refresher)
    with pytest.raises(expected):
        await flavor.get(credential)
    # No failure gap for an interruption: the next call refreshes at once.
    assert (await flavor.get(credential)).token == token
    assert refresher.calls == 2


async def test_async_refresher_must_return_an_awaitable(clock: FakeClock) -> None:
    from token_credential_helpers import AsyncCredential

    credential = AsyncCredential(
        token_refresher=lambda: make_jwt(EPOCH + HOUR),  # type: ignore[arg-type,return-value]
        _clock=clock,
    )
    with pytest.raises(TypeError, match="must return an awaitable"):
        await credential.get_token()


def test_exposed_times_are_whole_seconds_rounded_down(clock: FakeClock) -> None:
    from token_credential_helpers import SyncCredential

    credential = SyncCredential(token_refresher=lambda: make_jwt(EPOCH + HOUR + 0.9), _clock=clock)
    info = credential.get_token_info()
    assert info.expires_on == int(EPOCH + HOUR)
    assert info.refresh_on == math.floor(EPOCH + HOUR + 0.9 - 120)
    assert isinstance(info.expires_on, int)
    assert isinstance(info.refresh_on, int)

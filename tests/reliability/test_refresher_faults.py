"""The refresher fault matrix: one scenario table, run on the sync and the asyncio credential.

A scripted refresher raises, returns garbage, returns expired tokens, returns tokens that live one second,
succeeds only every third call, or hangs past the cached token's expiry. Simulated time (a fake clock moved
in 0.25 s steps, proactive refreshes run by the test) covers 20 minutes per case, with a caller at every
step. For each case:

- every token a caller gets is valid at the moment it gets it (its true expiry is after that moment);
- a caller sees an error only while no valid token exists (validity intervals of every token issued);
- the refresher is never called twice within a second (no tight loop) and the total stays within what the
  refresh rules allow (failure gaps up to 30 s, background back-off up to 5 minutes);
- once the refresher recovers, callers get tokens again within the longest gap, and a proactive credential
  recovers on its own, without any caller.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reliability_faults import (
    FLAVOURS,
    REACH_TIMEOUT,
    Flavour,
    Hang,
    ManualScheduler,
    Outcome,
    RefresherScript,
    settle,
)
from reliability_faults import FakeClock as Clock

from azure.communication.common._refresh import EXPIRED_RESULT_MESSAGE

SECRET_IN_ERROR = "refresher-error-text-c2VjcmV0LWluLWVycm9y"
STEP = 0.25
DURATION = 1200.0
INITIAL_LIFETIME = 300.0


class RefresherFailure(RuntimeError):
    pass


def _raises(script: RefresherScript, n: int, now: float) -> Any:
    raise RefresherFailure(f"token service said no ({SECRET_IN_ERROR})")


_GARBAGE: list[Any] = [object(), 12345, b"bytes-token", {"token": "x"}, "   ", None, ("a", "b")]


def _garbage(script: RefresherScript, n: int, now: float) -> Any:
    return _GARBAGE[(n - 1) % len(_GARBAGE)]


def _expired(script: RefresherScript, n: int, now: float) -> Any:
    return script.token(-5)


def _one_second(script: RefresherScript, n: int, now: float) -> Any:
    return script.token(1)


def _every_third(script: RefresherScript, n: int, now: float) -> Any:
    if n % 3:
        raise RefresherFailure(f"call {n} failed ({SECRET_IN_ERROR})")
    return script.token(3600)


# name -> (behaviour, the error types callers may see, whether the refresher ever succeeds on its own)
SCENARIOS: dict[str, tuple[Callable[[RefresherScript, int, float], Any], tuple[type[BaseException], ...], bool]] = {
    "raises": (_raises, (RefresherFailure,), False),
    "garbage": (_garbage, (TypeError, ValueError), False),
    "expired": (_expired, (ValueError,), False),
    "one-second": (_one_second, (), True),
    "every-third": (_every_third, (RefresherFailure,), True),
}

flavours = pytest.mark.parametrize("flavour", FLAVOURS, ids=lambda f: f.name)


@pytest.fixture(autouse=True)
def _shutdown_flavours() -> Iterator[None]:
    yield
    for flavour in FLAVOURS:
        flavour.shutdown()


scenarios = pytest.mark.parametrize("scenario", sorted(SCENARIOS))


def _initial(clock: Clock, script: RefresherScript) -> Any:
    return script.token(INITIAL_LIFETIME)


async def _simulate(
    flavour: Flavour,
    credential: Any,
    scheduler: ManualScheduler,
    clock: Clock,
    *,
    duration: float = DURATION,
    callers: bool = True,
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    end = clock() + duration
    while clock() < end:
        clock.advance(STEP)
        for _ in range(100):
            if scheduler.next_due() > clock():
                break
            await flavour.run_due(scheduler)
        else:
            pytest.fail("the background refresher keeps rescheduling itself at the same instant")
        if callers:
            try:
                token = await flavour.get_token(credential)
            except Exception as exc:
                outcomes.append(Outcome(clock(), error=exc))
            else:
                outcomes.append(Outcome(clock(), token=token))
    return outcomes


def _check(
    outcomes: list[Outcome],
    script: RefresherScript,
    allowed_errors: tuple[type[BaseException], ...],
    secret_registry: Any,
) -> None:
    expiry = {i.token: i.expires_on for i in script.issued}
    valid = sorted((i.at, i.expires_on) for i in script.issued if i.valid)
    checked: set[object] = set()
    for outcome in outcomes:
        if outcome.token is not None:
            true_expiry = expiry[outcome.token.token]
            assert true_expiry > outcome.at, f"an expired token was returned at {outcome.at - script.calls[0]:.2f}"
            assert outcome.token.expires_on == math.floor(true_expiry)
            if outcome.token.token not in checked:
                checked.add(outcome.token.token)
                assert outcome.token.token not in repr(outcome.token)
        else:
            assert outcome.error is not None
            assert isinstance(outcome.error, allowed_errors), repr(outcome.error)
            holders = [v for v in valid if v[0] <= outcome.at < v[1]]
            assert not holders, f"an error was raised at {outcome.at} while a valid token existed"
            if not isinstance(outcome.error, RefresherFailure) and id(outcome.error) not in checked:
                # Our own messages never quote the token; the refresher's own error is passed on unchanged.
                checked.add(id(outcome.error))
                secret_registry.assert_clean(outcome.error)
    gaps = [b - a for a, b in zip(script.calls, script.calls[1:], strict=False)]
    assert all(gap >= 1 - 1e-6 for gap in gaps), f"refresher called twice within a second: {min(gaps)}"


def _bound(duration: float, *, proactive: bool, succeeds: bool) -> float:
    """Most refresher calls the rules allow over ``duration`` seconds of failures.

    Stale window: retries at min(30 s, half the life left), about 10. No valid token: failure gaps 1, 2, 4 ...
    30 s, so 6 + duration / 30. Background: back-off 1 s ... 5 min, 9 + duration / 300. One-second tokens
    are the exception: one call per second is what they need.
    """
    if succeeds:
        return duration + 10
    return 10 + 6 + duration / 30 + ((9 + duration / 300) if proactive else 0)


@flavours
@scenarios
@pytest.mark.parametrize("initial", [True, False], ids=["initial-token", "no-initial-token"])
async def test_callers_under_a_faulty_refresher(
    flavour: Flavour, scenario: str, initial: bool, secret_registry: Any
) -> None:
    behaviour, allowed, succeeds = SCENARIOS[scenario]
    clock = Clock()
    script = RefresherScript(behaviour, clock)
    scheduler = ManualScheduler(clock)
    credential = flavour.credential(script, scheduler, token=_initial(clock, script) if initial else None)
    secret_registry.register(SECRET_IN_ERROR)
    try:
        outcomes = await _simulate(flavour, credential, scheduler, clock)
    finally:
        await flavour.close(credential)
    secret_registry.register_all(script.secrets)
    secret_registry.assert_clean(credential)

    _check(outcomes, script, allowed, secret_registry)
    calls = len(script.calls)
    assert calls <= _bound(DURATION, proactive=False, succeeds=succeeds)
    errors = [o for o in outcomes if o.error is not None]
    if scenario == "one-second":
        assert not errors
        # From the initial token's refresh_on (2 minutes before its expiry) on, one call per second of
        # simulated time: each token lives one second.
        expected = DURATION - (INITIAL_LIFETIME - 120 if initial else 0)
        assert expected - 5 <= calls <= expected + 5
    elif scenario == "every-third":
        if initial:
            # Two stale failures, then a one-hour token: the cached token covered the failures.
            assert not errors
            assert calls == 3
        else:
            assert calls == 3
            assert errors, "the first two failures had no valid token to fall back on"
            assert all(o.at < script.issued[0].at for o in errors)
    else:
        # Nothing valid ever comes: errors from the initial token's expiry on, and the refresher keeps being
        # tried at least every 30 s (plus a step).
        first_error_at = clock.now - DURATION + (INITIAL_LIFETIME if initial else 0)
        assert errors
        assert min(o.at for o in errors) >= first_error_at - 1e-6
        failing_span = DURATION - (INITIAL_LIFETIME if initial else 0)
        assert calls >= failing_span / (30 + STEP) - 1
        if scenario == "expired":
            assert all(str(o.error) == EXPIRED_RESULT_MESSAGE for o in errors if o.error is not None)
        if initial:
            # The stale window (refresh_on = expiry - 2 min) saw failures but callers only saw the token.
            assert all(o.token is not None for o in outcomes if o.at < first_error_at)


@flavours
@scenarios
async def test_callers_recover_when_the_refresher_recovers(
    flavour: Flavour, scenario: str, secret_registry: Any
) -> None:
    behaviour, allowed, _ = SCENARIOS[scenario]
    clock = Clock()
    script = RefresherScript(behaviour, clock, recover_at=clock.now + 700)
    scheduler = ManualScheduler(clock)
    credential = flavour.credential(script, scheduler, token=_initial(clock, script))
    try:
        outcomes = await _simulate(flavour, credential, scheduler, clock)
    finally:
        await flavour.close(credential)
    secret_registry.register_all(script.secrets)
    _check(outcomes, script, allowed, secret_registry)
    after = [o for o in outcomes if o.at >= script.recover_at]
    # The longest failure gap is 30 s: by then callers get tokens again, and only tokens.
    recovered = [o for o in after if o.at >= script.recover_at + 30 + STEP]
    assert recovered
    assert all(o.token is not None for o in recovered)


@flavours
@scenarios
async def test_proactive_refresh_recovers_on_its_own(flavour: Flavour, scenario: str, secret_registry: Any) -> None:
    behaviour, _, succeeds = SCENARIOS[scenario]
    clock = Clock()
    recover_at = clock.now + 900
    script = RefresherScript(behaviour, clock, recover_at=recover_at)
    scheduler = ManualScheduler(clock)
    credential = flavour.credential(script, scheduler, token=_initial(clock, script), proactive_refresh=True)
    try:
        if flavour.name == "async":
            await flavour.get_token(credential)  # binds the credential to this loop (proactive starts then)
        outcomes = await _simulate(flavour, credential, scheduler, clock, duration=DURATION, callers=False)
        assert outcomes == []
        secret_registry.register_all(script.secrets)
        calls_before = len(script.calls)
        assert calls_before <= _bound(DURATION, proactive=True, succeeds=succeeds)
        # Recovered without any caller: the last token came from a call after recover_at (back-off is at
        # most 5 minutes plus jitter), it is fresh, and getting it calls nothing.
        last = script.issued[-1]
        assert last.valid
        assert last.at <= recover_at + 300 + 5 + STEP
        if not succeeds:
            assert last.at >= recover_at
            assert last.expires_on == last.at + 3600
        token = await flavour.get_token(credential)
        assert token.token == last.token
        assert len(script.calls) == calls_before
        assert scheduler.pending() == 1, "exactly one scheduled refresh per proactive credential"
        gaps = [b - a for a, b in zip(script.calls, script.calls[1:], strict=False)]
        assert all(gap >= 1 - 1e-6 for gap in gaps)
    finally:
        await flavour.close(credential)
    assert scheduler.pending() == 0, "close() leaves a scheduled refresh behind"


# -- a refresher that hangs past the cached token's expiry -------------------------------------------------


async def _wait_started(script: RefresherScript) -> None:
    assert await asyncio.to_thread(script.started.wait, REACH_TIMEOUT), "the refresher was never called"


async def _assert_blocked(futures: list[asyncio.Future[Any]]) -> None:
    """The futures stay pending while the refresher hangs (checked after letting them run for a while)."""
    await settle()
    await asyncio.wait(futures, timeout=0.2)
    assert not any(f.done() for f in futures), "a caller returned while the only refresh was still hanging"


@flavours
@pytest.mark.parametrize("ending", ["succeeds", "fails"])
async def test_a_refresher_hanging_past_expiry(flavour: Flavour, ending: str, secret_registry: Any) -> None:
    def after(script: RefresherScript, now: float) -> Any:
        if ending == "fails":
            raise RefresherFailure(f"gave up ({SECRET_IN_ERROR})")
        return script.token(3600)

    clock = Clock()
    script = RefresherScript(lambda s, n, now: Hang(after), clock)
    scheduler = ManualScheduler(clock)
    credential = flavour.credential(script, scheduler, token=script.token(100))
    initial = script.issued[0]
    try:
        clock.advance(60)  # stale: refresh_on is half-way through a life shorter than the 2-minute window
        refreshing = flavour.start_get_token(credential)
        await _wait_started(script)
        # Stale with a refresh in flight: other callers get the cached token at once.
        cached = await flavour.get_token(credential)
        assert cached.token == initial.token
        clock.advance(90)  # now 50 s past the cached token's expiry; the refresher still hangs
        waiters = [flavour.start_get_token(credential) for _ in range(8)]
        await _assert_blocked([refreshing, *waiters])
        assert len(script.calls) == 1, "waiting callers started another refresh"
        script.release.set()
        results = await asyncio.gather(refreshing, *waiters, return_exceptions=True)
    finally:
        script.release.set()
        await flavour.close(credential)
    secret_registry.register_all(script.secrets)
    assert len(script.calls) == 1
    if ending == "succeeds":
        assert {r.token for r in results} == {script.issued[-1].token}
    else:
        # The refresher's error, unchanged, for every caller that waited on that refresh (no valid token).
        assert all(isinstance(r, RefresherFailure) for r in results)
        assert len({id(r) for r in results}) == 1


@flavours
async def test_a_hanging_background_refresh(flavour: Flavour, secret_registry: Any) -> None:
    clock = Clock()
    script = RefresherScript(lambda s, n, now: Hang(lambda sc, t: sc.token(3600)), clock)
    scheduler = ManualScheduler(clock)
    credential = flavour.credential(script, scheduler, token=script.token(100), proactive_refresh=True)
    initial = script.issued[0]
    background: list[Any] = []
    try:
        if flavour.name == "async":
            await flavour.get_token(credential)
        clock.advance(scheduler.next_due() - clock())
        background = await flavour.run_due(scheduler, in_background=True)
        await _wait_started(script)
        assert (await flavour.get_token(credential)).token == initial.token
        clock.advance(100)
        waiters = [flavour.start_get_token(credential) for _ in range(8)]
        await _assert_blocked(waiters)
        assert len(script.calls) == 1
        script.release.set()
        results = await asyncio.gather(*waiters)
        await asyncio.gather(*background)
        await settle()
        assert {r.token for r in results} == {script.issued[-1].token}
        assert len(script.calls) == 1
        assert scheduler.pending() == 1
    finally:
        script.release.set()
        await flavour.close(credential)
    secret_registry.register_all(script.secrets)
    assert scheduler.pending() == 0


@flavours
async def test_close_during_a_hanging_refresh_releases_every_waiter(flavour: Flavour) -> None:
    clock = Clock()
    script = RefresherScript(lambda s, n, now: Hang(lambda sc, t: sc.token(3600)), clock)
    scheduler = ManualScheduler(clock)
    credential = flavour.credential(script, scheduler)
    try:
        waiters = [flavour.start_get_token(credential) for _ in range(4)]
        await _wait_started(script)
        await _assert_blocked(waiters)
        await flavour.close(credential)
        script.release.set()
        results = await asyncio.gather(*waiters, return_exceptions=True)
    finally:
        script.release.set()
        await flavour.close(credential)
    assert all(isinstance(r, RuntimeError) and "closed" in str(r) for r in results), results
    assert len(script.calls) == 1
    with pytest.raises(RuntimeError, match="closed"):
        await flavour.get_token(credential)
    assert len(script.calls) == 1, "a refresher call started after close()"

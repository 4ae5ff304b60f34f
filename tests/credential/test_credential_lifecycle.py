"""The credential lifecycle of issue 11: one regression test (or a few) per reproduced defect, and the pure core.

Each section names the defect it pins. Time is a fake clock (a wall clock and a monotonic one, moved apart
where the defect is about them), schedules and deadlines run when the test says so, and races are real
threads and tasks coordinated by events, never by sleeping on a timer.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import itertools
import logging
import math
import os
import sys
import threading
import types
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from token_credential_helpers import (
    EPOCH,
    AsyncCredential,
    FakeClock,
    Flavor,
    ManualScheduler,
    Refresher,
    in_flight,
    in_thread,
    make_jwt,
)
from token_credential_helpers import SyncCredential as CommunicationTokenCredential
from token_credential_helpers import wait_for as _wait_for

import azure.communication.common as common
import azure.communication.common.aio as common_aio
from azure.communication.common import _lifecycle as lc
from azure.communication.common._refresh import PROACTIVE_WINDOW
from azure.communication.common._scheduler import TimerScheduler, _WorkerPool
from azure.communication.common._tokens import TokenSnapshot

HOUR = 3600.0
LOGGER = "azure.communication.common"
LIBRARY = os.path.dirname(common.__file__)


class RefresherError(Exception):
    pass


class Owner:
    """Something a scheduler can hold weakly."""


class Gate:
    """A sync refresher that blocks until released, then returns the next of ``results``."""

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> Any:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


# -- the pure core -------------------------------------------------------------------------------------------


def _state(window: float | None = 120.0, timeout: float | None = 60.0, snapshot: Any = None) -> lc.State:
    return lc.State(lc.Config(window, False, timeout, 600.0), snapshot or TokenSnapshot.empty())


def test_core_begin_runs_one_attempt_and_the_next_caller_waits_for_it() -> None:
    first, second = lc.Attempt(), lc.Attempt()
    state, effects = lc.step(_state(), lc.Begin(first), EPOCH, 100.0)
    assert effects == (lc.Run(first),)
    assert (state.attempt, first.deadline) == (first, 160.0)  # refresh_timeout on the monotonic clock
    state, effects = lc.step(state, lc.Begin(second), EPOCH, 101.0)
    assert effects == (lc.Wait(first),)


def test_core_finish_publishes_resolves_and_wakes() -> None:
    attempt = lc.Attempt()
    state, _ = lc.step(_state(), lc.Begin(attempt), EPOCH, 0.0)
    token = make_jwt(EPOCH + HOUR)
    state, effects = lc.step(state, lc.Finish(attempt, token), EPOCH, 1.0)
    kinds = [type(e) for e in effects]
    assert kinds[:3] == [lc.Publish, lc.Resolve, lc.Wake]
    assert state.attempt is None
    assert state.snapshot.token == token


def test_core_deadline_abandons_the_attempt_and_a_late_token_still_counts() -> None:
    attempt = lc.Attempt()
    state, _ = lc.step(_state(), lc.Begin(attempt), EPOCH, 0.0)
    state, effects = lc.step(state, lc.Expire(attempt), EPOCH, 60.0)
    resolve = next(e for e in effects if isinstance(e, lc.Resolve))
    assert resolve.abandoned
    assert isinstance(resolve.error, TimeoutError)
    assert "refresh_timeout (60 s)" in str(resolve.error)
    assert any(isinstance(e, lc.Log) and e.level == logging.WARNING for e in effects)
    assert state.attempt is None  # no longer in flight: the next caller starts a new attempt
    attempt.done = True  # what the shell's Resolve does
    state, effects = lc.step(state, lc.Finish(attempt, make_jwt(EPOCH + HOUR)), EPOCH + 70, 70.0)
    assert [type(e) for e in effects if not isinstance(e, lc.Log)] == [lc.Publish]
    assert state.snapshot.expires_on == EPOCH + HOUR


def test_core_a_caller_past_the_deadline_abandons_the_attempt_itself() -> None:
    first, second = lc.Attempt(), lc.Attempt()
    state, _ = lc.step(_state(), lc.Begin(first), EPOCH, 0.0)
    state, effects = lc.step(state, lc.Begin(second), EPOCH, 60.0)
    assert isinstance(effects[0], lc.Resolve)
    assert effects[0].attempt is first
    assert effects[-1] == lc.Run(second)
    assert state.attempt is second


def test_core_close_ends_the_attempt_in_flight() -> None:
    attempt = lc.Attempt()
    state, _ = lc.step(_state(), lc.Begin(attempt), EPOCH, 0.0)
    state, effects = lc.step(state, lc.Close(), EPOCH, 0.0)
    assert (state.closed, state.attempt) == (True, None)
    assert effects == (
        lc.Publish(lc.CLOSED_SNAPSHOT),
        lc.Unschedule(),
        lc.Resolve(attempt),
        lc.Wake(attempt),
        lc.Cancel(attempt),
    )
    assert lc.step(state, lc.Close(), EPOCH, 0.0) == (state, ())
    assert lc.step(state, lc.Begin(lc.Attempt()), EPOCH, 0.0)[1] == (lc.Raise(None),)


def test_core_without_refresh_timeout_an_attempt_has_no_deadline() -> None:
    attempt = lc.Attempt()
    state, _ = lc.step(_state(timeout=None), lc.Begin(attempt), EPOCH, 0.0)
    assert attempt.deadline == math.inf
    assert lc.step(state, lc.Begin(lc.Attempt()), EPOCH, 1e9)[1] == (lc.Wait(attempt),)


# -- 1. asyncio: a refresh task cancelled before its first step no longer wedges the credential -------------


async def test_refresh_task_cancelled_before_its_first_step_does_not_wedge(clock: FakeClock) -> None:
    refresher = Refresher(make_jwt(EPOCH + HOUR))

    async def refresh() -> str:
        return refresher()  # type: ignore[no-any-return]

    credential = AsyncCredential(token_refresher=refresh, _clock=clock)
    caller = asyncio.ensure_future(credential.get_token())
    await asyncio.sleep(0)  # the caller starts the refresh task, which has not run yet
    # A supervisor cancelling every task on a graceful restart.
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await asyncio.sleep(0)
    assert in_flight(credential) is None
    assert refresher.calls == 0
    assert (await credential.get_token()).token == make_jwt(EPOCH + HOUR)
    assert refresher.calls == 1
    await credential.close()


# -- 2. threads: an interrupt at any point between starting an attempt and the refresher call ---------------


def _interrupt_at_call(credential: Any, call: int) -> bool:
    """Run ``get_token`` raising ``KeyboardInterrupt`` on entry to the ``call``-th library function called
    while an attempt is in flight (function entry is where CPython delivers signals); ``False`` when the
    call made fewer calls than that."""
    fired = [False]
    seen = [0]

    def tracer(frame: types.FrameType, event: str, arg: Any) -> None:
        if (
            event == "call"
            and not fired[0]
            and frame.f_code.co_filename.startswith(LIBRARY)
            and in_flight(credential) is not None
        ):
            if seen[0] == call:
                fired[0] = True
                raise KeyboardInterrupt
            seen[0] += 1

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        credential.get_token()
    except KeyboardInterrupt:
        pass
    finally:
        sys.settrace(previous)
    return fired[0]


def test_keyboard_interrupt_anywhere_in_an_attempt_never_leaves_it_in_flight(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    for call in itertools.count():
        credential = CommunicationTokenCredential(token_refresher=lambda: token, _clock=clock)
        if not _interrupt_at_call(credential, call):
            break
        assert in_flight(credential) is None, f"attempt left in flight by an interrupt at call {call}"
        finished, result = in_thread(credential.get_token)
        assert finished, f"wedged by an interrupt at call {call}"
        assert result.token == token
    assert call > 3  # the test did walk the attempt's calls


# -- 3. gaps, retries and back-off run on the monotonic clock ----------------------------------------------


@pytest.fixture
def mono(flavor: Flavor) -> FakeClock:
    """A monotonic clock apart from the wall clock; the manual scheduler runs on it."""
    clock = FakeClock(1_000.0)
    flavor.scheduler.clock = clock
    return clock


async def test_failure_gap_is_not_stretched_by_a_wall_clock_step(flavor: Flavor, mono: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = Refresher(RefresherError("down"), token)
    credential = flavor.make(token_refresher=refresher, _monotonic=mono)
    with pytest.raises(RefresherError):
        await flavor.get(credential)
    flavor.clock.advance(-HOUR)  # the system clock is stepped back an hour
    with pytest.raises(RefresherError):
        await flavor.get(credential)  # within the 1 s gap: re-raised without calling
    assert refresher.calls == 1
    mono.advance(1)
    assert (await flavor.get(credential)).token == token
    assert refresher.calls == 2


async def test_stale_retry_is_not_stretched_by_a_wall_clock_step(flavor: Flavor, mono: FakeClock) -> None:
    initial, renewed = make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 2 * HOUR)
    refresher = Refresher(RefresherError("down"), renewed)
    credential = flavor.make(initial, token_refresher=refresher, _monotonic=mono)
    flavor.clock.set(EPOCH + HOUR - 60)  # stale
    assert (await flavor.get(credential)).token == initial  # the failed refresh keeps the cached token
    info = await flavor.get_info(credential)
    assert info.refresh_on == int(EPOCH + HOUR - 30)  # the public end of the 30 s retry gap
    flavor.clock.advance(-50)  # stepped back, still stale
    mono.advance(29.9)
    assert (await flavor.get(credential)).token == initial
    assert refresher.calls == 1
    mono.advance(0.1)
    assert (await flavor.get(credential)).token == renewed
    assert refresher.calls == 2


async def test_background_backoff_is_not_stretched_by_a_wall_clock_step(flavor: Flavor, mono: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = Refresher(RefresherError("down"), token)
    credential = flavor.make(token_refresher=refresher, proactive_refresh=True, _monotonic=mono)
    assert await flavor.run_due(credential) == 1
    assert refresher.calls == 1
    (retry,) = flavor.scheduler.live(credential)
    assert (retry.due, retry.wall_due) == (mono() + 1, None)  # a back-off: monotonic only
    flavor.clock.advance(-HOUR)
    mono.advance(1)
    assert await flavor.run_due(credential) == 1
    assert refresher.calls == 2
    (renewal,) = flavor.scheduler.live(credential)
    # A refresh computed from the token's expiry carries its wall-clock time too.
    assert renewal.wall_due == EPOCH + HOUR - PROACTIVE_WINDOW
    await flavor.close(credential)


def test_timer_follows_a_wall_clock_step_for_expiry_based_entries() -> None:
    wall, mono = FakeClock(EPOCH), FakeClock(1_000.0)
    timer = TimerScheduler(mono, wall_clock=wall, max_workers=1, idle_timeout=0.05)
    try:
        ran = threading.Event()
        owner = Owner()
        timer.schedule(mono() + HOUR, owner, lambda _: ran.set(), wall_due=EPOCH + HOUR)
        backoff = timer.schedule(mono() + 60, owner, lambda _: None)
        wall.advance(HOUR)  # suspend/resume or NTP: the wall clock jumped, the monotonic one did not
        timer.wake()
        assert ran.wait(10)
        assert backoff.due == mono() + 60  # a back-off stays where it was
    finally:
        timer.stop()


# -- 4. hung refreshers cannot starve the worker pool --------------------------------------------------------


def test_hung_refreshers_do_not_delay_a_healthy_refresh_beyond_the_grace(caplog: pytest.LogCaptureFixture) -> None:
    mono = FakeClock(1_000.0)
    timer = TimerScheduler(mono, max_workers=8, idle_timeout=0.05)
    release = threading.Event()
    hung = threading.Semaphore(0)
    owners = [Owner() for _ in range(9)]

    def hang(_: Owner) -> None:
        hung.release()
        release.wait(10)

    try:
        for owner in owners[:8]:
            timer.schedule(mono(), owner, hang)
        for _ in range(8):
            assert hung.acquire(timeout=10)
        healthy = threading.Event()
        timer.schedule(mono(), owners[8], lambda _: healthy.set())
        assert not healthy.wait(0.05)  # the eight workers of the bound are all busy
        mono.advance(5.1)  # they have been busy for longer than the grace: they stop counting
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            timer.wake()
            assert healthy.wait(10)
        assert len(timer._pool.threads) == 9
        grown = [r for r in caplog.records if "refresh pool grows past 8 workers" in r.getMessage()]
        assert len(grown) == 1
    finally:
        release.set()
        timer.stop()


def test_pool_hard_cap_is_reached_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    mono = FakeClock(0.0)
    pool = _WorkerPool(max_workers=1, idle_timeout=60.0, clock=mono, hard_cap=2)
    release = threading.Event()
    started = threading.Semaphore(0)
    owner = Owner()

    def hang(_: Owner) -> None:
        started.release()
        release.wait(10)

    try:
        pool.submit(hang, owner)
        assert started.acquire(timeout=10)
        pool.submit(hang, owner)
        mono.advance(6)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            pool.check(mono())
            assert started.acquire(timeout=10)
            pool.submit(hang, owner)
            mono.advance(6)
            pool.check(mono())
            pool.check(mono())
        assert len(pool.threads) == 2
        capped = [r for r in caplog.records if "reached its cap of 2 threads" in r.getMessage()]
        assert len(capped) == 1
    finally:
        release.set()
        pool.stop()


# -- 5. refresh_timeout ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), (math.inf, ValueError), (math.nan, ValueError), ("60", TypeError)],
)
def test_refresh_timeout_must_be_positive_and_finite(value: Any, error: type[Exception]) -> None:
    for cls in (common.CommunicationTokenCredential, common_aio.CommunicationTokenCredential):
        with pytest.raises(error, match="refresh_timeout"):
            cls("some-opaque-token", refresh_timeout=value)


def test_a_waiter_gets_timeout_error_and_a_new_attempt_may_start(
    clock: FakeClock, scheduler: ManualScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    late, fresh = make_jwt(EPOCH + 3 * HOUR), make_jwt(EPOCH + 2 * HOUR)
    entered, release = threading.Event(), threading.Event()
    calls = [0]

    def refresher() -> str:
        calls[0] += 1
        if calls[0] == 1:  # the first call hangs until released
            entered.set()
            assert release.wait(10)
            return late
        return fresh

    credential = CommunicationTokenCredential(
        token_refresher=refresher, _clock=clock, _scheduler=scheduler, refresh_timeout=30
    )
    runner = ThreadPoolExecutor(2)
    try:
        first = runner.submit(credential.get_token)  # runs the refresher on its own thread, which hangs
        assert entered.wait(10)
        waiter = runner.submit(credential.get_token)
        _wait_for(lambda: credential._cond is not None and len(credential._cond._waiters) == 1)  # type: ignore[attr-defined]
        clock.advance(30)
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert scheduler.run_deadlines() == 1
        with pytest.raises(TimeoutError, match=r"refresh_timeout \(30 s\)"):
            waiter.result(10)
        assert any("did not complete within refresh_timeout" in r.getMessage() for r in caplog.records)
        # The abandoned call no longer counts as in flight: this caller starts a new one.
        assert in_flight(credential) is None
        assert credential.get_token().token == fresh
        assert calls[0] == 2
        release.set()
        # The thread that ran the abandoned call returns when it does; its late token lives longer than the
        # cached one, so it is kept.
        assert first.result(10).token == late
        assert credential.get_token().token == late
    finally:
        release.set()
        runner.shutdown(wait=True)


async def test_async_callers_time_out_and_the_refresh_task_is_cancelled(
    clock: FakeClock, scheduler: ManualScheduler
) -> None:
    cancelled = asyncio.Event()

    async def hang() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    credential = AsyncCredential(token_refresher=hang, _clock=clock, _scheduler=scheduler, refresh_timeout=10)
    callers = [asyncio.ensure_future(credential.get_token()) for _ in range(3)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    clock.advance(10)
    assert scheduler.run_deadlines() == 1
    for caller in callers:
        with pytest.raises(TimeoutError, match="refresh_timeout"):
            await caller
    await asyncio.wait_for(cancelled.wait(), 10)
    assert in_flight(credential) is None
    await credential.close()


async def test_async_refresher_that_swallows_cancellation_does_not_hang_close(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.communication.common.aio import _credential as aio_credential

    monkeypatch.setattr(aio_credential, "CLOSE_GRACE", 0.01)
    entered = asyncio.Event()

    async def stubborn() -> str:
        entered.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                continue  # a refresher that ignores cancellation

    credential = AsyncCredential(token_refresher=stubborn, _clock=clock)
    caller = asyncio.ensure_future(credential.get_token())
    await entered.wait()
    await asyncio.wait_for(credential.close(), 10)
    with pytest.raises(RuntimeError, match="closed"):
        await caller
    task = next(t for t in asyncio.all_tasks() if t is not asyncio.current_task())
    task.get_coro().close()  # type: ignore[union-attr]  # end the stubborn coroutine for the test's teardown
    await asyncio.sleep(0)


# -- 6. a refresher reaching its own credential through a child task, or a context-copying executor -------


@pytest.mark.parametrize("via", ["gather", "create_task", "wait_for"])
async def test_async_refresher_reaching_its_credential_through_a_child_task(clock: FakeClock, via: str) -> None:
    holder: dict[str, Any] = {}

    async def refresher() -> str:
        inner = holder["credential"].get_token()
        if via == "gather":
            (token,) = await asyncio.gather(inner)
        elif via == "create_task":
            token = await asyncio.get_running_loop().create_task(inner)
        else:
            token = await asyncio.wait_for(inner, 10)
        return token.token  # type: ignore[no-any-return]

    credential = holder["credential"] = AsyncCredential(token_refresher=refresher, _clock=clock)
    with pytest.raises(RuntimeError, match="called get_token on its own"):
        await asyncio.wait_for(credential.get_token(), 10)
    await credential.close()


def test_sync_refresher_reaching_its_credential_through_an_executor(clock: FakeClock) -> None:
    holder: dict[str, Any] = {}
    pool = ThreadPoolExecutor(1)

    def refresher() -> str:
        # What asyncio.to_thread does: the executor thread runs in a copy of the refresher's context.
        future = pool.submit(contextvars.copy_context().run, holder["credential"].get_token)
        return future.result(10).token  # type: ignore[no-any-return]

    credential = holder["credential"] = CommunicationTokenCredential(token_refresher=refresher, _clock=clock)
    try:
        with pytest.raises(RuntimeError, match="called get_token on its own"):
            credential.get_token()
    finally:
        pool.shutdown(wait=True)


# -- 7. a caller cancelled in the iteration in which the refresh finishes is cancelled (3.10 too) ----------


def test_caller_cancelled_as_the_refresh_finishes_raises_cancelled_error(clock: FakeClock) -> None:
    # On Python 3.10 the old `getattr(task, "cancelling", None)` fallback returned the token to this caller.
    # Run by asyncio.run, not pytest-asyncio: on 3.10 its runner backport gives tasks a `cancelling()`, and
    # the plain tasks of a 3.10 program have none (CI runs this file on 3.10.13).
    token = make_jwt(EPOCH + HOUR)
    callers: list[asyncio.Task[Any]] = []

    async def refresher() -> str:
        await asyncio.sleep(0)
        # Cancel the first caller in the iteration in which the refresh completes: after the callbacks that
        # complete it (queued when this task ends, behind the first hop), before the caller resumes.
        loop = asyncio.get_running_loop()
        loop.call_soon(loop.call_soon, callers[0].cancel)
        return token

    async def scenario() -> bool:
        credential = AsyncCredential(token_refresher=refresher, _clock=clock)
        callers.append(asyncio.ensure_future(credential.get_token()))
        callers.append(asyncio.ensure_future(credential.get_token()))
        outcomes = await asyncio.gather(*callers, return_exceptions=True)
        assert isinstance(outcomes[0], asyncio.CancelledError)
        assert outcomes[1].token == token
        assert (await credential.get_token()).token == token
        await credential.close()
        return hasattr(callers[0], "cancelling")

    has_cancelling = asyncio.run(scenario())
    assert has_cancelling == (sys.version_info >= (3, 11))  # on 3.10 this exercised the 3.10 path


# -- 9. a cancelled close() still closes the exchanger -------------------------------------------------------


class _HangingExchanger:
    def __init__(self) -> None:
        self.closed = 0
        self.entered = asyncio.Event()

    async def __call__(self) -> Any:
        self.entered.set()
        while True:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                continue  # keeps close() waiting, so the test can cancel it there

    async def close(self) -> None:
        self.closed += 1


async def test_cancelled_close_still_closes_the_exchanger(clock: FakeClock) -> None:
    exchanger = _HangingExchanger()
    credential = AsyncCredential(
        resource_endpoint="https://contoso.communication.azure.com",
        token_credential=object(),
        _clock=clock,
        _exchanger_factory=lambda *args, **kwargs: exchanger,
    )
    caller = asyncio.ensure_future(credential.get_token())
    await exchanger.entered.wait()
    closing = asyncio.ensure_future(credential.close())
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert exchanger.closed == 1
    await credential.close()
    assert exchanger.closed == 1
    with pytest.raises(RuntimeError, match="closed"):
        await caller
    task = next(t for t in asyncio.all_tasks() if t is not asyncio.current_task())
    task.get_coro().close()  # type: ignore[union-attr]
    await asyncio.sleep(0)


# -- 10. no refresher call starts after close() returned ---------------------------------------------------


def _close_at_line(clock: FakeClock, line: int) -> tuple[bool, list[bool]]:
    """Run ``get_token`` calling ``close()`` at the ``line``-th line the library runs (without its lock held)
    while an attempt is in flight; ``(closed, [whether close() had returned, for each refresher call])``."""
    closed_at: list[bool] = []
    called_after_close: list[bool] = []

    def refresher() -> str:
        called_after_close.append(bool(closed_at))
        return make_jwt(EPOCH + HOUR)

    credential = CommunicationTokenCredential(token_refresher=refresher, _clock=clock)
    seen = [0]

    def local(frame: types.FrameType, event: str, arg: Any) -> Any:
        lock = credential._lock
        if (
            event == "line"
            and not closed_at
            and in_flight(credential) is not None
            and not (lock is not None and lock.locked())
        ):
            if seen[0] == line:
                credential.close()
                closed_at.append(True)
            seen[0] += 1
        return local

    def tracer(frame: types.FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(LIBRARY) else None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        credential.get_token()
    except RuntimeError:
        pass  # closed
    finally:
        sys.settrace(previous)
    return bool(closed_at), called_after_close


def test_no_refresher_call_starts_after_close_returned(clock: FakeClock) -> None:
    # close() is injected at every line the library runs (without its lock held) between publishing the
    # attempt and calling the refresher; the refresher must then never run.
    for line in itertools.count():
        closed, called_after_close = _close_at_line(clock, line)
        if not closed:
            break
        assert called_after_close in ([], [False]), f"refresher called after close() (line {line})"
    assert line > 0


# -- 11. collected credentials leave the scheduler; queued work holds its owner weakly -----------------------


def test_entries_of_collected_owners_leave_the_heap() -> None:
    mono = FakeClock(0.0)
    timer = TimerScheduler(mono, max_workers=1, idle_timeout=0.05)
    try:
        owners = [Owner() for _ in range(1_000)]
        for owner in owners:
            timer.schedule(mono() + 24 * HOUR, owner, lambda _: None)
        kept = Owner()
        timer.schedule(mono() + 24 * HOUR, kept, lambda _: None)
        assert timer.heap_size() == 1_001
        del owners, owner
        gc.collect()
        assert timer.heap_size() == 1  # compacted long before the entries come due
        assert timer.pending_for(kept) == 1
    finally:
        timer.stop()


def test_dropped_proactive_credentials_leave_the_heap(clock: FakeClock) -> None:
    timer = TimerScheduler(clock, max_workers=1, idle_timeout=0.05)
    token = make_jwt(EPOCH + 24 * HOUR)
    try:
        credentials = [
            CommunicationTokenCredential(
                token, token_refresher=lambda: token, proactive_refresh=True, _clock=clock, _scheduler=timer
            )
            for _ in range(200)
        ]
        assert timer.heap_size() == 200
        del credentials
        gc.collect()
        assert timer.heap_size() == 0
    finally:
        timer.stop()


def test_queued_work_does_not_keep_its_owner_alive() -> None:
    pool = _WorkerPool(max_workers=1, idle_timeout=60.0)
    busy, release = threading.Event(), threading.Event()
    keeper = Owner()
    ran: list[object] = []
    try:
        pool.submit(lambda _: (busy.set(), release.wait(10)), keeper)
        assert busy.wait(10)
        dropped = Owner()
        ref = weakref.ref(dropped)
        pool.submit(ran.append, dropped)
        del dropped
        gc.collect()
        assert ref() is None  # queued behind the busy worker, yet collected
        done = threading.Event()
        pool.submit(lambda _: done.set(), keeper)
        release.set()
        assert done.wait(10)
        assert ran == []
    finally:
        release.set()
        pool.stop()


# -- 12. a wrong loop, or no supported loop, fails at the first call -----------------------------------------


def test_credential_of_an_open_loop_used_from_another_fails_at_its_first_call(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    thread = threading.Thread(target=lambda: (asyncio.set_event_loop(loop), ready.set(), loop.run_forever()))
    thread.start()
    try:
        assert ready.wait(10)

        async def create() -> Any:
            return AsyncCredential(token, _clock=clock)  # bound to the thread's loop, with a fresh token

        credential = asyncio.run_coroutine_threadsafe(create(), loop).result(10)

        async def use() -> Any:
            return await credential.get_token()

        with pytest.raises(RuntimeError, match="bound to another event loop that is still open"):
            asyncio.run(use())  # its first call, from another loop: an error now, not in 59 minutes
        assert asyncio.run_coroutine_threadsafe(use(), loop).result(10).token == token
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_credential_under_an_unsupported_runner_fails_at_its_first_call() -> None:
    credential = common_aio.CommunicationTokenCredential(make_jwt(EPOCH + 10 * HOUR))
    coroutine = credential.get_token()
    # Driven by hand, as a runner that is neither asyncio nor trio would: no running loop, no trio run.
    with pytest.raises(RuntimeError, match="must be awaited under asyncio or trio"):
        coroutine.send(None)


# -- construction: private seams, async refreshers, the undecodable interval ----------------------------


PUBLIC_PARAMETERS = [
    "token",
    "token_refresher",
    "proactive_refresh",
    "refresh_timeout",
    "undecodable_token_expiry_interval",
    "resource_endpoint",
    "token_credential",
    "scopes",
    "pipeline_kwargs",
]


@pytest.mark.parametrize("cls", [common.CommunicationTokenCredential, common_aio.CommunicationTokenCredential])
def test_public_signature_shows_no_private_seam(cls: Any) -> None:
    import inspect

    parameters = inspect.signature(cls).parameters
    assert list(parameters) == PUBLIC_PARAMETERS
    assert parameters["refresh_timeout"].default == 60.0
    assert parameters["undecodable_token_expiry_interval"].default == 600.0
    with pytest.raises(TypeError, match="unexpected keyword argument '_clock'"):
        cls("some-opaque-token", _clock=lambda: 0.0)


class _AsyncCallable:
    async def __call__(self) -> str:
        return "never-used"


class _SyncCallable:
    def __call__(self) -> str:
        return make_jwt(EPOCH + HOUR)


async def _async_refresher() -> str:
    return "never-used"


@pytest.mark.parametrize(
    "refresher",
    [
        _async_refresher,
        __import__("functools").partial(_async_refresher),
        _AsyncCallable(),
        __import__("functools").partial(_AsyncCallable()),
    ],
    ids=["async-def", "partial", "async-call-object", "partial-of-object"],
)
def test_async_refresher_given_to_the_sync_credential_is_a_type_error(refresher: Any) -> None:
    with pytest.raises(TypeError, match=r"azure\.communication\.common\.aio"):
        common.CommunicationTokenCredential(token_refresher=refresher)


def test_sync_callable_objects_and_classes_are_still_refreshers(clock: FakeClock) -> None:
    credential = CommunicationTokenCredential(token_refresher=_SyncCallable(), _clock=clock)
    assert credential.get_token().token == make_jwt(EPOCH + HOUR)


async def test_undecodable_token_expiry_interval_is_honoured(
    flavor: Flavor, clock: FakeClock, fresh_opaque_notice: None, caplog: pytest.LogCaptureFixture
) -> None:
    refresher = Refresher("an-opaque-token-1", "an-opaque-token-2")
    credential = flavor.make(token_refresher=refresher, undecodable_token_expiry_interval=200)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        info = await flavor.get_info(credential)
    assert info.expires_on == int(EPOCH + 200)  # not the default 600 s
    assert any("assumed valid for 200 seconds" in r.getMessage() for r in caplog.records)
    static = flavor.make("an-opaque-static-token", undecodable_token_expiry_interval=30)
    assert (await flavor.get_info(static)).expires_on == int(EPOCH + 30)
    await flavor.close(credential)


@pytest.mark.parametrize(
    ("value", "error"), [(0, ValueError), (-5, ValueError), (math.inf, ValueError), ("1", TypeError)]
)
def test_undecodable_token_expiry_interval_must_be_positive_and_finite(value: Any, error: type[Exception]) -> None:
    for cls in (common.CommunicationTokenCredential, common_aio.CommunicationTokenCredential):
        with pytest.raises(error, match="undecodable_token_expiry_interval"):
            cls("some-opaque-token", undecodable_token_expiry_interval=value)


async def test_settle_helper_waits_for_a_background_refresh(flavor: Flavor) -> None:
    # The scenario tables rely on it: after run_due, the background refresh has finished.
    token = make_jwt(EPOCH + HOUR)
    credential = flavor.make(token_refresher=Refresher(token), proactive_refresh=True)
    flavor.scheduler.run_due()
    await flavor.settle(credential)
    assert in_flight(credential) is None
    assert (await flavor.get(credential)).token == token
    await flavor.close(credential)


def test_background_refresher_raising_system_exit_does_not_end_its_worker(
    clock: FakeClock, scheduler: ManualScheduler
) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = Refresher(SystemExit(3), token)
    credential = CommunicationTokenCredential(
        token_refresher=refresher, proactive_refresh=True, _clock=clock, _scheduler=scheduler
    )
    assert scheduler.run_due() == 1  # the worker's call returns: the SystemExit stays with the attempt
    assert in_flight(credential) is None
    assert len(scheduler.live(credential)) == 1  # the background retry is scheduled
    assert credential.get_token().token == token
    assert refresher.calls == 2

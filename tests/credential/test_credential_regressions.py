"""Regression tests for the findings of the credential code review (one section per finding).

Each test fails without its fix: the scenario the reviewer reproduced, driven by a fake clock, a manual
scheduler, events or a forked child (which reports through its exit code), never by sleeping on a timer.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from token_credential_helpers import (
    EPOCH,
    AsyncCredential,
    FakeClock,
    ManualScheduler,
    Refresher,
    in_flight,
    in_thread,
    make_jwt,
    refresh_task,
    settle_async,
)
from token_credential_helpers import SyncCredential as CommunicationTokenCredential
from token_credential_helpers import wait_for as _wait_for

from azure.communication.common import _scheduler
from azure.communication.common._refresh import PROACTIVE_WINDOW
from azure.communication.common._scheduler import TimerScheduler, _WorkerPool, default_scheduler
from azure.communication.common._tokens import (
    OPAQUE_TOKEN_LIFETIME,
    decode_jwt_payload,
    normalize_token,
    parse_jwt_expiry,
)

HOUR = 3600.0
LOGGER = "azure.communication.common"
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _fork() -> int:
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; forking such a process is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _child_exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


# -- 1. an async proactive credential created outside a loop starts its refresh at the first call -------


def _async_refresher(refresher: Refresher) -> Callable[[], Any]:
    async def refresh() -> Any:
        return refresher()

    return refresh


def test_async_proactive_credential_created_outside_a_loop_schedules_at_its_first_call(clock: FakeClock) -> None:
    scheduler = ManualScheduler(clock)
    first, second = AccessToken("first-token-1", int(EPOCH + HOUR)), make_jwt(EPOCH + 2 * HOUR)
    refresher = Refresher(second)
    credential = AsyncCredential(
        first,
        token_refresher=_async_refresher(refresher),
        proactive_refresh=True,
        _clock=clock,
        _scheduler=scheduler,
        _jitter=lambda: 0.0,
    )
    assert scheduler.live(credential) == []  # no loop yet: nothing to schedule on

    async def scenario() -> None:
        info = await credential.get_token_info()
        # The real snapshot comes back, not the never-fresh view that sent the call to the slow path.
        assert (info.token, info.refresh_on) == ("first-token-1", int(EPOCH + HOUR - PROACTIVE_WINDOW))
        assert scheduler.next_due(credential) == EPOCH + HOUR - PROACTIVE_WINDOW
        assert refresher.calls == 0
        clock.set(EPOCH + HOUR - PROACTIVE_WINDOW)
        assert scheduler.run_due() == 1  # the background refresh, with no caller waiting
        await settle_async(credential)
        assert refresher.calls == 1
        assert (await credential.get_token()).token == second
        await credential.close()

    asyncio.run(scenario())


def test_async_proactive_credential_moves_its_schedule_to_the_next_asyncio_run(clock: FakeClock) -> None:
    scheduler = ManualScheduler(clock)
    second = make_jwt(EPOCH + 2 * HOUR)
    refresher = Refresher(second)
    credential = AsyncCredential(
        make_jwt(EPOCH + HOUR),
        token_refresher=_async_refresher(refresher),
        proactive_refresh=True,
        _clock=clock,
        _scheduler=scheduler,
        _jitter=lambda: 0.0,
    )

    async def fresh_call() -> None:
        await credential.get_token()

    asyncio.run(fresh_call())
    (on_first_loop,) = scheduler.entries
    # The first loop shut down: its entry is cancelled and the token sent to the slow path, so the
    # next loop's first call (on a fresh token) binds there and schedules again.
    assert on_first_loop.cancelled

    async def second_run() -> str:
        first_token = (await credential.get_token()).token
        assert credential._binding.key is asyncio.get_running_loop()
        (on_second_loop,) = scheduler.live(credential)
        assert on_second_loop.due == EPOCH + HOUR - PROACTIVE_WINDOW
        assert refresher.calls == 0
        clock.set(on_second_loop.due)
        assert scheduler.run_due() == 1  # refreshed in the background, on this loop
        await settle_async(credential)
        assert refresher.calls == 1
        assert first_token != second
        token = (await credential.get_token()).token
        await credential.close()
        return token

    assert asyncio.run(second_run()) == second


async def test_parked_async_credential_on_its_own_loop_resumes_without_rebinding(clock: FakeClock) -> None:
    scheduler = ManualScheduler(clock)
    refresher = Refresher(make_jwt(EPOCH + 2 * HOUR))
    token = make_jwt(EPOCH + HOUR)
    credential = AsyncCredential(
        token,
        token_refresher=_async_refresher(refresher),
        proactive_refresh=True,
        _clock=clock,
        _scheduler=scheduler,
        _jitter=lambda: 0.0,
    )
    (entry,) = scheduler.live(credential)
    credential._park()
    assert entry.cancelled
    assert (await credential.get_token()).token == token
    assert scheduler.next_due(credential) == EPOCH + HOUR - PROACTIVE_WINDOW
    assert refresher.calls == 0
    await credential.close()
    credential._park()  # a closed credential stays closed
    with pytest.raises(RuntimeError, match="closed"):
        await credential.get_token()


# -- 2. deeply nested JSON is "not a JWT", never a RecursionError --------------------------------------------


def _deeply_nested_jwt(depth: int = 20_000) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    payload = b'{"exp":1,"a":' + b'{"a":' * depth + b"1" + b"}" * depth + b"}"
    return f"{b64(b'{}')}.{b64(payload)}.c2lnbmF0dXJl"


def test_deeply_nested_payload_is_not_a_jwt(fresh_opaque_notice: None) -> None:
    token = _deeply_nested_jwt()
    for parse in (parse_jwt_expiry, decode_jwt_payload):
        with pytest.raises(ValueError, match=r"not a JWT.*nested too deeply"):
            parse(token)
    assert normalize_token(token, EPOCH).expires_on == EPOCH + OPAQUE_TOKEN_LIFETIME
    assert CommunicationTokenCredential(token).get_token().token == token


def test_deeply_nested_refresher_result_is_an_opaque_token(clock: FakeClock, fresh_opaque_notice: None) -> None:
    token = _deeply_nested_jwt()
    credential = CommunicationTokenCredential(token_refresher=lambda: token, _clock=clock)
    assert credential.get_token().token == token
    assert in_flight(credential) is None


def test_access_token_expiry_beyond_float_range_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expires_on of the token must be a number within float range"):
        normalize_token(AccessToken("some-token", 10**400), EPOCH)


# -- 3. a refresher result that fails in an unexpected way, or a failing scheduler, releases every waiter --


class _HostileText(str):
    """A token string whose normalisation raises something other than TypeError/ValueError."""

    __slots__ = ()

    def strip(self, chars: str | None = None) -> str:
        raise LookupError("hostile")


class _Gate:
    """A sync refresher that blocks until released, then returns ``result``."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> Any:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        return self.result


def _waiters(credential: CommunicationTokenCredential) -> int:
    cond = credential._cond
    return 0 if cond is None else len(cond._waiters)  # type: ignore[attr-defined]


def _run_and_wait(credential: CommunicationTokenCredential, gate: _Gate) -> tuple[Any, Any]:
    """One thread runs the refresh, a second waits on it; returns both outcomes once the gate opens."""
    results: dict[str, Any] = {}

    def call(name: str) -> None:
        try:
            results[name] = credential.get_token().token
        except BaseException as exc:
            results[name] = exc

    runner = threading.Thread(target=call, args=("runner",), daemon=True)
    runner.start()
    assert gate.entered.wait(10)
    waiter = threading.Thread(target=call, args=("waiter",), daemon=True)
    waiter.start()
    _wait_for(lambda: _waiters(credential) == 1)
    gate.release.set()
    runner.join(10)
    waiter.join(10)
    assert not runner.is_alive(), "the caller that ran the refresh is still blocked"
    assert not waiter.is_alive(), "the caller that waited on the refresh is still blocked"
    return results["runner"], results["waiter"]


def test_unexpected_error_from_the_refresher_result_reaches_every_waiter(clock: FakeClock) -> None:
    gate = _Gate(_HostileText("hostile-token"))
    credential = CommunicationTokenCredential(token_refresher=gate, _clock=clock)
    runner, waiter = _run_and_wait(credential, gate)
    assert isinstance(runner, LookupError)
    assert isinstance(waiter, LookupError)
    assert gate.calls == 1
    assert in_flight(credential) is None
    gate.result = make_jwt(EPOCH + HOUR)
    clock.advance(1)  # past the failure gap
    assert credential.get_token().token == gate.result
    assert gate.calls == 2


class _FailingScheduler:
    """Schedules once, then fails (e.g. a scheduler that cannot start its thread)."""

    def __init__(self) -> None:
        self.calls = 0

    def schedule(self, due: float, owner: object, callback: Callable[[Any], None], **kwargs: Any) -> Any:
        if kwargs.get("inline"):
            return _NoEntry()  # a refresh deadline, not a background refresh
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("can't start new thread")
        return _NoEntry()


class _NoEntry:
    def cancel(self) -> None:
        pass


def test_failing_reschedule_still_delivers_the_token_to_every_caller(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    token = make_jwt(EPOCH + HOUR)
    gate = _Gate(token)
    scheduler = _FailingScheduler()
    credential = CommunicationTokenCredential(
        token_refresher=gate, proactive_refresh=True, _clock=clock, _scheduler=scheduler
    )
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        runner, waiter = _run_and_wait(credential, gate)
    assert (runner, waiter) == (token, token)
    assert scheduler.calls == 2
    assert credential._entry is None
    messages = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert any("Could not schedule the background token refresh (RuntimeError)" in m for m in messages)
    assert all("can't start" not in m for m in messages)


async def test_async_unexpected_error_from_the_refresher_result_does_not_brick_the_credential(
    clock: FakeClock,
) -> None:
    results: list[Any] = [_HostileText("hostile-token")]
    release = asyncio.Event()

    async def refresher() -> Any:
        await release.wait()
        return results[0]

    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    first = asyncio.ensure_future(credential.get_token())
    second = asyncio.ensure_future(credential.get_token())
    await asyncio.sleep(0)  # let both callers reach the refresh (an event-loop turn, not a timer)
    release.set()
    outcomes = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(outcome, LookupError) for outcome in outcomes)
    assert in_flight(credential) is None
    results[0] = make_jwt(EPOCH + HOUR)
    clock.advance(1)  # past the failure gap
    assert (await credential.get_token()).token == results[0]
    await credential.close()


# -- 4. a forked child does not inherit the parent's refresh in flight, lock owner or lost schedule -------


@needs_fork
def test_forked_child_does_not_wait_for_the_parents_refresh_in_flight() -> None:
    parent = os.getpid()
    entered = threading.Event()
    release = threading.Event()

    def refresher() -> str:
        if os.getpid() == parent:
            entered.set()
            assert release.wait(10)
            return "parent-opaque-token"
        return "child-opaque-token"

    credential = CommunicationTokenCredential(token_refresher=refresher)
    runner = threading.Thread(target=credential.get_token, daemon=True)
    runner.start()
    assert entered.wait(10)
    # A parent thread holds the lock at the fork (as one may at any moment): the child must not wait on it.
    lock = credential._get_lock()
    lock.acquire()
    pid = _fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            finished, result = in_thread(credential.get_token, timeout=10)
            if not finished:
                code = 3  # blocked on the parent's refresh (or lock)
            elif isinstance(result, BaseException):
                code = 4
            elif result.token == "child-opaque-token" and in_flight(credential) is None:
                code = 42
        finally:
            sys.stdout.flush()
            os._exit(code)
    lock.release()
    release.set()
    runner.join(10)
    assert _child_exit_code(pid) == 42
    assert credential.get_token().token == "parent-opaque-token"


@needs_fork
def test_fork_hooks_run_in_the_child_in_order_after_the_generation_changes_and_are_held_weakly() -> None:
    from azure.communication.common import _fork as hooks

    seen: list[tuple[str, int]] = []

    def first() -> None:
        seen.append(("first", hooks.fork_generation()))

    def second() -> None:
        seen.append(("second", hooks.fork_generation()))

    def dropped() -> None:
        seen.append(("dropped", 0))

    before = hooks.fork_generation()
    parent_lock = hooks.alloc_lock()
    hooks.after_fork_in_child(first)
    hooks.after_fork_in_child(dropped)
    hooks.after_fork_in_child(second)
    del dropped  # only the hook list referred to it, weakly
    pid = _fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        ok = seen == [("first", before + 1), ("second", before + 1)] and hooks.alloc_lock() is not parent_lock
        os._exit(42 if ok else 1)
    assert _child_exit_code(pid) == 42
    assert seen == []  # the parent runs no child hook
    assert hooks.alloc_lock() is parent_lock


def test_only_the_fork_module_registers_an_at_fork_callback() -> None:
    # The interpreter holds at-fork callbacks, and their modules' globals, until the end of finalization. One
    # registered from the credential module kept it and all it imports alive past the interpreter's module
    # clean-up: every process that imported the package took about 4 ms longer to exit (bench case 9). Other
    # modules add their hooks through _fork.after_fork_in_child, which holds them weakly.
    package = Path(__file__).resolve().parents[2] / "src" / "azure" / "communication" / "common"
    registering = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "os.register_at_fork(" in path.read_text(encoding="utf-8")
    )
    assert registering == ["_fork.py"]


@needs_fork
def test_forked_child_is_not_mistaken_for_the_refresher_thread() -> None:
    # The child's caller has the ident of the thread that owns the refresh in flight in the parent (the
    # forking thread here; in real life a new child thread reusing a dead parent thread's ident).
    from azure.communication.common._credential import _running
    from azure.communication.common._lifecycle import Attempt, replace

    credential = CommunicationTokenCredential(token_refresher=lambda: "refreshed-opaque-token")
    attempt = Attempt()
    with credential._get_lock():
        credential._state = replace(credential._state, attempt=attempt)
    running = _running().set((attempt,))  # as inside the refresher of the attempt in flight
    pid = _fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            code = 42 if credential.get_token().token == "refreshed-opaque-token" else 2
        except RuntimeError:
            code = 3  # "the token_refresher called get_token on its own credential"
        finally:
            sys.stdout.flush()
            os._exit(code)
    _running().reset(running)
    credential._state = replace(credential._state, attempt=None)
    assert _child_exit_code(pid) == 42


@pytest.fixture
def proactive_on_default_scheduler() -> Iterator[CommunicationTokenCredential]:
    token = make_jwt(time.time() + HOUR)
    credential = CommunicationTokenCredential(token, token_refresher=lambda: token, proactive_refresh=True)
    yield credential
    credential.close()


@needs_fork
def test_forked_child_keeps_the_proactive_schedule(
    proactive_on_default_scheduler: CommunicationTokenCredential,
) -> None:
    credential = proactive_on_default_scheduler
    parent = default_scheduler()
    assert parent.pending_for(credential) == 1
    pid = _fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            child = default_scheduler()
            timer_running = "acs-token-refresh-timer" in [t.name for t in child.threads]
            if child is not parent and child.pending_for(credential) == 1 and timer_running:
                code = 2
                # The child's first slow path replaces the adopted entry; it does not add a second one.
                with credential._get_lock():
                    credential._schedule_first()
                code = 42 if child.pending_for(credential) == 1 else 3
        finally:
            sys.stdout.flush()
            os._exit(code)
    assert _child_exit_code(pid) == 42
    assert parent.pending_for(credential) == 1


@needs_fork
def test_forked_child_reschedules_a_proactive_credential_on_its_slow_path(clock: FakeClock) -> None:
    scheduler = ManualScheduler(clock)
    token = make_jwt(EPOCH + HOUR)
    credential = CommunicationTokenCredential(
        token, token_refresher=lambda: token, proactive_refresh=True, _clock=clock, _scheduler=scheduler
    )
    (parent_entry,) = scheduler.live(credential)
    pid = _fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            old_lock = credential._lock
            credential._get_lock()
            live = scheduler.live(credential)
            if credential._lock is not old_lock and parent_entry.cancelled and len(live) == 1:
                code = 42
        finally:
            sys.stdout.flush()
            os._exit(code)
    assert _child_exit_code(pid) == 42
    assert scheduler.live(credential) == [parent_entry]
    credential.close()


@needs_fork
def test_forked_child_uses_an_async_credential_bound_to_the_parents_open_loop(clock: FakeClock) -> None:
    async def refresher() -> str:
        return make_jwt(clock() + HOUR)

    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(credential.get_token())
        assert credential._binding.key is loop  # bound to a loop that stays open across the fork
        clock.advance(2 * HOUR)  # expired: the child's call takes the slow path
        pid = _fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 1
            try:

                async def use() -> str:
                    return (await credential.get_token()).token

                asyncio.run(use())
                code = 42
            except RuntimeError:
                code = 3  # "bound to another event loop that is still open"
            finally:
                sys.stdout.flush()
                os._exit(code)
        assert _child_exit_code(pid) == 42
    finally:
        loop.run_until_complete(credential.close())
        loop.close()


# -- 5. the worker pool never loses a wake-up to a worker whose idle wait is timing out -------------------


class _RacingCondition(threading.Condition):
    """The pool's condition, whose first wait times out while the test submits (the reviewer's race)."""

    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.waits = 0
        self.timing_out = threading.Event()
        self.submitted = threading.Event()
        self.waiting_again = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        if self.waits == 1:
            self.release()
            self.timing_out.set()
            assert self.submitted.wait(10)
            self.acquire()
            return False  # timed out, and the submit ran before this worker got the lock back
        self.waiting_again.set()
        return super().wait(timeout)


def test_pool_serves_a_submit_that_races_with_an_idle_timeout() -> None:
    pool = _WorkerPool(max_workers=1, idle_timeout=60.0)
    cond = pool._cond = _RacingCondition()
    ran = [threading.Event() for _ in range(3)]
    try:
        pool.submit(lambda _: ran[0].set(), _OWNER)
        assert ran[0].wait(10)
        assert cond.timing_out.wait(10)
        pool.submit(lambda _: ran[1].set(), _OWNER)
        cond.submitted.set()
        assert ran[1].wait(10)  # the worker re-checks the queue before it exits
        assert cond.waiting_again.wait(10)
        with cond:
            assert pool._idle == 1
        pool.submit(lambda _: ran[2].set(), _OWNER)
        # The only worker is idle and is woken: the item does not wait for the 60 s idle timeout.
        assert ran[2].wait(10)
    finally:
        pool.stop()


class _Threading:
    """The threading module, with thread starts that fail like a process at its thread limit."""

    def __init__(self, fail_names: set[str]) -> None:
        self.fail_names = fail_names

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)

    def Thread(self, *args: Any, **kwargs: Any) -> threading.Thread:
        thread = threading.Thread(*args, **kwargs)
        if thread.name in self.fail_names:

            def start() -> None:
                raise RuntimeError("can't start new thread")

            thread.start = start  # type: ignore[method-assign]
        return thread


def test_pool_that_cannot_start_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = _WorkerPool(max_workers=2, idle_timeout=60.0)
    fake = _Threading({"acs-token-refresh-worker"})
    monkeypatch.setattr(_scheduler, "threading", fake)
    try:
        with pytest.raises(RuntimeError, match="can't start"):
            pool.submit(lambda _: None, _OWNER)
        assert (list(pool._queue), pool.threads) == ([], [])  # nothing queued that nobody would run
        # With a worker running, a failed start leaves the item for that worker.
        fake.fail_names = set()
        busy, release, later = threading.Event(), threading.Event(), threading.Event()
        pool.submit(lambda _: (busy.set(), release.wait(10)), _OWNER)
        assert busy.wait(10)
        fake.fail_names = {"acs-token-refresh-worker"}
        pool.submit(lambda _: later.set(), _OWNER)
        assert len(pool.threads) == 1
        release.set()
        assert later.wait(10)
    finally:
        pool.stop()


# -- 6. one failed thread start does not end background refresh ------------------------------------------


class Owner:
    """Something a scheduler can hold weakly."""


# The pool queues its owners weakly: one kept alive for the whole module.
_OWNER = Owner()


@pytest.fixture
def timer(clock: FakeClock) -> Iterator[TimerScheduler]:
    scheduler = TimerScheduler(clock, max_workers=2, idle_timeout=0.05)
    yield scheduler
    scheduler.stop()


def test_timer_survives_a_failed_worker_start_and_retries(
    timer: TimerScheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    real_submit = timer._pool.submit
    failed = threading.Event()

    def flaky_submit(callback: Callable[[object], None], owner: object) -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("can't start new thread")
        real_submit(callback, owner)

    timer._pool.submit = flaky_submit  # type: ignore[method-assign]
    owner, ran = Owner(), threading.Event()
    timer.schedule(clock(), owner, lambda _: ran.set())
    assert failed.wait(10)
    _wait_for(lambda: timer.pending_for(owner) == 1)  # put back, a second later
    assert timer._heap[0].due == clock() + 1
    assert [t.name for t in timer.threads] == ["acs-token-refresh-timer"]
    clock.advance(1)
    timer.wake()
    assert ran.wait(10)
    assert any(
        r.name == LOGGER and "Could not start a background token refresh (RuntimeError)" in r.getMessage()
        for r in caplog.records
    )


def test_entry_cancelled_while_its_start_failed_is_not_put_back(timer: TimerScheduler, clock: FakeClock) -> None:
    owner = Owner()
    entry = timer.schedule(clock() + 60, owner, lambda _: None)
    with timer._cond:
        timer._heap.remove(entry)  # what the timer thread does when the entry comes due
        entry.in_heap = False
    entry.cancel()
    timer._retry_later(entry)
    assert timer.pending() == 0


def test_schedule_restarts_a_dead_timer_thread(
    timer: TimerScheduler, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = Owner()
    ran = [threading.Event() for _ in range(3)]
    timer.schedule(clock(), owner, lambda _: ran[0].set())
    assert ran[0].wait(10)
    dead = timer._thread
    assert dead is not None
    # The timer thread ends after its next batch (as it would on an unexpected error), leaving its
    # handle behind.
    monkeypatch.setattr(timer, "_take_due", lambda: None)
    timer.schedule(clock(), owner, lambda _: ran[1].set())
    assert ran[1].wait(10)
    dead.join(10)
    assert not dead.is_alive()
    monkeypatch.undo()
    timer.schedule(clock(), owner, lambda _: ran[2].set())
    assert ran[2].wait(10)
    assert timer._thread is not dead


def test_schedule_that_cannot_start_the_timer_raises_and_keeps_nothing(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    timer = TimerScheduler(clock)
    monkeypatch.setattr(_scheduler, "threading", _Threading({"acs-token-refresh-timer"}))
    owner = Owner()
    with pytest.raises(RuntimeError, match="can't start"):
        timer.schedule(clock(), owner, lambda _: None)
    assert (timer.pending(), timer._thread) == (0, None)
    monkeypatch.undo()
    ran = threading.Event()
    timer.schedule(clock(), owner, lambda _: ran.set())
    assert ran.wait(10)
    timer.stop()


async def test_refresh_that_ends_while_parked_is_kept_for_the_next_loop(clock: FakeClock) -> None:
    # A refresh may finish while its loop shuts down (after the credential parked): its token is kept
    # aside with the parked one and returned by the next call, with no second refresh.
    scheduler = ManualScheduler(clock)
    release = asyncio.Event()
    calls = []
    token = make_jwt(EPOCH + 2 * HOUR)

    async def refresher() -> str:
        calls.append(1)
        await release.wait()
        return token

    credential = AsyncCredential(
        token_refresher=refresher, proactive_refresh=True, _clock=clock, _scheduler=scheduler, _jitter=lambda: 0.0
    )
    clock.advance(1)
    assert scheduler.run_due() == 1  # the first background refresh starts
    task = refresh_task(credential)
    assert task is not None
    credential._park()
    release.set()
    await asyncio.wait([task])
    assert credential._snapshot.refresh_on == float("-inf")  # still parked: the next call takes the slow path
    info = await credential.get_token_info()
    assert (info.token, info.refresh_on) == (token, int(EPOCH + 2 * HOUR - PROACTIVE_WINDOW))
    assert calls == [1]
    assert scheduler.next_due(credential) == EPOCH + 2 * HOUR - PROACTIVE_WINDOW
    await credential.close()


# pyproject ignores ResourceWarning suite-wide; this test is about one, so it turns it back into an error.
@pytest.mark.filterwarnings("error::ResourceWarning")
def test_binding_to_a_loop_that_already_shut_down_its_generators_draws_no_warning(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)

    async def refresher() -> str:
        return token

    credential = AsyncCredential(token_refresher=refresher, proactive_refresh=True, _clock=clock)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(loop.shutdown_asyncgens())
        # A new async generator on this loop would be a ResourceWarning (an error in this test).
        assert loop.run_until_complete(credential.get_token()).token == token
        assert credential._binding.key is loop
        loop.run_until_complete(credential.close())
    finally:
        loop.close()


def test_scheduler_takes_over_entries_left_by_a_scheduler_without_threads(clock: FakeClock) -> None:
    # What a forked child's scheduler does with the parent's pending entries (whose threads are gone).
    from azure.communication.common._scheduler import _Entry

    orphaned = TimerScheduler(clock)  # never started: like the parent's copy in a child
    owner, ran = Owner(), threading.Event()
    entry = _Entry(orphaned, clock() + 5, 0, owner, lambda _: ran.set())
    adopter = TimerScheduler(clock, max_workers=1, idle_timeout=0.05)
    try:
        adopter._adopt([entry])
        assert (entry.scheduler, adopter.pending_for(owner)) == (adopter, 1)
        entry.cancel()  # goes to the scheduler that holds it now
        assert adopter.pending_for(owner) == 0
        again = _Entry(orphaned, clock() + 5, 1, owner, lambda _: ran.set())
        adopter._adopt([again])
        clock.advance(5)
        adopter.wake()
        assert ran.wait(10)
    finally:
        adopter.stop()

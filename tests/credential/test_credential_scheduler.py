"""The real background machinery: timer thread, worker pool, weak references, fork, event-loop binding."""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
import tracemalloc
import warnings
import weakref
from typing import Any

import pytest
from token_credential_helpers import EPOCH, AsyncCredential, FakeClock, in_flight, make_jwt, refresh_task, settle_async
from token_credential_helpers import SyncCredential as CommunicationTokenCredential
from token_credential_helpers import wait_for as _wait_for

from azure.communication.common import _scheduler
from azure.communication.common._scheduler import TimerScheduler, default_scheduler

HOUR = 3600.0


class Owner:
    """Something a scheduler can hold weakly."""


def _settled(credential: CommunicationTokenCredential) -> bool:
    # Read under the credential's lock: the outcome is published whole, with the next schedule.
    with credential._get_lock():
        return in_flight(credential) is None


@pytest.fixture
def timer(clock: FakeClock) -> Any:
    scheduler = TimerScheduler(clock, max_workers=3, idle_timeout=0.05)
    yield scheduler
    scheduler.stop()


def test_timer_thread_runs_due_entries_on_workers(timer: TimerScheduler, clock: FakeClock) -> None:
    owner = Owner()
    fired = threading.Event()
    seen: list[Any] = []

    def callback(target: Owner) -> None:
        seen.append((target, threading.current_thread().name))
        fired.set()

    later = threading.Event()
    timer.schedule(clock() + 100, owner, lambda _: later.set())
    timer.schedule(clock(), owner, callback)
    assert fired.wait(10)
    assert seen == [(owner, "acs-token-refresh-worker")]
    assert not later.is_set()
    assert timer.pending_for(owner) == 1
    clock.advance(100)
    timer.wake()
    assert later.wait(10)
    _wait_for(lambda: timer.pending() == 0)


def test_one_slow_refresh_does_not_delay_the_others_and_the_pool_is_bounded(
    timer: TimerScheduler, clock: FakeClock
) -> None:
    release = threading.Event()
    running = []
    lock = threading.Lock()
    peak = [0]
    done = threading.Semaphore(0)

    def slow(_: Owner) -> None:
        with lock:
            running.append(1)
            peak[0] = max(peak[0], len(running))
        release.wait(10)
        with lock:
            running.pop()
        done.release()

    owners = [Owner() for _ in range(5)]
    quick = threading.Event()
    timer.schedule(clock(), owners[0], slow)
    timer.schedule(clock(), owners[1], lambda _: quick.set())
    assert quick.wait(10)  # ran while the first one is still blocked
    for owner in owners[2:]:
        timer.schedule(clock(), owner, slow)
    _wait_for(lambda: len(running) == 3)
    assert len(timer.threads) <= 1 + 3  # the timer thread and at most max_workers workers
    release.set()
    for _ in range(4):
        assert done.acquire(timeout=10)
    assert peak[0] == 3
    # Idle workers exit; the timer thread stays.
    _wait_for(lambda: len(timer.threads) == 1)
    assert timer.threads[0].name == "acs-token-refresh-timer"


def test_cancelled_and_collected_entries_do_not_run(timer: TimerScheduler, clock: FakeClock) -> None:
    ran: list[str] = []
    cancelled_owner, dropped_owner, kept_owner = Owner(), Owner(), Owner()
    entry = timer.schedule(clock() + 10, cancelled_owner, lambda _: ran.append("cancelled"))
    timer.schedule(clock() + 10, dropped_owner, lambda _: ran.append("dropped"))
    done = threading.Event()
    timer.schedule(clock() + 10, kept_owner, lambda _: (ran.append("kept"), done.set()))
    entry.cancel()
    entry.cancel()
    ref = weakref.ref(dropped_owner)
    del dropped_owner
    gc.collect()
    assert ref() is None
    assert timer.pending() == 1
    clock.advance(10)
    timer.wake()
    assert done.wait(10)
    assert ran == ["kept"]


def test_heap_is_compacted_when_cancelled_entries_dominate(timer: TimerScheduler, clock: FakeClock) -> None:
    owner = Owner()
    entries = [timer.schedule(clock() + 1000 + i, owner, lambda _: None) for i in range(200)]
    for entry in entries[:150]:
        entry.cancel()
    assert timer.pending() == 50
    assert len(timer._heap) < 200


def test_a_stopped_scheduler_refuses_new_entries(clock: FakeClock) -> None:
    scheduler = TimerScheduler(clock)
    scheduler.stop()
    with pytest.raises(RuntimeError, match="stopped"):
        scheduler.schedule(clock(), Owner(), lambda _: None)


def test_worker_survives_a_crashing_callback(
    timer: TimerScheduler, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    owner = Owner()
    after = threading.Event()

    def crash(_: Owner) -> None:
        raise ValueError("secret detail")

    timer.schedule(clock(), owner, crash)
    timer.schedule(clock() + 1, owner, lambda _: after.set())
    _wait_for(lambda: any("ValueError" in r.getMessage() for r in caplog.records))
    clock.advance(1)
    timer.wake()
    assert after.wait(10)
    assert all("secret detail" not in r.getMessage() for r in caplog.records)


def test_proactive_credential_on_the_real_timer_thread(timer: TimerScheduler, clock: FakeClock) -> None:
    tokens = [make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 2 * HOUR)]
    refreshed = threading.Semaphore(0)
    calls = []

    def refresher() -> str:
        calls.append(threading.current_thread().name)
        refreshed.release()
        return tokens[len(calls) - 1]

    credential = CommunicationTokenCredential(
        token_refresher=refresher, proactive_refresh=True, _clock=clock, _scheduler=timer
    )
    assert refreshed.acquire(timeout=10)  # started at construction, on a worker
    _wait_for(lambda: _settled(credential))
    assert credential.get_token().token == tokens[0]
    assert calls == ["acs-token-refresh-worker"]
    clock.set(EPOCH + HOUR - 600 + 5)  # past the due time and any jitter
    timer.wake()
    assert refreshed.acquire(timeout=10)
    _wait_for(lambda: _settled(credential))
    assert credential.get_token().token == tokens[1]
    assert timer.pending_for(credential) == 1
    credential.close()
    assert timer.pending_for(credential) == 0
    assert len(calls) == 2


def test_dropped_proactive_credential_is_collected(timer: TimerScheduler, clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    credential = CommunicationTokenCredential(
        token, token_refresher=lambda: token, proactive_refresh=True, _clock=clock, _scheduler=timer
    )
    credential.get_token()
    assert timer.pending() == 1
    ref = weakref.ref(credential)
    del credential
    gc.collect()
    assert ref() is None
    assert timer.pending() == 0


def test_ten_thousand_idle_proactive_credentials_cost_little() -> None:
    token = make_jwt(time.time() + 2 * HOUR)

    def make() -> CommunicationTokenCredential:
        return CommunicationTokenCredential(token, token_refresher=lambda: token, proactive_refresh=True)

    before = threading.active_count()
    default_scheduler().pending()  # created before measuring memory
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        credentials = [make() for _ in range(1_000)]
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    credentials += [make() for _ in range(9_000)]
    try:
        per_credential = (used - start) / 1_000
        assert per_credential < 4096, per_credential
        assert threading.active_count() - before <= 2
        assert default_scheduler().pending() >= 10_000
    finally:
        for credential in credentials:
            credential.close()
    assert all(default_scheduler().pending_for(c) == 0 for c in credentials[:10])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_starts_with_a_fresh_scheduler() -> None:
    parent = default_scheduler()
    parent_fired = threading.Event()
    parent.schedule(time.monotonic(), Owner, lambda _: parent_fired.set())
    assert parent_fired.wait(10)  # the parent's timer thread exists
    parent_threads = set(parent.threads)
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a process with threads; that is what this test is about.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            child = default_scheduler()
            fired = threading.Event()
            # Threads of its own only: it may have started a timer for entries it took over from the parent.
            if child is not parent and _scheduler._default is child and not set(child.threads) & parent_threads:
                child.schedule(time.monotonic(), Owner, lambda _: fired.set())
                code = 42 if fired.wait(10) else 2
        finally:
            sys.stdout.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 42
    assert default_scheduler() is parent


# -- asyncio: loop scheduling, binding, leaks --------------------------------------------------------------


async def test_async_proactive_refresh_runs_on_the_loop(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refreshed = asyncio.Event()

    async def refresher() -> str:
        refreshed.set()
        return token

    credential = AsyncCredential(token_refresher=refresher, proactive_refresh=True, _clock=clock)
    handle = credential._entry
    assert isinstance(handle, asyncio.TimerHandle)
    await asyncio.wait_for(refreshed.wait(), 10)
    await settle_async(credential)
    assert (await credential.get_token()).token == token
    next_handle = credential._entry
    assert isinstance(next_handle, asyncio.TimerHandle)
    loop = asyncio.get_running_loop()
    # Due 10 minutes before expiry, on the loop's monotonic clock.
    assert next_handle.when() - loop.time() == pytest.approx(HOUR - 600, abs=10)
    await credential.close()
    assert next_handle.cancelled()
    assert refresh_task(credential) is None
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_dropped_async_credential_is_collected(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)

    async def refresher() -> str:
        return token

    credential = AsyncCredential(token, token_refresher=refresher, proactive_refresh=True, _clock=clock)
    handle = credential._entry
    ref = weakref.ref(credential)
    del credential
    gc.collect()
    assert ref() is None
    assert isinstance(handle, asyncio.TimerHandle)
    handle.cancel()


def test_async_credential_rebinds_after_its_loop_closed(clock: FakeClock) -> None:
    calls = []

    async def refresher() -> str:
        calls.append(1)
        return make_jwt(clock() + 60)

    credential = AsyncCredential(token_refresher=refresher, proactive_refresh=True, _clock=clock)
    assert credential._binding is None
    assert credential._entry is None  # proactive refresh starts with the first get_token

    async def use() -> str:
        return (await credential.get_token()).token

    first = asyncio.run(use())
    clock.advance(120)  # expired: the next call must refresh on the new loop
    second = asyncio.run(use())
    assert first != second
    assert len(calls) == 2

    other = asyncio.new_event_loop()
    try:
        clock.advance(120)
        other.run_until_complete(use())  # the previous loop is closed: rebinds to `other`
        clock.advance(120)
        with pytest.raises(RuntimeError, match="bound to another event loop"):
            asyncio.run(use())
    finally:
        other.run_until_complete(credential.close())
        other.close()


def test_async_credential_outside_asyncio_is_a_clear_error() -> None:
    async def refresher() -> str:
        return make_jwt(EPOCH + HOUR)

    credential = AsyncCredential(token_refresher=refresher)
    coroutine = credential.get_token()
    # Driving the coroutine by hand, as a non-asyncio library (e.g. trio) would.
    with pytest.raises(RuntimeError, match="running asyncio event loop"):
        coroutine.send(None)

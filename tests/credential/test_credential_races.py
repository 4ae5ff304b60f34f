"""Concurrency: one refresher call in flight, shared outcomes, cancellation and close during a refresh."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from token_credential_helpers import EPOCH, AsyncCredential, FakeClock, ManualScheduler, make_jwt, refresh_task
from token_credential_helpers import SyncCredential as CommunicationTokenCredential
from token_credential_helpers import wait_for as _wait_for

HOUR = 3600.0
THREADS = 64
TASKS = 1000


class RefresherError(Exception):
    pass


class BlockingRefresher:
    """A sync refresher that blocks until the test releases it."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls = 0
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> Any:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


class AsyncBlockingRefresher:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False

    async def __call__(self) -> Any:
        self.calls += 1
        self.entered.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if isinstance(self.result, BaseException):
            raise self.result
        return self.result


def _waiters(credential: CommunicationTokenCredential) -> int:
    cond = credential._cond
    return 0 if cond is None else len(cond._waiters)  # type: ignore[attr-defined]


def _run_threads(credential: CommunicationTokenCredential, count: int) -> tuple[list[threading.Thread], list[Any]]:
    results: list[Any] = [None] * count
    barrier = threading.Barrier(count)

    def call(index: int) -> None:
        barrier.wait()
        try:
            results[index] = credential.get_token()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=call, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, results


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(10)
        assert not thread.is_alive()


def test_threads_share_one_refresh(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = BlockingRefresher(token)
    credential = CommunicationTokenCredential(token_refresher=refresher, _clock=clock)
    threads, results = _run_threads(credential, THREADS)
    assert refresher.entered.wait(10)
    _wait_for(lambda: _waiters(credential) == THREADS - 1)
    refresher.release.set()
    _join(threads)
    assert refresher.calls == 1
    assert all(r.token == token for r in results)
    assert len({id(r) for r in results}) == 1  # the very same AccessToken object


def test_threads_all_get_the_refresh_error_then_the_next_call_retries(clock: FakeClock) -> None:
    error = RefresherError("down")
    refresher = BlockingRefresher(error)
    credential = CommunicationTokenCredential(token_refresher=refresher, _clock=clock)
    threads, results = _run_threads(credential, THREADS)
    assert refresher.entered.wait(10)
    _wait_for(lambda: _waiters(credential) == THREADS - 1)
    refresher.release.set()
    _join(threads)
    assert refresher.calls == 1
    assert all(r is error for r in results)
    token = make_jwt(EPOCH + HOUR)
    refresher.result = token
    clock.advance(1)  # past the failure gap
    assert credential.get_token().token == token
    assert refresher.calls == 2


async def test_tasks_share_one_refresh(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = AsyncBlockingRefresher(token)
    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    calls = asyncio.gather(*(credential.get_token() for _ in range(TASKS)))
    await refresher.entered.wait()
    refresher.release.set()
    results = await calls
    assert refresher.calls == 1
    assert all(r.token == token for r in results)
    assert len({id(r) for r in results}) == 1


async def test_tasks_all_get_the_refresh_error_then_the_next_call_retries(clock: FakeClock) -> None:
    error = RefresherError("down")
    refresher = AsyncBlockingRefresher(error)
    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    calls = asyncio.gather(*(credential.get_token() for _ in range(TASKS)), return_exceptions=True)
    await refresher.entered.wait()
    refresher.release.set()
    results = await calls
    assert refresher.calls == 1
    assert all(r is error for r in results)
    token = make_jwt(EPOCH + HOUR)
    refresher.result = token
    clock.advance(1)
    assert (await credential.get_token()).token == token
    assert refresher.calls == 2


async def test_a_cancelled_caller_does_not_cancel_the_refresh(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = AsyncBlockingRefresher(token)
    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    starter = asyncio.ensure_future(credential.get_token())
    other = asyncio.ensure_future(credential.get_token())
    await refresher.entered.wait()
    starter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starter
    assert not refresher.cancelled
    refresher.release.set()
    assert (await other).token == token
    assert refresher.calls == 1
    assert (await credential.get_token()).token == token


async def test_an_awaiting_caller_with_a_timeout_leaves_the_refresh_running(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = AsyncBlockingRefresher(token)
    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(credential.get_token(), timeout=0.01)
    assert not refresher.cancelled
    refresher.release.set()
    assert (await credential.get_token()).token == token
    assert refresher.calls == 1


def test_stale_callers_do_not_wait_for_the_refresh_in_flight(clock: FakeClock) -> None:
    initial, renewed = make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 2 * HOUR)
    refresher = BlockingRefresher(renewed)
    credential = CommunicationTokenCredential(initial, token_refresher=refresher, _clock=clock)
    clock.set(EPOCH + HOUR - 60)
    threads, results = _run_threads(credential, 1)
    assert refresher.entered.wait(10)
    # Returns at once with the cached token while the other thread refreshes.
    assert credential.get_token().token == initial
    refresher.release.set()
    _join(threads)
    assert results[0].token == renewed
    assert credential.get_token().token == renewed
    assert refresher.calls == 1


async def test_async_stale_callers_do_not_wait(clock: FakeClock) -> None:
    initial, renewed = make_jwt(EPOCH + HOUR), make_jwt(EPOCH + 2 * HOUR)
    refresher = AsyncBlockingRefresher(renewed)
    credential = AsyncCredential(initial, token_refresher=refresher, _clock=clock)
    clock.set(EPOCH + HOUR - 60)
    first = asyncio.ensure_future(credential.get_token())
    await refresher.entered.wait()
    assert (await credential.get_token()).token == initial
    refresher.release.set()
    assert (await first).token == renewed
    assert refresher.calls == 1


def test_background_refresh_does_not_start_while_one_is_in_flight(clock: FakeClock, scheduler: ManualScheduler) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = BlockingRefresher(token)
    credential = CommunicationTokenCredential(
        token_refresher=refresher,
        proactive_refresh=True,
        _clock=clock,
        _scheduler=scheduler,
        _jitter=lambda: 0.0,
    )
    threads, results = _run_threads(credential, 1)
    assert refresher.entered.wait(10)
    assert scheduler.run_due() == 1  # the due background entry finds the refresh in flight
    refresher.release.set()
    _join(threads)
    assert refresher.calls == 1
    assert results[0].token == token
    assert scheduler.next_due(credential) == EPOCH + HOUR - 600


def test_close_during_a_refresh_releases_waiters_and_discards_the_result(clock: FakeClock) -> None:
    refresher = BlockingRefresher(make_jwt(EPOCH + HOUR))
    credential = CommunicationTokenCredential(token_refresher=refresher, _clock=clock)
    threads, results = _run_threads(credential, 3)
    assert refresher.entered.wait(10)
    _wait_for(lambda: _waiters(credential) == 2)
    credential.close()  # returns without waiting for the refresher
    _wait_for(lambda: sum(isinstance(r, RuntimeError) for r in results) == 2)
    assert refresher.calls == 1
    refresher.release.set()
    _join(threads)
    assert all(isinstance(r, RuntimeError) and "closed" in str(r) for r in results)
    with pytest.raises(RuntimeError, match="closed"):
        credential.get_token()
    assert refresher.calls == 1


async def test_async_close_during_a_refresh_cancels_it(clock: FakeClock) -> None:
    refresher = AsyncBlockingRefresher(make_jwt(EPOCH + HOUR))
    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    waiters = [asyncio.ensure_future(credential.get_token()) for _ in range(3)]
    await refresher.entered.wait()
    await credential.close()
    assert refresher.cancelled
    assert refresh_task(credential) is None
    for waiter in waiters:
        with pytest.raises(RuntimeError, match="closed"):
            await waiter
    with pytest.raises(RuntimeError, match="closed"):
        await credential.get_token()
    assert refresher.calls == 1


async def test_async_close_before_the_refresh_task_ran(clock: FakeClock) -> None:
    refresher = AsyncBlockingRefresher(make_jwt(EPOCH + HOUR))
    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    waiter = asyncio.ensure_future(credential.get_token())
    await asyncio.sleep(0)  # the waiter started the task; the task has not run yet
    await credential.close()
    with pytest.raises(RuntimeError, match="closed"):
        await waiter
    assert refresher.calls == 0


def test_keyboard_interrupt_in_a_refresher_releases_the_waiters(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    refresher = BlockingRefresher(KeyboardInterrupt())
    credential = CommunicationTokenCredential(token_refresher=refresher, _clock=clock)
    threads, results = _run_threads(credential, 4)
    assert refresher.entered.wait(10)
    _wait_for(lambda: _waiters(credential) == 3)
    refresher.release.set()
    _join(threads)
    assert sum(isinstance(r, KeyboardInterrupt) for r in results) == 1
    others = [r for r in results if not isinstance(r, KeyboardInterrupt)]
    assert all(isinstance(r, RuntimeError) and "interrupted (KeyboardInterrupt)" in str(r) for r in others)
    refresher.result = token
    assert credential.get_token().token == token
    assert refresher.calls == 2


def test_many_threads_on_a_fresh_token_never_call_the_refresher(clock: FakeClock) -> None:
    token = make_jwt(EPOCH + HOUR)
    calls = []
    credential = CommunicationTokenCredential(token, token_refresher=lambda: calls.append(1) or token, _clock=clock)
    threads, results = _run_threads(credential, 16)
    _join(threads)
    assert calls == []
    assert all(r.token == token for r in results)
    assert credential._lock is None  # the fresh path never allocates a lock


def test_stale_callers_never_block_on_the_lock(clock: FakeClock) -> None:
    initial = make_jwt(EPOCH + HOUR)
    calls: list[int] = []
    credential = CommunicationTokenCredential(initial, token_refresher=lambda: calls.append(1) or initial, _clock=clock)
    clock.set(EPOCH + HOUR - 60)
    lock = credential._get_lock()
    with lock:  # e.g. another thread publishing a refresh at this instant
        assert credential.get_token().token == initial
    assert calls == []
    clock.set(EPOCH + HOUR)  # expired: the caller must wait for the lock, then refresh
    with pytest.raises(ValueError, match="expired"):
        credential.get_token()
    assert calls == [1]


async def test_cancelled_error_inside_a_refresher_releases_every_waiter(clock: FakeClock) -> None:
    refresher = AsyncBlockingRefresher(asyncio.CancelledError())
    credential = AsyncCredential(token_refresher=refresher, _clock=clock)
    waiters = [asyncio.ensure_future(credential.get_token()) for _ in range(5)]
    await refresher.entered.wait()
    refresher.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "interrupted (CancelledError)" in str(r) for r in results)
    token = make_jwt(EPOCH + HOUR)
    refresher.result = token
    refresher.release.set()
    assert (await credential.get_token()).token == token
    assert refresher.calls == 2

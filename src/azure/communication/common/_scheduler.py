"""The process-wide background refresher of the sync credential: one timer thread and a small worker pool.

Every proactive credential in the process shares one daemon timer thread (a heap of due times under a
``threading.Condition``) and a worker pool that grows on demand up to :data:`MAX_WORKERS` threads and
shrinks when idle, so 10,000 idle credentials cost one thread and one heap entry each, and one slow refresher
does not delay the others. Entries hold their credential weakly: a credential dropped without ``close()``
is garbage-collected and its entry is ignored when it comes due.

After ``os.fork()`` the child starts with a fresh scheduler (the parent's threads do not exist there) that
takes over the parent's pending entries, and :func:`fork_generation` changes, so each credential knows on
its next slow path that its lock, its in-flight refresh and its schedule belong to the parent.
Tests drive schedules deterministically through the :class:`Scheduler` protocol instead (see the credential
module docstring), or build a private :class:`TimerScheduler` with a fake clock and call :meth:`wake`.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Final, Protocol, TypeVar

__all__ = [
    "IDLE_TIMEOUT",
    "MAX_WORKERS",
    "ScheduledEntry",
    "Scheduler",
    "TimerScheduler",
    "default_scheduler",
    "fork_generation",
]

_LOGGER = logging.getLogger("azure.communication.common")

_T = TypeVar("_T")

#: Most refresher calls running at once in the background; more due refreshes queue for a free worker.
MAX_WORKERS: Final = 8
#: A worker with nothing to do for this long exits, so an idle process holds no worker thread.
IDLE_TIMEOUT: Final = 30.0
# The timer re-reads the wall clock at least this often, so a clock step (NTP, suspend) delays a refresh
# by at most a minute; the condition's timeout itself runs on the monotonic clock.
_MAX_WAIT: Final = 60.0
# Cancelled entries stay in the heap until they come due; the heap is rebuilt when they dominate it.
_COMPACT_MIN: Final = 64
# A due entry whose worker could not be started (no thread available, e.g. a process at its thread limit)
# is retried this much later: soon enough for a refresh due in the stale window, without spinning.
_SUBMIT_RETRY: Final = 1.0


class ScheduledEntry(Protocol):
    """A handle on one scheduled callback."""

    def cancel(self) -> None:
        """Stop the callback from running (idempotent; a no-op once it ran)."""


class Scheduler(Protocol):
    """Runs ``callback(owner)`` at ``due`` (a time of the credential's clock), holding ``owner`` weakly."""

    def schedule(self, due: float, owner: _T, callback: Callable[[_T], None]) -> ScheduledEntry:
        """Schedule ``callback(owner)``; nothing runs if ``owner`` was collected by then."""
        ...


class _Entry:
    __slots__ = ("__weakref__", "callback", "cancelled", "due", "in_heap", "owner", "scheduler", "seq")

    def __init__(
        self,
        scheduler: TimerScheduler,
        due: float,
        seq: int,
        owner: weakref.ref[object],
        callback: Callable[[object], None],
    ) -> None:
        self.scheduler = scheduler
        self.due = due
        self.seq = seq
        self.owner = owner
        self.callback = callback
        self.cancelled = False
        # Only entries in the heap count in the scheduler's tally of cancelled entries.
        self.in_heap = True

    def __lt__(self, other: _Entry) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)

    def cancel(self) -> None:
        if self.cancelled:
            return
        if self.in_heap:
            self.scheduler._cancel(self)  # re-checked under the scheduler's lock
        else:
            # Already taken by the timer thread: nothing to tally, so no lock to take. This also keeps a
            # forked child from touching the lock of its parent's scheduler, which a parent thread may hold.
            self.cancelled = True

    @property
    def live(self) -> bool:
        return not self.cancelled and self.owner() is not None


class _WorkerPool:
    """Threads that run due callbacks; started on demand up to ``max_workers``, exiting when idle."""

    def __init__(self, max_workers: int, idle_timeout: float) -> None:
        self._max_workers = max_workers
        self._idle_timeout = idle_timeout
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[tuple[Callable[[object], None], object]] = collections.deque()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._stopped = False

    def submit(self, callback: Callable[[object], None], owner: object) -> None:
        """Queue ``callback(owner)`` and make sure a worker will run it.

        Raises:
            RuntimeError: No worker exists and none could be started (the item is not queued).
        """
        with self._cond:
            if self._stopped:
                return
            queue = self._queue
            queue.append((callback, owner))
            # Only workers change `_idle`, around their own wait: a waiting worker for each queued item
            # means one of them takes it; a worker whose wait is just timing out still counts as idle
            # and re-checks the queue before it exits, so it cannot lose the item either.
            if self._idle >= len(queue) or len(self._threads) >= self._max_workers:
                self._cond.notify()
                return
            thread = threading.Thread(target=self._work, name="acs-token-refresh-worker", daemon=True)
            self._threads.add(thread)
            try:
                thread.start()
            except BaseException:
                self._threads.discard(thread)
                if self._threads:
                    return  # a running worker takes the item when it is done with its own
                queue.pop()  # nobody would run it: the caller retries later
                raise

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._idle += 1
                    try:
                        woken = self._cond.wait(self._idle_timeout)
                    finally:
                        self._idle -= 1
                    if not woken and not self._queue:
                        self._threads.discard(me)
                        return
                if self._stopped:
                    self._threads.discard(me)
                    return
                callback, owner = self._queue.popleft()
            try:
                callback(owner)
            except Exception as exc:
                # The credential's callback handles its refresher's errors; this is a last resort that
                # keeps the worker alive. Only the type: the text may hold a secret.
                _LOGGER.error("A background token refresh crashed (%s).", type(exc).__name__)
            # Not holding the owner while idle lets a dropped credential be collected.
            del callback, owner

    @property
    def threads(self) -> list[threading.Thread]:
        with self._cond:
            return list(self._threads)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._queue.clear()
            self._cond.notify_all()


class TimerScheduler:
    """A heap of due callbacks served by one daemon timer thread, dispatching to a bounded worker pool.

    Threads start on the first :meth:`schedule`. Due times are read on ``clock`` (the wall clock by
    default, like token expiries).

    Args:
        clock: Returns the current time in seconds; the due times given to :meth:`schedule` use it.
        max_workers: Bound of the worker pool.
        idle_timeout: Seconds an idle worker waits for work before exiting.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        max_workers: int = MAX_WORKERS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self._clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[_Entry] = []
        self._cancelled = 0
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._pool = _WorkerPool(max_workers, idle_timeout)

    def schedule(self, due: float, owner: _T, callback: Callable[[_T], None]) -> _Entry:
        """Run ``callback(owner)`` on a worker thread at ``due``, unless ``owner`` is collected first.

        Raises:
            RuntimeError: The scheduler is stopped, or its timer thread could not be started (the entry
                is then not scheduled).
        """
        entry = _Entry(self, due, next(self._seq), weakref.ref(owner), callback)  # type: ignore[arg-type]
        with self._cond:
            if self._stopped:
                raise RuntimeError("the token refresh scheduler is stopped")
            heapq.heappush(self._heap, entry)
            thread = self._thread
            if thread is None or not thread.is_alive():
                # Started on first use, and again if it ever died: one lost thread must not end every
                # background refresh of the process.
                try:
                    self._start_timer()
                except BaseException:
                    self._cancel_locked(entry)
                    raise
            elif self._heap[0] is entry:
                self._cond.notify()
        return entry

    def _start_timer(self) -> None:
        thread = threading.Thread(target=self._run, name="acs-token-refresh-timer", daemon=True)
        self._thread = thread
        try:
            thread.start()
        except BaseException:
            self._thread = None
            raise

    def _cancel(self, entry: _Entry) -> None:
        with self._cond:
            self._cancel_locked(entry)

    def _cancel_locked(self, entry: _Entry) -> None:
        if entry.cancelled:
            return
        entry.cancelled = True
        if not entry.in_heap:
            return  # already taken by the timer thread: nothing to tally
        self._cancelled += 1
        if self._cancelled > _COMPACT_MIN and self._cancelled * 2 > len(self._heap):
            self._heap = [e for e in self._heap if not e.cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def wake(self) -> None:
        """Make the timer thread re-read the clock now (tests with a fake clock call it after advancing)."""
        with self._cond:
            self._cond.notify()

    def pending(self) -> int:
        """Entries that will still run: not cancelled, owner alive."""
        with self._cond:
            return sum(1 for entry in self._heap if entry.live)

    def pending_for(self, owner: object) -> int:
        """Entries that will still run for ``owner``."""
        with self._cond:
            return sum(1 for entry in self._heap if entry.live and entry.owner() is owner)

    @property
    def threads(self) -> list[threading.Thread]:
        """The live threads of this scheduler (the timer thread and the current workers)."""
        timer = self._thread
        threads = self._pool.threads
        if timer is not None and timer.is_alive():
            threads.insert(0, timer)
        return threads

    def stop(self) -> None:
        """Stop the timer thread and the workers; pending entries are dropped (used by tests)."""
        with self._cond:
            self._stopped = True
            self._heap.clear()
            self._cond.notify_all()
        self._pool.stop()

    def _take_due(self) -> list[_Entry] | None:
        """Wait until entries are due and pop them; ``None`` once stopped."""
        with self._cond:
            while True:
                if self._stopped:
                    return None
                heap = self._heap
                while heap and heap[0].cancelled:
                    heapq.heappop(heap).in_heap = False
                    self._cancelled = max(0, self._cancelled - 1)
                if not heap:
                    self._cond.wait()
                    continue
                now = self._clock()
                if heap[0].due <= now:
                    due = []
                    while heap and heap[0].due <= now:
                        entry = heapq.heappop(heap)
                        entry.in_heap = False
                        if entry.cancelled:
                            # Never below zero: an entry cancelled while out of the heap was not tallied.
                            self._cancelled = max(0, self._cancelled - 1)
                        else:
                            due.append(entry)
                    return due
                self._cond.wait(min(heap[0].due - now, _MAX_WAIT))

    def _retry_later(self, entry: _Entry) -> None:
        """Put back an entry whose worker could not be started, :data:`_SUBMIT_RETRY` from now."""
        with self._cond:
            if self._stopped or entry.cancelled:
                return
            entry.due = self._clock() + _SUBMIT_RETRY
            entry.seq = next(self._seq)
            entry.in_heap = True
            heapq.heappush(self._heap, entry)

    def _run(self) -> None:
        while True:
            due = self._take_due()
            if due is None:
                return
            for entry in due:
                owner = entry.owner()
                if owner is None:
                    continue
                try:
                    self._pool.submit(entry.callback, owner)
                except Exception as exc:  # e.g. RuntimeError("can't start new thread"): keep the timer alive
                    _LOGGER.warning(
                        "Could not start a background token refresh (%s); retrying in %.0f s.",
                        type(exc).__name__,
                        _SUBMIT_RETRY,
                    )
                    self._retry_later(entry)
                del owner
            del due

    def _adopt(self, entries: list[_Entry]) -> None:
        """Take over entries of a scheduler whose threads are gone (a forked child's copy of the parent's)."""
        with self._cond:
            for entry in entries:
                entry.scheduler = self
                entry.seq = next(self._seq)
                entry.in_heap = True
                heapq.heappush(self._heap, entry)
            if self._heap and self._thread is None:
                # On failure the next schedule() starts it (each inherited credential reschedules on its
                # next slow path).
                with contextlib.suppress(RuntimeError):
                    self._start_timer()


_default: TimerScheduler | None = None
_default_lock = threading.Lock()
_fork_generation = 0


def fork_generation() -> int:
    """How many times this process's line of ancestors forked since this module was imported.

    A credential records it with its lock and schedule; a different value on its slow path means it runs
    in a forked child, where its lock may be held by a parent thread that does not exist here, its
    in-flight refresh will never finish, and its schedule lives in the parent's scheduler.
    """
    return _fork_generation


def default_scheduler() -> TimerScheduler:
    """The process-wide scheduler, created on first use (and anew in a forked child)."""
    global _default
    scheduler = _default
    if scheduler is None:
        with _default_lock:
            scheduler = _default
            if scheduler is None:
                scheduler = _default = TimerScheduler()
    return scheduler


def _reset_after_fork() -> None:
    global _default, _default_lock, _fork_generation
    # The parent's threads do not exist in the child and its locks may be held by them: start afresh.
    _fork_generation += 1
    parent = _default
    _default = None
    _default_lock = threading.Lock()
    if parent is None:
        return
    # The proactive credentials the child inherited keep refreshing in the background: their pending
    # entries move to the child's own scheduler. The parent's heap is read without its lock, which a
    # parent thread may have held at the fork; this is the only thread of the child.
    pending = [entry for entry in parent._heap if entry.live]
    if pending:
        child = _default = TimerScheduler(
            parent._clock, max_workers=parent._pool._max_workers, idle_timeout=parent._pool._idle_timeout
        )
        child._adopt(pending)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)

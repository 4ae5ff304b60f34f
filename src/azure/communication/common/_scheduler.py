"""The process-wide background refresher of the sync credential: one timer thread and a small worker pool.

Every proactive credential in the process shares one daemon timer thread (a heap of due times under a
``threading.Condition``) and a worker pool that grows on demand up to :data:`MAX_WORKERS` threads and
shrinks when idle, so 10,000 idle credentials cost one thread and one heap entry each, and one slow refresher
does not delay the others. Entries hold their credential weakly: a credential dropped without ``close()``
is garbage-collected and its entry is ignored when it comes due.

After ``os.fork()`` the child starts with a fresh scheduler (the parent's threads do not exist there).
Tests drive schedules deterministically through the :class:`Scheduler` protocol instead (see the credential
module docstring), or build a private :class:`TimerScheduler` with a fake clock and call :meth:`wake`.
"""

from __future__ import annotations

import collections
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
    __slots__ = ("__weakref__", "callback", "cancelled", "due", "owner", "scheduler", "seq")

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

    def __lt__(self, other: _Entry) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)

    def cancel(self) -> None:
        if not self.cancelled:
            self.scheduler._cancel(self)

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
        with self._cond:
            if self._stopped:
                return
            self._queue.append((callback, owner))
            if self._idle:
                # Counted here, not by the woken worker, so back-to-back submits wake distinct workers.
                self._idle -= 1
                self._cond.notify()
            elif len(self._threads) < self._max_workers:
                thread = threading.Thread(target=self._work, name="acs-token-refresh-worker", daemon=True)
                self._threads.add(thread)
                thread.start()

    def _work(self) -> None:
        me = threading.current_thread()
        while True:
            with self._cond:
                while not self._queue and not self._stopped:
                    self._idle += 1
                    if not self._cond.wait(self._idle_timeout):
                        self._idle -= 1
                        if not self._queue:
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
        """Run ``callback(owner)`` on a worker thread at ``due``, unless ``owner`` is collected first."""
        entry = _Entry(self, due, next(self._seq), weakref.ref(owner), callback)  # type: ignore[arg-type]
        with self._cond:
            if self._stopped:
                raise RuntimeError("the token refresh scheduler is stopped")
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="acs-token-refresh-timer", daemon=True)
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()
        return entry

    def _cancel(self, entry: _Entry) -> None:
        with self._cond:
            if entry.cancelled:
                return
            entry.cancelled = True
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
                    heapq.heappop(heap)
                    self._cancelled -= 1
                if not heap:
                    self._cond.wait()
                    continue
                now = self._clock()
                if heap[0].due <= now:
                    due = []
                    while heap and heap[0].due <= now:
                        entry = heapq.heappop(heap)
                        if entry.cancelled:
                            self._cancelled -= 1
                        else:
                            # Popped entries count as run: a later cancel() must not touch the counter.
                            entry.cancelled = True
                            due.append(entry)
                    return due
                self._cond.wait(min(heap[0].due - now, _MAX_WAIT))

    def _run(self) -> None:
        while True:
            due = self._take_due()
            if due is None:
                return
            for entry in due:
                owner = entry.owner()
                if owner is not None:
                    self._pool.submit(entry.callback, owner)
                    del owner
            del due


_default: TimerScheduler | None = None
_default_lock = threading.Lock()


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
    global _default, _default_lock
    # The parent's threads do not exist in the child and its locks may be held by them: start afresh.
    _default = None
    _default_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)

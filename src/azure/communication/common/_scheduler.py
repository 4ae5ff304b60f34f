"""The process-wide background refresher of the sync credential: one timer heap and a worker pool beside it.

Every proactive credential in the process shares one daemon timer thread (a heap of due times under a
``threading.Condition``) and a worker pool (:class:`_WorkerPool`) that grows on demand and shrinks when idle,
so 10,000 idle credentials cost one thread and one small heap entry each. The heap decides *when*; the pool
only runs what came due, so a hung refresher can hold a worker but never the timer.

The pool cannot be starved: it grows up to :data:`MAX_WORKERS` workers, and a worker busy for more than
:data:`BUSY_GRACE` seconds stops counting against that bound, so hung or slow refreshers delay a healthy
credential's refresh by a few seconds at most; :data:`HARD_CAP` threads is the absolute limit (one WARNING
when it is reached, one when the pool first grows past its bound).

Due times are on the monotonic clock. An entry whose time comes from a token's expiry also carries that
time on the wall clock; the timer re-reads both clocks at least once a minute and moves such entries when
the wall clock was stepped (NTP, suspend), so they follow the expiry they were computed from.

Entries and queued work hold their credential weakly: a credential dropped without ``close()`` is collected,
and its entry leaves the heap (the weak reference's callback only marks it; the timer thread compacts).

After ``os.fork()`` the child starts with a fresh scheduler (the parent's threads do not exist there) that
takes over the parent's pending entries, and :func:`fork_generation` changes, so each credential knows on
its next slow path that its lock, its in-flight refresh and its schedule belong to the parent.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Final, Protocol, TypeVar

from ._fork import after_fork_in_child, fork_generation

__all__ = [
    "BUSY_GRACE",
    "HARD_CAP",
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

#: Workers that count against the pool's bound; more due refreshes queue for a free worker.
MAX_WORKERS: Final = 8
#: A worker busy for longer than this (seconds) stops counting against :data:`MAX_WORKERS`: a refresher
#: that slow is probably hung, and healthy credentials must not queue behind it. A few seconds: longer
#: than a healthy token service's answer, short against the 10-minute proactive window.
BUSY_GRACE: Final = 5.0
#: The most worker threads the pool ever runs, hung ones included.
HARD_CAP: Final = 64
#: A worker with nothing to do for this long exits, so an idle process holds no worker thread.
IDLE_TIMEOUT: Final = 30.0
# The timer re-reads the clocks at least this often, so a wall-clock step (NTP, suspend) moves the entries
# computed from token expiries within a minute.
_MAX_WAIT: Final = 60.0
# A wall-clock step smaller than this is noise (clock slewing), not worth re-keying the heap.
_STEP_TOLERANCE: Final = 1.0
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
    """Runs ``callback(owner)`` at ``due`` (a monotonic time of the credential's clock), holding ``owner``
    weakly. ``wall_due`` is the same moment on the wall clock when it comes from a token's expiry;
    ``inline`` marks a short callback (a deadline) that may run on the timer thread itself."""

    def schedule(
        self,
        due: float,
        owner: _T,
        callback: Callable[[_T], None],
        *,
        wall_due: float | None = None,
        inline: bool = False,
    ) -> ScheduledEntry:
        """Schedule ``callback(owner)``; nothing runs if ``owner`` was collected by then."""
        ...


class _OwnerRef(weakref.ref):  # type: ignore[type-arg]
    """The weak reference to an entry's owner; its callback marks the entry dead when the owner goes."""

    __slots__ = ("entry",)

    entry: _Entry | None


def _owner_died(ref: _OwnerRef) -> None:
    # Runs wherever the collector runs, possibly inside a scheduler method holding the scheduler's lock:
    # so no lock here, only an atomic append for the timer thread to tally.
    entry = ref.entry
    if entry is not None and not entry.cancelled:
        entry.cancelled = True
        scheduler = entry.scheduler
        scheduler._dead.append(entry)


class _Entry:
    __slots__ = (
        "__weakref__",
        "callback",
        "cancelled",
        "due",
        "in_heap",
        "inline",
        "owner",
        "scheduler",
        "seq",
        "wall_due",
    )

    def __init__(
        self,
        scheduler: TimerScheduler,
        due: float,
        seq: int,
        owner: object,
        callback: Callable[[object], None],
        wall_due: float | None = None,
        inline: bool = False,
    ) -> None:
        self.scheduler = scheduler
        self.due = due
        self.wall_due = wall_due
        self.seq = seq
        ref = _OwnerRef(owner, _owner_died)
        ref.entry = self
        self.owner = ref
        self.callback = callback
        self.cancelled = False
        self.inline = inline
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
    """Threads that run due callbacks: started on demand, exiting when idle, never starved by hung ones.

    Args:
        max_workers: Workers that count against the bound.
        idle_timeout: Seconds an idle worker waits for work before exiting.
        clock: The monotonic clock that measures how long a worker has been busy.
        busy_grace: Seconds after which a busy worker no longer counts against ``max_workers``.
        hard_cap: The most threads ever.
    """

    def __init__(
        self,
        max_workers: int,
        idle_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        busy_grace: float = BUSY_GRACE,
        hard_cap: int = HARD_CAP,
    ) -> None:
        self._max_workers = max_workers
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._busy_grace = busy_grace
        self._hard_cap = max(hard_cap, max_workers)
        self._cond = threading.Condition(threading.Lock())
        # Owners are queued weakly: a credential dropped while its refresh waits for a worker is collected.
        self._queue: collections.deque[tuple[Callable[[object], None], weakref.ref[object]]] = collections.deque()
        self._threads: set[threading.Thread] = set()
        # When each busy worker started its current callback.
        self._busy: dict[threading.Thread, float] = {}
        self._idle = 0
        self._stopped = False
        self._warned_grown = False
        self._warned_cap = False

    def submit(self, callback: Callable[[object], None], owner: object) -> None:
        """Queue ``callback(owner)`` and make sure a worker will run it.

        Raises:
            RuntimeError: No worker exists and none could be started (the item is not queued).
        """
        with self._cond:
            if self._stopped:
                return
            self._queue.append((callback, weakref.ref(owner)))
            self._grow_locked(self._clock(), submitted=True)

    def _counted(self, now: float) -> int:
        """Workers that count against the bound: all but those busy for longer than the grace."""
        grace = self._busy_grace
        stuck = sum(1 for since in self._busy.values() if now - since > grace)
        return len(self._threads) - stuck

    def _grow_locked(self, now: float, *, submitted: bool = False) -> None:
        """Start the workers the queue needs (under the pool's lock)."""
        queue = self._queue
        starting = 0
        # Only workers change `_idle`, around their own wait: a waiting worker for each queued item
        # means one of them takes it; a worker whose wait is just timing out still counts as idle
        # and re-checks the queue before it exits, so it cannot lose the item either. A worker just
        # started counts as idle until it takes its item.
        while queue and self._idle + starting < len(queue):
            if self._counted(now) >= self._max_workers:
                break
            if len(self._threads) >= self._hard_cap:
                if not self._warned_cap:
                    self._warned_cap = True
                    _LOGGER.warning(
                        "The background token refresh pool reached its cap of %d threads, all busy: token "
                        "refreshers are hanging; background refreshes wait until one returns.",
                        self._hard_cap,
                    )
                break
            if len(self._threads) >= self._max_workers and not self._warned_grown:
                self._warned_grown = True
                _LOGGER.warning(
                    "Background token refreshers have been running for more than %g s; the refresh pool "
                    "grows past %d workers so other credentials keep refreshing.",
                    self._busy_grace,
                    self._max_workers,
                )
            thread = threading.Thread(target=self._work, name="acs-token-refresh-worker", daemon=True)
            self._threads.add(thread)
            try:
                thread.start()
            except BaseException:
                self._threads.discard(thread)
                if self._threads or starting or not submitted:
                    break  # a running worker takes the item when it is done with its own
                queue.pop()  # nobody would run it: the caller retries later
                raise
            starting += 1
        self._cond.notify(len(queue))

    def check(self, now: float) -> float:
        """Start a worker for queued work if a busy one has outlived its grace; return when to check again
        (``inf`` when nothing waits)."""
        with self._cond:
            if self._stopped or not self._queue or not self._busy:
                return float("inf")
            self._grow_locked(now)
            pending = [since + self._busy_grace for since in self._busy.values() if now - since <= self._busy_grace]
            return min(pending) if pending else float("inf")

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
                callback, ref = self._queue.popleft()
                self._busy[me] = self._clock()
            owner = ref()
            try:
                if owner is not None:
                    callback(owner)
            except Exception as exc:
                # The credential's callback handles its refresher's errors; this is a last resort that
                # keeps the worker alive. Only the type: the text may hold a secret.
                _LOGGER.error("A background token refresh crashed (%s).", type(exc).__name__)
            finally:
                with self._cond:
                    self._busy.pop(me, None)
            # Not holding the owner while idle lets a dropped credential be collected.
            del callback, owner, ref

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
    """A heap of due callbacks served by one daemon timer thread, dispatching to a worker pool.

    Threads start on the first :meth:`schedule`. Due times are read on ``clock`` (monotonic by default).

    Args:
        clock: The monotonic clock; the due times given to :meth:`schedule` use it.
        wall_clock: The wall clock, to follow wall-clock steps for entries with a ``wall_due``; default
            ``time.time`` with the default ``clock``, else ``clock`` itself (a test's one fake clock).
        max_workers: Bound of the worker pool.
        idle_timeout: Seconds an idle worker waits for work before exiting.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        wall_clock: Callable[[], float] | None = None,
        max_workers: int = MAX_WORKERS,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self._clock = clock
        if wall_clock is None:
            wall_clock = time.time if clock is time.monotonic else clock
        self._wall_clock = wall_clock
        self._offset = wall_clock() - clock()
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[_Entry] = []
        self._cancelled = 0
        # Entries whose owner was collected, marked by the weak reference callback (lock-free appends).
        self._dead: collections.deque[_Entry] = collections.deque()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._pool = _WorkerPool(max_workers, idle_timeout, clock)

    def schedule(
        self,
        due: float,
        owner: _T,
        callback: Callable[[_T], None],
        *,
        wall_due: float | None = None,
        inline: bool = False,
    ) -> _Entry:
        """Run ``callback(owner)`` at ``due``, unless ``owner`` is collected first.

        Args:
            due: When, on the monotonic clock.
            owner: Held weakly.
            callback: Called with ``owner``; on a worker thread, or on the timer thread when ``inline``.
            wall_due: ``due`` on the wall clock, for a time computed from a token's expiry.
            inline: A short callback that may run on the timer thread.

        Raises:
            RuntimeError: The scheduler is stopped, or its timer thread could not be started (the entry
                is then not scheduled).
        """
        entry = _Entry(self, due, next(self._seq), owner, callback, wall_due, inline)  # type: ignore[arg-type]
        with self._cond:
            if self._stopped:
                raise RuntimeError("the token refresh scheduler is stopped")
            self._reap_locked()
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
        self._tally_locked(entry)

    def _tally_locked(self, entry: _Entry) -> None:
        if not entry.in_heap:
            return  # already taken by the timer thread: nothing to tally
        self._cancelled += 1
        if self._cancelled > _COMPACT_MIN and self._cancelled * 2 > len(self._heap):
            self._heap = [e for e in self._heap if not e.cancelled]
            heapq.heapify(self._heap)
            self._cancelled = 0

    def _reap_locked(self) -> None:
        """Tally the entries whose owners were collected (marked by :func:`_owner_died`)."""
        dead = self._dead
        while dead:
            self._tally_locked(dead.popleft())

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

    def heap_size(self) -> int:
        """Entries held in the heap, cancelled ones not yet dropped included."""
        with self._cond:
            self._reap_locked()
            return len(self._heap)

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

    def _follow_wall_clock_locked(self) -> None:
        offset = self._wall_clock() - self._clock()
        if abs(offset - self._offset) <= _STEP_TOLERANCE:
            return
        self._offset = offset
        moved = False
        for entry in self._heap:
            if entry.wall_due is not None:
                entry.due = entry.wall_due - offset
                moved = True
        if moved:
            heapq.heapify(self._heap)

    def _take_due(self) -> list[_Entry] | None:
        """Wait until entries are due and pop them; ``None`` once stopped."""
        with self._cond:
            while True:
                if self._stopped:
                    return None
                self._reap_locked()
                self._follow_wall_clock_locked()
                heap = self._heap
                while heap and heap[0].cancelled:
                    heapq.heappop(heap).in_heap = False
                    self._cancelled = max(0, self._cancelled - 1)
                now = self._clock()
                check = self._pool.check(now)
                if not heap:
                    self._cond.wait(min(check - now, _MAX_WAIT) if check < float("inf") else _MAX_WAIT)
                    continue
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
                self._cond.wait(max(0.0, min(heap[0].due - now, check - now, _MAX_WAIT)))

    def _retry_later(self, entry: _Entry) -> None:
        """Put back an entry whose worker could not be started, :data:`_SUBMIT_RETRY` from now."""
        with self._cond:
            if self._stopped or entry.cancelled:
                return
            entry.due = self._clock() + _SUBMIT_RETRY
            entry.wall_due = None
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
                    if entry.inline:
                        entry.callback(owner)
                    else:
                        self._pool.submit(entry.callback, owner)
                except Exception as exc:  # e.g. RuntimeError("can't start new thread"): keep the timer alive
                    if entry.inline:
                        _LOGGER.error("A token refresh deadline callback crashed (%s).", type(exc).__name__)
                    else:
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
            parent._clock,
            wall_clock=parent._wall_clock,
            max_workers=parent._pool._max_workers,
            idle_timeout=parent._pool._idle_timeout,
        )
        child._adopt(pending)


after_fork_in_child(_reset_after_fork)

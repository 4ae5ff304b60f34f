"""The async credential under trio: the binding to a trio run (imported only when trio is what runs).

trio has no event loop object and no ``call_at``: a refresh runs as a trio *system task* (it outlives the
caller that started it, as the asyncio task does, and trio cancels it when the run ends), callers wait on a
``trio.Event`` of the attempt, and a proactive refresh is a system task that sleeps until it is due. This
module imports trio at its top: :mod:`._credential` imports it only after finding ``"trio"`` in
``sys.modules``, so a program that does not use trio never imports it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from .. import _lifecycle as lc

if TYPE_CHECKING:
    from .._scheduler import Scheduler
    from ._credential import CommunicationTokenCredential, _Binding

__all__ = ["TrioBinding", "running_trio_binding"]

_T = TypeVar("_T")


def _noop() -> None:
    """Queued on a trio run to learn whether it still runs."""


class _TrioRun:
    """An attempt's system task: its cancel scope, the event its waiters wait on, and its end."""

    __slots__ = ("ended", "event", "scope")

    def __init__(self) -> None:
        self.scope = trio.CancelScope()
        self.event = trio.Event()
        self.ended = trio.Event()


class _TrioEntry:
    __slots__ = ("scope",)

    def __init__(self) -> None:
        self.scope = trio.CancelScope()

    def cancel(self) -> None:
        self.scope.cancel()


async def _sleep_then_fire(
    entry: _TrioEntry, deadline: float, owner: weakref.ref[Any], callback: Callable[[Any], None]
) -> None:
    try:
        with entry.scope:
            await trio.sleep_until(deadline)
            target = owner()
            if target is not None:
                callback(target)
    except trio.Cancelled:
        # The run is ending (its system tasks are cancelled): the next run's first call reschedules.
        target = owner()
        if target is not None and hasattr(target, "_park"):
            target._park()
        raise


class _TrioScheduler:
    """Schedules callbacks in sleeping system tasks of the current trio run (due times on the credential's
    monotonic clock)."""

    __slots__ = ("_clock",)

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def schedule(
        self,
        due: float,
        owner: _T,
        callback: Callable[[_T], None],
        *,
        wall_due: float | None = None,
        inline: bool = False,
    ) -> _TrioEntry:
        entry = _TrioEntry()
        deadline = trio.current_time() + max(0.0, due - self._clock())
        trio.lowlevel.spawn_system_task(_sleep_then_fire, entry, deadline, weakref.ref(owner), callback)
        return entry


async def _refresh(credential: CommunicationTokenCredential, attempt: lc.Attempt, run: _TrioRun) -> None:
    """The system task of one attempt: whatever ends it, the attempt is finished here."""
    value: object = None
    error: BaseException | None = None
    try:
        with run.scope:
            value = await credential._call(attempt)
        if run.scope.cancelled_caught:
            # trio's Cancelled must not outlive its scope: the waiters see a plain cancellation.
            error = asyncio.CancelledError()
    except trio.Cancelled:
        # The run is ending (its system tasks are cancelled): record it, and let trio have its Cancelled.
        error = asyncio.CancelledError()
        raise
    except BaseException as exc:  # a system task must not raise: the outcome goes to the waiters
        error = exc
    finally:
        credential._feed(lc.Finish(attempt, value, error))
        run.ended.set()


class TrioBinding:
    """A credential's binding to one trio run, identified by its ``TrioToken``."""

    __slots__ = ("_token",)

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token

    @property
    def key(self) -> trio.lowlevel.TrioToken:
        return self._token

    def alive(self) -> bool:
        try:
            self._token.run_sync_soon(_noop)
        except trio.RunFinishedError:
            return False
        return True

    def scheduler(self, monotonic: Callable[[], float]) -> Scheduler:
        return _TrioScheduler(monotonic)

    def start(self, credential: CommunicationTokenCredential, attempt: lc.Attempt) -> None:
        run = _TrioRun()
        attempt.handle = run
        trio.lowlevel.spawn_system_task(_refresh, credential, attempt, run)

    def cancel(self, attempt: lc.Attempt) -> None:
        run = attempt.handle
        if isinstance(run, _TrioRun):
            run.scope.cancel()

    async def wait(self, attempt: lc.Attempt) -> None:
        run = attempt.handle
        assert isinstance(run, _TrioRun)
        await run.event.wait()

    async def settle(self, attempt: lc.Attempt, grace: float) -> None:
        run = attempt.handle
        if isinstance(run, _TrioRun):
            with trio.move_on_after(grace):
                await run.ended.wait()

    def watch(self, credential: CommunicationTokenCredential) -> None:
        """Nothing to do: a run's end cancels the sleeping system task, which parks the credential."""


def running_trio_binding(bound: _Binding | None) -> _Binding | None:
    """The binding of the running trio run (``bound`` when it is that run's), ``None`` outside trio."""
    try:
        token = trio.lowlevel.current_trio_token()
    except RuntimeError:
        return None
    if bound is not None and bound.key is token:
        return bound
    return TrioBinding(token)

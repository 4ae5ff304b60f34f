"""The user access token credential for asyncio (``azure.communication.common.aio``).

The state, the transitions and the private test seam (``_clock``, ``_scheduler``, ``_jitter``,
``_exchanger_factory``) are those of :mod:`azure.communication.common._credential`; this shell only
awaits. One refresh runs at a time as a task that the credential references strongly; callers await it
through :func:`asyncio.shield`, so a cancelled caller does not cancel it for the others, and its exception
is consumed in a done-callback so asyncio never reports it as unretrieved.

The credential binds to the event loop it is created in, or to the loop of its first ``get_token`` when
created outside one; after that loop closes it rebinds to the next (repeated ``asyncio.run``). Proactive
refresh uses the bound loop's ``call_at`` and holds the credential weakly.

A proactive credential that is not bound to a running loop (created outside one, or whose loop shut
down) publishes its token as never fresh (``_park``), so its next call takes the slow path, binds to that
call's loop and schedules the refresh there. A loop's shutdown is noticed through its async generator
hooks: one small watcher generator per loop is closed by ``loop.shutdown_asyncgens()``, which
``asyncio.run``, ``asyncio.Runner`` and pytest-asyncio call before closing the loop. A loop closed without
it (a bare ``loop.close()``) is noticed later, when the token leaves its fresh window.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, TypeVar, overload

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from .._credential import _Attempt, _CredentialCore
from .._refresh import Action
from .._scheduler import Scheduler, fork_generation
from .._tokens import TokenInput, TokenSnapshot

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["AsyncTokenRefresher", "AzureCommunicationTokenCredential", "CommunicationTokenCredential"]

_T = TypeVar("_T")

#: A no-argument callable returning an awaitable of a new token (``str``, ``AccessToken`` or
#: ``AccessTokenInfo``), typically an ``async def`` function.
AsyncTokenRefresher = Callable[[], Awaitable[TokenInput]]


def _default_exchanger(
    resource_endpoint: str,
    token_credential: AsyncTokenCredential,
    scopes: Sequence[str] | None,
    **pipeline_kwargs: Any,
) -> Any:
    from ._entra import AsyncEntraTokenExchanger

    return AsyncEntraTokenExchanger(resource_endpoint, token_credential, scopes, **pipeline_kwargs)


def _fire(owner: weakref.ref[Any], callback: Callable[[Any], None]) -> None:
    target = owner()
    if target is not None:
        callback(target)


class _LoopScheduler:
    """Schedules on an event loop's monotonic ``call_at`` a due time given on the credential's clock."""

    __slots__ = ("_clock", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float]) -> None:
        self._loop = loop
        self._clock = clock

    def schedule(self, due: float, owner: _T, callback: Callable[[_T], None]) -> asyncio.TimerHandle:
        delay = max(0.0, due - self._clock())
        return self._loop.call_at(self._loop.time() + delay, _fire, weakref.ref(owner), callback)


def _consume(task: asyncio.Task[None]) -> None:
    # Every caller reads the outcome from the attempt; retrieving it here keeps asyncio quiet.
    if not task.cancelled():
        task.exception()


def _background_fire(credential: CommunicationTokenCredential) -> None:
    """Called on the bound loop when a proactive credential's refresh is due."""
    loop = credential._loop
    if loop is not None and credential._background_due(credential._clock()):
        credential._start(loop, background=True)


# -- noticing that a loop shuts down ------------------------------------------------------------------------

# The proactive credentials bound to each loop that has a shutdown watcher. Keyed weakly; the values do not
# reference the loop, so a closed loop and its entry are collected together.
_watched: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakSet[CommunicationTokenCredential]] = (
    weakref.WeakKeyDictionary()
)
# Loops of several threads may bind credentials at once.
_watched_lock = threading.Lock()
# The timer that keeps a loop's watcher alive for as long as the loop is open: it never fires in practice
# (about 35,000 years); loop.close() drops it, and the watcher with it.
_WATCHER_KEEPALIVE: Final = 2.0**40


def _reset_watched_lock() -> None:
    global _watched_lock
    # A parent thread may have held it at the fork; that thread does not exist in the child.
    _watched_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_watched_lock)


async def _park_at_shutdown(
    loop: weakref.ref[asyncio.AbstractEventLoop], credentials: weakref.WeakSet[CommunicationTokenCredential]
) -> AsyncGenerator[None, None]:
    """Parks the credentials bound to ``loop`` when the loop closes its async generators (shutdown)."""
    try:
        yield
    finally:
        target = loop()
        for credential in list(credentials):
            if credential._loop is target:
                credential._park()


def _keep(_watcher: object) -> None:
    """Holds a loop's watcher in a timer handle of that loop (it never runs)."""


def _watch(loop: asyncio.AbstractEventLoop, credential: CommunicationTokenCredential) -> None:
    """Make ``credential`` park when ``loop`` shuts down (best effort: some loops cannot be watched)."""
    if getattr(loop, "_asyncgens_shutdown_called", False):
        return  # too late: the loop is shutting down, and a new generator would only draw a warning
    with _watched_lock:
        try:
            credentials = _watched.get(loop)
        except TypeError:  # a loop that cannot be weakly referenced
            return
        if credentials is None:
            credentials = weakref.WeakSet()
            watcher = _park_at_shutdown(weakref.ref(loop), credentials)
            # Running it to its first yield registers it with the loop's async generator hooks, so the
            # loop's shutdown_asyncgens() closes it; held by the loop only, it dies with the loop.
            with contextlib.suppress(StopIteration):
                watcher.asend(None).send(None)
            loop.call_at(loop.time() + _WATCHER_KEEPALIVE, _keep, watcher)
            _watched[loop] = credentials
        credentials.add(credential)


class CommunicationTokenCredential(_CredentialCore):
    """A user access token credential for Azure Communication Services, for asyncio.

    The asyncio counterpart of :class:`azure.communication.common.CommunicationTokenCredential`, with the
    same modes and refresh rules; ``token_refresher`` must return an awaitable (an ``async def`` function)
    and ``token_credential`` is an azure-core ``AsyncTokenCredential``. Works as the credential of the
    azure-core async clients (``AsyncTokenCredential`` and ``AsyncSupportsTokenInfo``).

    Args:
        token: A JWT or opaque token string, or an ``AccessToken`` / ``AccessTokenInfo``.
        token_refresher: An ``async def`` function (or a callable returning an awaitable) returning a new
            token (``str``, ``AccessToken`` or ``AccessTokenInfo``).
        proactive_refresh: Refresh in the background on the bound loop, 10 minutes before expiry.
        resource_endpoint: The Communication Services endpoint (Entra mode).
        token_credential: An azure-core ``AsyncTokenCredential`` for the Entra user (Entra mode).
        scopes: Entra scopes (Entra mode); default ``https://communication.azure.com/clients/.default``.

    Raises:
        TypeError: Arguments of the wrong type, or of two modes at once.
        ValueError: No token and no refresher, ``proactive_refresh`` without a refresher, an empty token.
    """

    __slots__ = ("__weakref__", "_loop", "_task")

    @overload
    def __init__(
        self,
        token: str | AccessToken | AccessTokenInfo | None = None,
        *,
        token_refresher: AsyncTokenRefresher | None = None,
        proactive_refresh: bool = False,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        resource_endpoint: str,
        token_credential: AsyncTokenCredential,
        scopes: Sequence[str] | None = None,
        **pipeline_kwargs: Any,
    ) -> None: ...

    def __init__(
        self,
        token: str | AccessToken | AccessTokenInfo | None = None,
        *,
        token_refresher: AsyncTokenRefresher | None = None,
        proactive_refresh: bool = False,
        resource_endpoint: str | None = None,
        token_credential: AsyncTokenCredential | None = None,
        scopes: Sequence[str] | None = None,
        _clock: Callable[[], float] | None = None,
        _scheduler: Scheduler | None = None,
        _jitter: Callable[[], float] | None = None,
        _exchanger_factory: Callable[..., Any] = _default_exchanger,
        **pipeline_kwargs: Any,
    ) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._setup(
            token,
            token_refresher,
            proactive_refresh,
            resource_endpoint,
            token_credential,
            scopes,
            pipeline_kwargs,
            _clock,
            _scheduler,
            _jitter,
            _exchanger_factory,
        )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Bound, and proactive refresh started, by the first get_token: parking sends it to the slow path.
            if self._proactive:
                self._park()
            return
        self._bind(loop)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the user access token (``scopes`` and keyword arguments are ignored).

        Raises:
            RuntimeError: The credential is closed, the refresher called its own credential, or it is used
                outside asyncio or from a second running event loop.
            Exception: Whatever the token refresher raised, unchanged.
        """
        snapshot = self._snapshot
        if self._clock() < snapshot.refresh_on:
            return snapshot.access_token
        return (await self._obtain()).access_token

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """Return the user access token with its ``refresh_on`` (``scopes`` and ``options`` are ignored).

        Raises:
            RuntimeError: As for :meth:`get_token`.
            Exception: Whatever the token refresher raised, unchanged.
        """
        snapshot = self._snapshot
        if self._clock() < snapshot.refresh_on:
            return snapshot.access_token_info
        return (await self._obtain()).access_token_info

    async def close(self) -> None:
        """Close the credential: later calls raise ``RuntimeError``; the background refresh stops.

        A refresh in flight is cancelled and awaited; callers waiting for it get ``RuntimeError``.
        Idempotent. In Entra mode the exchanger is closed too.
        """
        if not self._mark_closed():
            return
        attempt, self._attempt = self._attempt, None
        if attempt is not None:
            attempt.done = True
        task, self._task = self._task, None
        if task is not None and not task.done() and not task.get_loop().is_closed():
            task.cancel()
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if task.get_loop() is running and task is not asyncio.current_task():
                # wait() rather than await: the task's CancelledError is not ours to raise.
                await asyncio.wait([task])
        if self._exchanger is not None:
            await self._exchanger.close()

    async def __aenter__(self) -> CommunicationTokenCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- the slow path ---------------------------------------------------------------------------------

    def _due_callback(self) -> Callable[[Any], None]:
        return _background_fire

    def _current_scheduler(self) -> Scheduler:
        if self._scheduler is not None:
            return self._scheduler
        assert self._loop is not None
        return _LoopScheduler(self._loop, self._clock)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind to ``loop`` (or, parked on it, resume there) and schedule the proactive refresh."""
        generation = fork_generation()
        if self._loop is not loop or self._generation != generation:
            self._loop = loop
            self._generation = generation
            # A refresh of a closed loop (or of the parent process) can never finish: forget it rather
            # than wait on it forever.
            self._attempt = None
            self._task = None
        self._unpark()
        if self._proactive and not self._closed:
            self._reschedule(self._first_due())
            _watch(loop, self)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"The asyncio {type(self).__name__} must be awaited in a running asyncio event loop; "
                "other event loop libraries (such as trio) are not supported: use the sync "
                "azure.communication.common.CommunicationTokenCredential there."
            ) from None
        bound = self._loop
        if bound is not loop or self._parked is not None:
            if (
                bound is not None
                and bound is not loop
                and not bound.is_closed()
                and self._generation == fork_generation()  # a forked child never runs the parent's loop
            ):
                raise RuntimeError(
                    f"This {type(self).__name__} is bound to another event loop that is still open; "
                    "create one credential per event loop."
                )
            self._bind(loop)
        return loop

    def _start(self, loop: asyncio.AbstractEventLoop, *, background: bool) -> _Attempt:
        attempt = self._attempt = _Attempt(None, background)
        task = self._task = loop.create_task(self._refresh(attempt))
        attempt.owner = task
        task.add_done_callback(_consume)
        return attempt

    async def _refresh(self, attempt: _Attempt) -> None:
        value: object = None
        error: BaseException | None = None
        refresher = self._refresher
        assert refresher is not None
        try:
            result = refresher()
            if not inspect.isawaitable(result):
                raise TypeError(
                    "token_refresher must return an awaitable (make it an async def function), "
                    f"not {type(result).__name__}."
                )
            value = await result
        except BaseException as exc:  # waiters must be released whatever happens
            error = exc
        if self._task is attempt.owner:
            self._task = None
        self._complete(attempt, value, error)
        if error is not None:
            raise error

    async def _obtain(self) -> TokenSnapshot:
        loop = self._running_loop()
        if self._closed:
            raise self._closed_error()
        attempt = self._attempt
        if attempt is not None and attempt.owner is asyncio.current_task():
            raise self._reentrant_error()
        action = self._decide(self._clock())
        if action is Action.RETURN_CACHED:
            return self._current()
        if action is Action.RAISE_LAST_ERROR:
            self._raise_last_failure()
        if action is Action.REFRESH:
            attempt = self._start(loop, background=False)
        assert attempt is not None
        task = attempt.owner
        assert isinstance(task, asyncio.Task)
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                raise  # this caller was cancelled; the refresh goes on for the others
            current = asyncio.current_task()
            cancelling = getattr(current, "cancelling", None)
            if cancelling is not None and cancelling():
                raise
        except Exception:  # noqa: S110 - the outcome is read from the attempt below
            pass
        return self._outcome(attempt)


#: The name used by the JavaScript SDK's documentation.
AzureCommunicationTokenCredential = CommunicationTokenCredential

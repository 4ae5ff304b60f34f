"""The user access token credential for asyncio and trio (``azure.communication.common.aio``).

The lifecycle is that of :mod:`azure.communication.common._lifecycle`, as in the threading credential;
this shell only awaits. One refresh runs at a time, as a task of the running library (an asyncio task, or
a trio system task) that the credential references strongly. The task's completion, whatever ends it (a
result, an error, a cancellation before its first step), finishes the attempt: asyncio through the task's
done-callback, trio in the task's own ``finally``. Callers wait on an event of the attempt, never on the
task itself, so a cancelled caller only ever sees its own cancellation and never cancels the refresh for
the others. At the attempt's deadline (``refresh_timeout``) the task is cancelled and its waiters get
``TimeoutError``.

The credential binds to the event loop (or trio run) it is created in, or to the one of its first call
when created outside one; after that loop closes it rebinds to the next (repeated ``asyncio.run``). Until
its first call it publishes its token as never fresh, so the first call takes the slow path, which checks
the running library and loop once: a credential used from a second open loop, or under another library,
fails at its first call rather than at its first refresh, at no cost to the fresh path.

Proactive refresh uses the bound loop's ``call_at`` (a trio system task under trio) and holds the
credential weakly. A proactive credential whose loop shuts down publishes its token as never fresh
(``_park``), so its next call takes the slow path, binds to that call's loop and schedules there. An asyncio
loop's shutdown is noticed through its async generator hooks: one small watcher generator per loop is closed
by ``loop.shutdown_asyncgens()``, which ``asyncio.run``, ``asyncio.Runner`` and pytest-asyncio call before
closing the loop; a trio run's through the cancellation of its system tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, overload

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from .. import _lifecycle as lc
from .._credential import _DEFAULT_SEAMS, DEFAULT_REFRESH_TIMEOUT, _CredentialBase, _running
from .._fork import after_fork_in_child, fork_generation
from .._tokens import OPAQUE_TOKEN_LIFETIME, TokenInput, TokenSnapshot

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from .._scheduler import ScheduledEntry, Scheduler

__all__ = ["AsyncTokenRefresher", "AzureCommunicationTokenCredential", "CommunicationTokenCredential"]

_T = TypeVar("_T")

#: A no-argument callable returning an awaitable of a new token (``str``, ``AccessToken`` or
#: ``AccessTokenInfo``), typically an ``async def`` function.
AsyncTokenRefresher = Callable[[], Awaitable[TokenInput]]

#: How long ``close()`` waits for a cancelled refresh to end: a refresher that swallows the cancellation
#: must not hang ``close()``; one that honours it ends within a loop iteration or two.
CLOSE_GRACE: Final = 1.0


def _default_exchanger(
    resource_endpoint: str,
    token_credential: AsyncTokenCredential,
    scopes: Sequence[str] | None,
    **pipeline_kwargs: Any,
) -> Any:
    from ._entra import AsyncEntraTokenExchanger

    return AsyncEntraTokenExchanger(resource_endpoint, token_credential, scopes, **pipeline_kwargs)


class _Binding(Protocol):
    """The event loop (or trio run) a credential is bound to, and what the shell does through it."""

    @property
    def key(self) -> object:
        """The loop (or trio token) itself."""
        ...

    def alive(self) -> bool:
        """Whether the loop can still run callbacks."""
        ...

    def scheduler(self, monotonic: Callable[[], float]) -> Scheduler:
        """The default scheduler of proactive refreshes and deadlines on this loop."""
        ...

    def start(self, credential: CommunicationTokenCredential, attempt: lc.Attempt) -> None:
        """Run ``attempt``'s refresher in a task of this loop; the task finishes the attempt."""
        ...

    def cancel(self, attempt: lc.Attempt) -> None:
        """Cancel ``attempt``'s task."""
        ...

    async def wait(self, attempt: lc.Attempt) -> None:
        """Wait until ``attempt`` resolves (raises the caller's own cancellation)."""
        ...

    async def settle(self, attempt: lc.Attempt, grace: float) -> None:
        """Wait at most ``grace`` seconds for ``attempt``'s cancelled task to end."""
        ...

    def watch(self, credential: CommunicationTokenCredential) -> None:
        """Park ``credential`` when the loop shuts down (best effort)."""
        ...


def _fire(owner: weakref.ref[Any], callback: Callable[[Any], None]) -> None:
    target = owner()
    if target is not None:
        callback(target)


class _LoopScheduler:
    """Schedules on an event loop's monotonic ``call_at`` a due time given on the credential's monotonic
    clock."""

    __slots__ = ("_clock", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Callable[[], float]) -> None:
        self._loop = loop
        self._clock = clock

    def schedule(
        self,
        due: float,
        owner: _T,
        callback: Callable[[_T], None],
        *,
        wall_due: float | None = None,
        inline: bool = False,
    ) -> asyncio.TimerHandle:
        delay = max(0.0, due - self._clock())
        return self._loop.call_at(self._loop.time() + delay, _fire, weakref.ref(owner), callback)


class _AsyncioRun:
    """An attempt's task and the event its waiters wait on."""

    __slots__ = ("event", "task")

    def __init__(self, task: asyncio.Task[object] | None, event: asyncio.Event) -> None:
        self.task = task
        self.event = event


def _task_done(credential: CommunicationTokenCredential, attempt: lc.Attempt, task: asyncio.Task[object]) -> None:
    """Finish ``attempt`` with whatever ended its task (also a cancellation before the task's first step)."""
    value: object = None
    error: BaseException | None
    if task.cancelled():
        error = asyncio.CancelledError()
    else:
        error = task.exception()
        if error is None:
            value = task.result()
    credential._feed(lc.Finish(attempt, value, error))


class _AsyncioBinding:
    __slots__ = ("_loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def key(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def alive(self) -> bool:
        return not self._loop.is_closed()

    def scheduler(self, monotonic: Callable[[], float]) -> Scheduler:
        return _LoopScheduler(self._loop, monotonic)

    def start(self, credential: CommunicationTokenCredential, attempt: lc.Attempt) -> None:
        run = _AsyncioRun(None, asyncio.Event())
        attempt.handle = run
        task = self._loop.create_task(credential._call(attempt))
        run.task = task
        task.add_done_callback(functools.partial(_task_done, credential, attempt))

    def cancel(self, attempt: lc.Attempt) -> None:
        run = attempt.handle
        if isinstance(run, _AsyncioRun) and run.task is not None and not self._loop.is_closed():
            run.task.cancel()

    async def wait(self, attempt: lc.Attempt) -> None:
        run = attempt.handle
        assert isinstance(run, _AsyncioRun)
        # Event.wait() awaits a future of its own for each caller: a CancelledError here is always this
        # caller's own cancellation (Python 3.10 has no Task.cancelling() to tell them apart otherwise).
        await run.event.wait()

    async def settle(self, attempt: lc.Attempt, grace: float) -> None:
        run = attempt.handle
        if not isinstance(run, _AsyncioRun) or run.task is None or run.task.done():
            return
        task = run.task
        if task.get_loop() is asyncio.get_running_loop() and task is not asyncio.current_task():
            # wait() rather than await: the task's CancelledError is not ours to raise.
            await asyncio.wait([task], timeout=grace)

    def watch(self, credential: CommunicationTokenCredential) -> None:
        _watch(self._loop, credential)


def _wake(attempt: lc.Attempt) -> None:
    run = attempt.handle
    event = getattr(run, "event", None)
    if event is not None:
        # A waiter left on a loop that has closed cannot be woken, and is not waiting any more.
        with contextlib.suppress(RuntimeError):
            event.set()


def _running_binding(bound: _Binding | None) -> _Binding:
    """The binding of the running loop (``bound`` itself when it is that loop's)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        if bound is not None and bound.key is loop:
            return bound
        return _AsyncioBinding(loop)
    # trio is never imported here: only found when the caller already runs under it.
    if "trio" in sys.modules:
        from ._trio import running_trio_binding

        found = running_trio_binding(bound)
        if found is not None:
            return found
    raise RuntimeError(
        "The async CommunicationTokenCredential must be awaited under asyncio or trio; no running asyncio "
        "event loop or trio run was found (other event loop libraries are not supported: use the sync "
        "azure.communication.common.CommunicationTokenCredential there)."
    )


def _background_fire(credential: CommunicationTokenCredential) -> None:
    """Called on the bound loop when a proactive credential's refresh is due."""
    binding = credential._binding
    if binding is None or not binding.alive():
        return
    attempt = lc.Attempt(background=True)
    verdict = credential._feed(lc.Due(attempt))
    if isinstance(verdict, lc.Run):
        credential._launch(binding, attempt)


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


after_fork_in_child(_reset_watched_lock)


async def _park_at_shutdown(
    loop: weakref.ref[asyncio.AbstractEventLoop], credentials: weakref.WeakSet[CommunicationTokenCredential]
) -> AsyncGenerator[None, None]:
    """Parks the credentials bound to ``loop`` when the loop closes its async generators (shutdown)."""
    try:
        yield
    finally:
        target = loop()
        for credential in list(credentials):
            binding = credential._binding
            if binding is not None and binding.key is target:
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


class CommunicationTokenCredential(_CredentialBase):
    """A user access token credential for Azure Communication Services, for asyncio and trio.

    The async counterpart of :class:`azure.communication.common.CommunicationTokenCredential`, with the
    same modes and refresh rules; ``token_refresher`` must return an awaitable (an ``async def`` function)
    and ``token_credential`` is an azure-core ``AsyncTokenCredential``. Works as the credential of the
    azure-core async clients (``AsyncTokenCredential`` and ``AsyncSupportsTokenInfo``), under asyncio and
    under trio (detected, never imported by this package).

    Args:
        token: A JWT or opaque token string, or an ``AccessToken`` / ``AccessTokenInfo``.
        token_refresher: An ``async def`` function (or a callable returning an awaitable) returning a new
            token (``str``, ``AccessToken`` or ``AccessTokenInfo``).
        proactive_refresh: Refresh in the background on the bound loop, 10 minutes before expiry.
        refresh_timeout: Longest any caller waits for a refresh, in seconds (``None``: no limit): the
            refresh task is then cancelled and the callers get ``TimeoutError``.
        undecodable_token_expiry_interval: Seconds a token whose expiry cannot be read (not a JWT) is
            assumed valid (JS ``undecodableTokenExpiryIntervalInSeconds``).
        resource_endpoint: The Communication Services endpoint (Entra mode).
        token_credential: An azure-core ``AsyncTokenCredential`` (or ``AsyncSupportsTokenInfo``) for the
            Entra user (Entra mode).
        scopes: Entra scopes (Entra mode); default ``https://communication.azure.com/clients/.default``.

    Raises:
        TypeError: Arguments of the wrong type, or of two modes at once.
        ValueError: No token and no refresher, ``proactive_refresh`` without a refresher, an empty token,
            a timeout or interval that is not a positive finite number.
    """

    __slots__ = ("__weakref__", "_binding", "_exchanger_closed")

    _ASYNC = True

    @overload
    def __init__(
        self,
        token: str | AccessToken | AccessTokenInfo | None = None,
        *,
        token_refresher: AsyncTokenRefresher | None = None,
        proactive_refresh: bool = False,
        refresh_timeout: float | None = DEFAULT_REFRESH_TIMEOUT,
        undecodable_token_expiry_interval: float = OPAQUE_TOKEN_LIFETIME,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        resource_endpoint: str,
        token_credential: AsyncTokenCredential,
        scopes: Sequence[str] | None = None,
        refresh_timeout: float | None = DEFAULT_REFRESH_TIMEOUT,
        undecodable_token_expiry_interval: float = OPAQUE_TOKEN_LIFETIME,
        **pipeline_kwargs: Any,
    ) -> None: ...

    def __init__(
        self,
        token: str | AccessToken | AccessTokenInfo | None = None,
        *,
        token_refresher: AsyncTokenRefresher | None = None,
        proactive_refresh: bool = False,
        refresh_timeout: float | None = DEFAULT_REFRESH_TIMEOUT,
        undecodable_token_expiry_interval: float = OPAQUE_TOKEN_LIFETIME,
        resource_endpoint: str | None = None,
        token_credential: AsyncTokenCredential | None = None,
        scopes: Sequence[str] | None = None,
        **pipeline_kwargs: Any,
    ) -> None:
        self._setup(
            token,
            token_refresher,
            proactive_refresh,
            refresh_timeout,
            undecodable_token_expiry_interval,
            resource_endpoint,
            token_credential,
            scopes,
            pipeline_kwargs,
            _DEFAULT_SEAMS,
        )

    _default_exchanger = staticmethod(_default_exchanger)

    def _prepare(self) -> None:
        self._binding: _Binding | None = None
        self._exchanger_closed = False

    def _started(self) -> None:
        try:
            binding = _running_binding(None)
        except RuntimeError:
            binding = None
        # Until the first call checks the running loop (and library), its slow path must see it: the fresh
        # path stays one clock call and one comparison.
        self._parked = True
        self._snapshot = self._state.published().never_fresh()
        if binding is not None:
            self._binding = binding
            self._generation = fork_generation()
            if self._state.config.proactive:
                self._schedule_first()
                binding.watch(self)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the user access token (``scopes`` and keyword arguments are ignored).

        Raises:
            RuntimeError: The credential is closed, the refresher called its own credential, or it is used
                outside asyncio and trio or from a second running event loop.
            TimeoutError: The refresh did not finish within ``refresh_timeout``.
            Exception: Whatever the token refresher raised, unchanged.
        """
        snapshot = self._snapshot
        clock = self._clock  # a local: ``self._clock()`` would be an unspecialised method load (~35 ns)
        if clock() < snapshot.refresh_on:
            return snapshot.access_token
        return (await self._obtain()).access_token

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """Return the user access token with its ``refresh_on`` (``scopes`` and ``options`` are ignored).

        Raises:
            RuntimeError: As for :meth:`get_token`.
            TimeoutError: The refresh did not finish within ``refresh_timeout``.
            Exception: Whatever the token refresher raised, unchanged.
        """
        snapshot = self._snapshot
        clock = self._clock  # a local: ``self._clock()`` would be an unspecialised method load (~35 ns)
        if clock() < snapshot.refresh_on:
            return snapshot.access_token_info
        return (await self._obtain()).access_token_info

    async def close(self) -> None:
        """Close the credential: later calls raise ``RuntimeError``; the background refresh stops.

        A refresh in flight is cancelled and awaited (at most :data:`CLOSE_GRACE` seconds, for a refresher
        that ignores the cancellation); callers waiting for it get ``RuntimeError``. Idempotent, also when
        a previous ``close()`` was itself cancelled. In Entra mode the exchanger is closed too.
        """
        attempt = self._state.attempt
        self._feed(lc.Close())
        try:
            binding = self._binding
            if attempt is not None and binding is not None and binding.alive():
                with contextlib.suppress(RuntimeError):  # not awaited under the task's own loop
                    await binding.settle(attempt, CLOSE_GRACE)
        finally:
            # Also when this close() is cancelled while it waits: the exchanger is closed all the same,
            # or by the next close().
            if self._exchanger is not None and not self._exchanger_closed:
                await self._exchanger.close()
                self._exchanger_closed = True

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
        binding = self._binding
        assert binding is not None
        return binding.scheduler(self._monotonic)

    def _wake(self, attempt: lc.Attempt) -> None:
        _wake(attempt)

    def _cancel_run(self, attempt: lc.Attempt) -> None:
        binding = self._binding
        if binding is not None:
            binding.cancel(attempt)

    def _expire(self, attempt: lc.Attempt) -> None:
        self._feed(lc.Expire(attempt))

    def _park(self) -> None:
        """Send the next call to the slow path, where the shell (re)binds and schedules its refresh.

        The fresh path stays one clock call and one comparison: the published snapshot is the same token
        with ``refresh_on`` at minus infinity until :meth:`_unpark`.
        """
        if self._state.closed:
            return
        self._parked = True
        self._snapshot = self._state.published().never_fresh()
        entry: ScheduledEntry | None
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.cancel()

    def _unpark(self) -> None:
        if self._parked:
            self._parked = False
            self._snapshot = self._state.published()

    def _bind(self) -> _Binding:
        """The binding of the running loop: checked, (re)bound and unparked on the credential's slow path."""
        bound = self._binding
        binding = _running_binding(bound)
        generation = fork_generation()
        if binding is bound and self._generation == generation:
            if self._parked:
                self._resume(binding)
            return binding
        if bound is not None and bound.alive() and self._generation == generation:
            raise RuntimeError(
                f"This {type(self).__name__} is bound to another event loop that is still open; "
                "create one credential per event loop."
            )
        # A refresh of a closed loop (or of the parent process) can never finish: end it rather than
        # wait on it forever.
        attempt = self._state.attempt
        if attempt is not None:
            self._feed(lc.Finish(attempt, None, asyncio.CancelledError()))
        self._binding = binding
        self._generation = generation
        self._entry = None
        self._resume(binding)
        return binding

    def _resume(self, binding: _Binding) -> None:
        self._unpark()
        if self._state.config.proactive and not self._state.closed:
            if self._entry is None:
                self._schedule_first()
            binding.watch(self)

    def _launch(self, binding: _Binding, attempt: lc.Attempt) -> None:
        binding.start(self, attempt)
        self._arm_deadline(attempt)

    async def _call(self, attempt: lc.Attempt) -> object:
        """The refresh task's body: call the refresher and await its result (in the task's own context,
        which child tasks of the refresher inherit)."""
        variable = _running()
        variable.set((*variable.get(), attempt))
        if self._state.closed:
            return None
        refresher = self._refresher
        assert refresher is not None
        result = refresher()
        if not inspect.isawaitable(result):
            raise TypeError(
                "token_refresher must return an awaitable (make it an async def function), "
                f"not {type(result).__name__}."
            )
        return await result

    async def _obtain(self) -> TokenSnapshot:
        binding = self._bind()
        if self._state.closed:
            raise self._closed_error()
        self._check_reentrant()
        attempt = lc.Attempt()
        verdict = self._feed(lc.Begin(attempt))
        if isinstance(verdict, lc.ReturnCached):
            return verdict.snapshot
        if isinstance(verdict, lc.Raise):
            self._raise(verdict)
        if isinstance(verdict, lc.Run):
            self._launch(binding, attempt)
        else:
            assert isinstance(verdict, lc.Wait)
            attempt = verdict.attempt
        if not attempt.done:
            await binding.wait(attempt)
        return self._outcome(attempt)


#: The name used by the JavaScript SDK's documentation.
AzureCommunicationTokenCredential = CommunicationTokenCredential

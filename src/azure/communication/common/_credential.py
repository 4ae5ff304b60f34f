"""The user access token credential for threads (``azure.communication.common.CommunicationTokenCredential``).

The lifecycle (fresh / stale / expired, who refreshes, when to retry, deadlines, closing) is the pure
transition function of :mod:`._lifecycle`; :class:`_CredentialBase` holds what both shells share (argument
checks, the state, running the shell-neutral effects, reading an attempt's outcome) and the threading
shell here only locks, waits and calls. Each attempt is created before the lock is taken and finished in
the same structured block that starts it, so an interrupt at any point can never leave it in flight.

Private test seam: :func:`_create` builds a credential with injected clocks and scheduler (see
:class:`_Seams`); the public constructors show only public parameters.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar, overload

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from . import _lifecycle as lc
from ._fork import alloc_lock, fork_generation
from ._refresh import ON_DEMAND_WINDOW, PROACTIVE_WINDOW, TokenState, initial_snapshot, token_state
from ._tokens import OPAQUE_TOKEN_LIFETIME, TokenInput, TokenSnapshot, check_undecodable_interval, normalize_token

if TYPE_CHECKING:
    import contextvars

    from azure.core.credentials import TokenCredential

    from ._scheduler import ScheduledEntry, Scheduler

__all__ = ["AzureCommunicationTokenCredential", "CommunicationTokenCredential", "TokenRefresher"]

_LOGGER = logging.getLogger("azure.communication.common")

#: A no-argument callable returning a new token: a ``str``, an ``AccessToken`` or an ``AccessTokenInfo``.
TokenRefresher = Callable[[], TokenInput]

#: Default of ``refresh_timeout``: a token service that has not answered in a minute is not going to, and
#: a caller of an azure-core client should see an error rather than hang.
DEFAULT_REFRESH_TIMEOUT: Final = 60.0

# The attempts whose refresher runs in this context. Child tasks (gather, create_task, wait_for) and
# context-copying executors (asyncio.to_thread) inherit it, so a refresher that reaches its own credential
# through one of them is recognised instead of waiting on itself forever.
# Made at the first refresh (see _running): importing contextvars loads an extension module, about 0.3 ms
# that code which never refreshes a token need not pay at import.
_RUNNING: dict[str, contextvars.ContextVar[tuple[lc.Attempt, ...]]] = {}


def _running() -> contextvars.ContextVar[tuple[lc.Attempt, ...]]:
    """The context variable of the attempts whose refresher runs in this context (one per process)."""
    running = _RUNNING.get("attempts")
    if running is None:
        import contextvars

        # setdefault is atomic: threads that race here all get the first variable made.
        running = _RUNNING.setdefault("attempts", contextvars.ContextVar("acs_token_refreshes", default=()))
    return running


_C = TypeVar("_C", bound="_CredentialBase")


class _Seams(lc._Record):
    """What tests inject (see :func:`_create`); ``None`` means the default.

    Args:
        clock: The wall clock (seconds since the epoch; default ``time.time``): token expiry.
        monotonic: The monotonic clock (default ``time.monotonic``, or ``clock`` when only that is
            given, so a test's one fake clock drives both): gaps, back-off, deadlines, schedules.
        scheduler: ``schedule(due, owner, callback, *, wall_due=None, inline=False) -> entry`` with
            ``entry.cancel()``; ``due`` on ``monotonic``. Default: the process-wide timer (sync) or the
            bound event loop (async).
        jitter: A ``Callable[[], float]`` returning a fraction in ``[0, 1)`` (default ``random.random``).
        exchanger_factory: Builds the Entra exchanger from ``(resource_endpoint, token_credential, scopes,
            **pipeline_kwargs)``.
    """

    __slots__ = ("clock", "exchanger_factory", "jitter", "monotonic", "scheduler")

    clock: Callable[[], float] | None
    monotonic: Callable[[], float] | None
    scheduler: Scheduler | None
    jitter: Callable[[], float] | None
    exchanger_factory: Callable[..., Any] | None

    def __init__(
        self,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] | None = None,
        scheduler: Scheduler | None = None,
        jitter: Callable[[], float] | None = None,
        exchanger_factory: Callable[..., Any] | None = None,
    ) -> None:
        lc._set(self, "clock", clock)
        lc._set(self, "monotonic", monotonic)
        lc._set(self, "scheduler", scheduler)
        lc._set(self, "jitter", jitter)
        lc._set(self, "exchanger_factory", exchanger_factory)


_DEFAULT_SEAMS: Final = _Seams()


def _create(
    cls: type[_C],
    *args: Any,
    _clock: Callable[[], float] | None = None,
    _monotonic: Callable[[], float] | None = None,
    _scheduler: Scheduler | None = None,
    _jitter: Callable[[], float] | None = None,
    _exchanger_factory: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> _C:
    """Build a ``cls`` credential with the private test seams (see :class:`_Seams`).

    Args:
        cls: The sync or the async ``CommunicationTokenCredential``.
        *args: The constructor's positional arguments.
        **kwargs: The constructor's keyword arguments.
    """
    credential = cls.__new__(cls)
    seams = _Seams(_clock, _monotonic, _scheduler, _jitter, _exchanger_factory)
    credential._init(args, kwargs, seams)
    return credential


def _unwrap_partial(fn: object) -> object:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return fn


def is_async_callable(fn: object) -> bool:
    """Whether calling ``fn`` gives a coroutine: an ``async def`` function or method, a ``partial`` of one,
    or an object with an ``async def __call__``."""
    target = _unwrap_partial(fn)
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(type(target), "__call__", None)  # noqa: B004 - the class's, not the instance's
    return not inspect.isfunction(target) and inspect.iscoroutinefunction(call)


def _check_refresh_timeout(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"refresh_timeout must be a number of seconds or None, not {type(value).__name__}.")
    seconds = float(value)
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"refresh_timeout must be a positive, finite number of seconds or None, got {value!r}.")
    return seconds


class _CredentialBase:
    """What the threading and the async credential share; no locking, no waiting.

    The shells' constructors call :meth:`_setup` (:func:`_create` reaches it through :meth:`_init`), feed
    lifecycle events through :meth:`_feed` (under their lock) and run the shell-specific effects (waking
    waiters, cancelling a task) themselves.
    """

    __slots__ = (
        "_clock",
        "_entry",
        "_exchanger",
        "_generation",
        "_jitter",
        "_monotonic",
        "_parked",
        "_refresher",
        "_scheduler",
        "_snapshot",
        "_state",
    )

    _ASYNC: bool = False

    #: Builds the Entra exchanger of the shell's flavour from ``(resource_endpoint, token_credential,
    #: scopes, **pipeline_kwargs)`` (the seams may replace it).
    _default_exchanger: Callable[..., Any]

    def _init(self, args: tuple[Any, ...], kwargs: dict[str, Any], seams: _Seams) -> None:
        """Set up as the public constructor would with ``args`` and ``kwargs``, but with ``seams``."""
        bound = inspect.signature(type(self).__init__).bind(self, *args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        values.pop("self")
        self._setup(**values, seams=seams)

    def _setup(
        self,
        token: object,
        token_refresher: object,
        proactive_refresh: bool,
        refresh_timeout: object,
        undecodable_token_expiry_interval: object,
        resource_endpoint: object,
        token_credential: object,
        scopes: object,
        pipeline_kwargs: dict[str, Any],
        seams: _Seams,
    ) -> None:
        """Check the constructor's arguments and build the state; the shell's hooks run before and after."""
        self._prepare()
        self._configure(
            token,
            token_refresher,
            proactive_refresh,
            refresh_timeout,
            undecodable_token_expiry_interval,
            resource_endpoint,
            token_credential,
            scopes,
            pipeline_kwargs,
            seams,
        )
        self._started()

    def _prepare(self) -> None:
        """The shell's own fields, set before the arguments are checked."""
        raise NotImplementedError

    def _started(self) -> None:
        """The shell's own start (scheduling a proactive refresh, binding to a running loop)."""
        raise NotImplementedError

    def _configure(
        self,
        token: object,
        token_refresher: object,
        proactive_refresh: bool,
        refresh_timeout: object,
        undecodable_token_expiry_interval: object,
        resource_endpoint: object,
        token_credential: object,
        scopes: object,
        pipeline_kwargs: dict[str, Any],
        seams: _Seams,
    ) -> None:
        clock = seams.clock
        self._clock: Callable[[], float] = time.time if clock is None else clock
        monotonic = seams.monotonic
        if monotonic is None:
            monotonic = time.monotonic if clock is None else clock
        self._monotonic: Callable[[], float] = monotonic
        self._scheduler = seams.scheduler
        self._jitter: Callable[[], float] = random.random if seams.jitter is None else seams.jitter
        self._entry: ScheduledEntry | None = None
        self._exchanger: Any = None
        self._generation = fork_generation()
        self._parked = False
        name = type(self).__name__
        timeout = _check_refresh_timeout(refresh_timeout)
        lifetime = check_undecodable_interval(undecodable_token_expiry_interval)
        entra = resource_endpoint is not None or token_credential is not None or scopes is not None
        if entra:
            if token is not None or token_refresher is not None or proactive_refresh:
                raise TypeError(
                    f"{name} takes either token/token_refresher/proactive_refresh or "
                    "resource_endpoint/token_credential/scopes (Entra mode), not both."
                )
            if resource_endpoint is None or token_credential is None:
                raise TypeError(f"{name} in Entra mode needs both resource_endpoint and token_credential.")
            factory = self._default_exchanger if seams.exchanger_factory is None else seams.exchanger_factory
            self._exchanger = factory(resource_endpoint, token_credential, scopes, **pipeline_kwargs)
            self._refresher: Callable[[], object] | None = self._exchanger
            config = lc.Config(ON_DEMAND_WINDOW, False, timeout, lifetime)
            self._install(lc.State(config, TokenSnapshot.empty()))
            return
        if pipeline_kwargs:
            unexpected = sorted(pipeline_kwargs)[0]
            raise TypeError(f"{name}() got an unexpected keyword argument {unexpected!r}.")
        if token_refresher is not None:
            if not callable(token_refresher):
                raise TypeError(
                    f"token_refresher must be a callable with no arguments, not {type(token_refresher).__name__}."
                )
            if not self._ASYNC and is_async_callable(token_refresher):
                raise TypeError(
                    "token_refresher is an async function; use the asyncio credential, "
                    "azure.communication.common.aio.CommunicationTokenCredential, for an async refresher "
                    "(or pass a sync function here)."
                )
        if proactive_refresh and token_refresher is None:
            raise ValueError("proactive_refresh=True needs a token_refresher.")
        if token is None and token_refresher is None:
            raise ValueError(f"{name} needs a token, a token_refresher, or both.")
        self._refresher = token_refresher
        proactive = bool(proactive_refresh)
        window = None if token_refresher is None else (PROACTIVE_WINDOW if proactive else ON_DEMAND_WINDOW)
        config = lc.Config(window, proactive, timeout, lifetime)
        if token is None:
            snapshot = TokenSnapshot.empty()
        else:
            now = self._clock()
            parsed = normalize_token(token, now, undecodable_lifetime=lifetime)
            snapshot = initial_snapshot(parsed, now, window)
        self._install(lc.State(config, snapshot))

    def _install(self, state: lc.State) -> None:
        self._state = state
        self._snapshot = state.published()

    # -- running the lifecycle ------------------------------------------------------------------------

    def _feed(self, event: lc.Event) -> lc.Effect | None:
        """Run ``event`` through the lifecycle (under the shell's lock) and its effects; return the last
        effect (the verdict of a Begin or Due event)."""
        state, effects = lc.step(self._state, event, self._clock(), self._monotonic(), self._jitter())
        self._state = state
        for effect in effects:
            self._apply(effect)
        return effects[-1] if effects else None

    def _apply(self, effect: lc.Effect) -> None:
        if isinstance(effect, lc.Publish):
            snapshot = effect.snapshot
            self._snapshot = snapshot.never_fresh() if self._parked and not self._state.closed else snapshot
        elif isinstance(effect, lc.Resolve):
            attempt = effect.attempt
            attempt.snapshot = effect.snapshot
            attempt.error = effect.error
            attempt.traceback = None if effect.error is None else effect.error.__traceback__
            attempt.usable = effect.usable
            attempt.abandoned = effect.abandoned
            attempt.done = True
            timer, attempt.timer = attempt.timer, None
            if timer is not None:
                timer.cancel()  # type: ignore[attr-defined]
        elif isinstance(effect, lc.Wake):
            self._wake(effect.attempt)
        elif isinstance(effect, lc.Cancel):
            self._cancel_run(effect.attempt)
        elif isinstance(effect, lc.Reschedule):
            self._reschedule(effect.due, effect.wall_due)
        elif isinstance(effect, lc.Unschedule):
            entry, self._entry = self._entry, None
            if entry is not None:
                entry.cancel()
        elif isinstance(effect, lc.Log):
            _LOGGER.log(effect.level, effect.message, *effect.args)

    def _wake(self, attempt: lc.Attempt) -> None:
        raise NotImplementedError

    def _cancel_run(self, attempt: lc.Attempt) -> None:
        """Stop a refresher call (threads cannot: an abandoned call runs on, its result may still count)."""

    def _current_scheduler(self) -> Scheduler:
        raise NotImplementedError

    def _due_callback(self) -> Callable[[Any], None]:
        """The module-level function the scheduler calls with the credential (never a bound method,
        which would hold the credential strongly)."""
        raise NotImplementedError

    def _reschedule(self, due: float, wall_due: float | None = None) -> None:
        """Replace the scheduled background refresh by one at ``due`` (monotonic).

        A scheduler that fails (e.g. it cannot start its thread) is logged, not raised: the token is then
        refreshed on demand, and the next successful refresh schedules again.
        """
        old, self._entry = self._entry, None
        if old is not None:
            old.cancel()
        if not math.isfinite(due):
            return
        try:
            self._entry = self._current_scheduler().schedule(due, self, self._due_callback(), wall_due=wall_due)
        except Exception as exc:
            _LOGGER.warning(
                "Could not schedule the background token refresh (%s); the token is refreshed on demand.",
                type(exc).__name__,
            )

    def _schedule_first(self) -> None:
        due = lc.first_due(self._state, self._clock(), self._monotonic(), self._jitter())
        self._reschedule(due.due, due.wall_due)

    def _arm_deadline(self, attempt: lc.Attempt) -> None:
        """Wake the waiters of ``attempt`` at its deadline (``refresh_timeout``)."""
        if not math.isfinite(attempt.deadline):
            return
        try:
            attempt.timer = self._current_scheduler().schedule(
                attempt.deadline, self, functools.partial(_expire, attempt), inline=True
            )
        except Exception as exc:
            # Waiters still time out on their own wait; the next caller abandons the attempt.
            _LOGGER.debug("Could not schedule the refresh deadline (%s).", type(exc).__name__)

    # -- what a caller gets -----------------------------------------------------------------------------

    def _check_reentrant(self) -> None:
        attempt = self._state.attempt
        # No variable yet means that no refresher has run in this process, so none runs in this context.
        running = _RUNNING.get("attempts")
        if attempt is not None and running is not None and attempt in running.get():
            raise RuntimeError(
                f"The token_refresher called get_token on its own {type(self).__name__}; "
                "a refresher must fetch a new token without using the credential it refreshes."
            )

    def _closed_error(self) -> RuntimeError:
        return RuntimeError(f"This {type(self).__name__} is closed.")

    def _raise(self, verdict: lc.Raise) -> NoReturn:
        error = verdict.error
        if error is None:
            raise self._closed_error()
        # Re-raised from the traceback of the failed call, so repeated raises do not grow it.
        raise error.with_traceback(verdict.traceback)

    def _outcome(self, attempt: lc.Attempt) -> TokenSnapshot:
        """What a caller that waited on ``attempt`` gets: the new token, the cached one, or the error."""
        if self._state.closed:
            raise self._closed_error()
        if attempt.snapshot is not None:
            return attempt.snapshot
        if attempt.usable:
            return self._state.snapshot
        error = attempt.error
        if attempt.abandoned:
            # A new exception for each caller: one instance raised in many threads would share a traceback.
            raise TimeoutError(str(error))
        if isinstance(error, Exception):
            raise error.with_traceback(attempt.traceback)
        if error is None:
            raise RuntimeError("The token refresh this call waited for did not complete; call again to retry.")
        raise RuntimeError(
            f"The token refresh this call waited for was interrupted ({type(error).__name__}); call again to retry."
        ) from error

    # -- not copyable, not picklable ----------------------------------------------------------------------

    def _not_copyable(self) -> TypeError:
        return TypeError(
            f"{type(self).__name__} cannot be pickled or copied: it holds a live token, a refresher and "
            "locks; create a new credential instead (e.g. in each process)."
        )

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise self._not_copyable()

    def __reduce__(self) -> NoReturn:
        raise self._not_copyable()

    def __copy__(self) -> NoReturn:
        raise self._not_copyable()

    def __deepcopy__(self, memo: Any) -> NoReturn:
        raise self._not_copyable()

    def __repr__(self) -> str:
        if self._exchanger is not None:
            mode = "entra"
        elif self._refresher is None:
            mode = "static"
        else:
            mode = "refresher"
        state = self._state
        return (
            f"{type(self).__name__}(mode={mode!r}, proactive_refresh={state.config.proactive}, closed={state.closed})"
        )


def _expire(attempt: lc.Attempt, credential: _CredentialBase) -> None:
    """The deadline of ``attempt`` passed (run by the scheduler)."""
    credential._expire(attempt)  # type: ignore[attr-defined]


def _default_exchanger(
    resource_endpoint: str,
    token_credential: TokenCredential,
    scopes: Sequence[str] | None,
    **pipeline_kwargs: Any,
) -> Any:
    from ._entra import EntraTokenExchanger

    return EntraTokenExchanger(resource_endpoint, token_credential, scopes, **pipeline_kwargs)


def _background_refresh(credential: CommunicationTokenCredential) -> None:
    """Run on a scheduler worker when a proactive credential's refresh is due."""
    credential._background()


class CommunicationTokenCredential(_CredentialBase):
    """A user access token credential for Azure Communication Services, safe to share between threads.

    Works as the ``credential`` of azure-core clients (``TokenCredential`` and ``SupportsTokenInfo``):
    scopes are ignored, the user access token is returned. Three modes:

    - **static**: ``CommunicationTokenCredential(token)``: the token is returned as it is, even expired.
    - **refresher**: ``token_refresher`` is called for a new token when the cached one is within 2 minutes
      of expiry (10 minutes and in the background with ``proactive_refresh=True``); ``token`` is then an
      optional first token.
    - **Entra**: ``resource_endpoint`` and ``token_credential`` (and optional ``scopes``): an Entra ID token
      is exchanged for a user access token whenever one is needed. Other keyword arguments configure the
      exchange's azure-core pipeline (``transport``, ``retry_total``, ...).

    Args:
        token: A JWT or opaque token string, or an ``AccessToken`` / ``AccessTokenInfo``.
        token_refresher: Returns a new token (``str``, ``AccessToken`` or ``AccessTokenInfo``); a plain
            function (an ``async def`` one belongs to :mod:`azure.communication.common.aio`).
        proactive_refresh: Refresh in the background, starting now, 10 minutes before expiry.
        refresh_timeout: Longest a caller waits for a refresh that another caller or the background
            started, in seconds (``None``: no limit); it then gets ``TimeoutError``. A refresher call
            running on the caller's own thread is not interrupted (its own I/O timeouts bound it).
        undecodable_token_expiry_interval: Seconds a token whose expiry cannot be read (not a JWT) is
            assumed valid (JS ``undecodableTokenExpiryIntervalInSeconds``).
        resource_endpoint: The Communication Services endpoint (Entra mode).
        token_credential: An azure-core ``TokenCredential`` (or ``SupportsTokenInfo``) for the Entra user.
        scopes: Entra scopes (Entra mode); default ``https://communication.azure.com/clients/.default``.

    Raises:
        TypeError: Arguments of the wrong type, of two modes at once, or an async refresher.
        ValueError: No token and no refresher, ``proactive_refresh`` without a refresher, an empty token,
            a timeout or interval that is not a positive finite number.
    """

    __slots__ = ("__weakref__", "_cond", "_lock")

    @overload
    def __init__(
        self,
        token: str | AccessToken | AccessTokenInfo | None = None,
        *,
        token_refresher: TokenRefresher | None = None,
        proactive_refresh: bool = False,
        refresh_timeout: float | None = DEFAULT_REFRESH_TIMEOUT,
        undecodable_token_expiry_interval: float = OPAQUE_TOKEN_LIFETIME,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        resource_endpoint: str,
        token_credential: TokenCredential,
        scopes: Sequence[str] | None = None,
        refresh_timeout: float | None = DEFAULT_REFRESH_TIMEOUT,
        undecodable_token_expiry_interval: float = OPAQUE_TOKEN_LIFETIME,
        **pipeline_kwargs: Any,
    ) -> None: ...

    def __init__(
        self,
        token: str | AccessToken | AccessTokenInfo | None = None,
        *,
        token_refresher: TokenRefresher | None = None,
        proactive_refresh: bool = False,
        refresh_timeout: float | None = DEFAULT_REFRESH_TIMEOUT,
        undecodable_token_expiry_interval: float = OPAQUE_TOKEN_LIFETIME,
        resource_endpoint: str | None = None,
        token_credential: TokenCredential | None = None,
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
        self._lock: threading.Lock | None = None
        self._cond: threading.Condition | None = None

    def _started(self) -> None:
        if self._state.config.proactive:
            with self._get_lock():
                self._schedule_first()

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the user access token (``scopes`` and keyword arguments are ignored).

        Raises:
            RuntimeError: The credential is closed, or the refresher called its own credential.
            TimeoutError: A refresh this call waited for did not finish within ``refresh_timeout``.
            Exception: Whatever the token refresher raised, unchanged.
        """
        snapshot = self._snapshot
        clock = self._clock  # a local: ``self._clock()`` would be an unspecialised method load (~35 ns)
        if clock() < snapshot.refresh_on:
            return snapshot.access_token
        return self._obtain().access_token

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """Return the user access token with its ``refresh_on`` (``scopes`` and ``options`` are ignored).

        Raises:
            RuntimeError: The credential is closed, or the refresher called its own credential.
            TimeoutError: A refresh this call waited for did not finish within ``refresh_timeout``.
            Exception: Whatever the token refresher raised, unchanged.
        """
        snapshot = self._snapshot
        clock = self._clock  # a local: ``self._clock()`` would be an unspecialised method load (~35 ns)
        if clock() < snapshot.refresh_on:
            return snapshot.access_token_info
        return self._obtain().access_token_info

    def close(self) -> None:
        """Close the credential: later calls raise ``RuntimeError``; the background refresh stops.

        Does not wait: a refresher call already running may finish, but its result is discarded and the
        callers waiting for it get ``RuntimeError``; no refresher call starts after ``close()`` returns.
        Idempotent. In Entra mode the exchanger is closed too.
        """
        with self._get_lock():
            closing = not self._state.closed
            self._feed(lc.Close())
        if closing and self._exchanger is not None:
            self._exchanger.close()

    def __enter__(self) -> CommunicationTokenCredential:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the slow path ---------------------------------------------------------------------------------

    def _get_lock(self) -> threading.Lock:
        lock = self._lock
        if lock is None or self._generation != fork_generation():
            lock = self._new_lock()
        return lock

    def _new_lock(self) -> threading.Lock:
        with alloc_lock():
            generation = fork_generation()
            if self._generation == generation:
                lock = self._lock
                if lock is None:
                    lock = self._lock = threading.Lock()
                return lock
            # A forked child: the lock may be held by a parent thread, the refresh in flight does not
            # exist here, and the schedule is the parent's. The generation is updated last, so other
            # threads wait on alloc_lock() until this is done.
            self._cond = None
            self._state = lc.replace(self._state, attempt=None)
            lock = self._lock = threading.Lock()
            if self._state.config.proactive and not self._state.closed:
                with lock:
                    self._schedule_first()
            self._generation = generation
            return lock

    def _due_callback(self) -> Callable[[Any], None]:
        return _background_refresh

    def _current_scheduler(self) -> Scheduler:
        scheduler = self._scheduler
        # Looked up on every use, not cached: a forked child gets a fresh process-wide scheduler.
        if scheduler is not None:
            return scheduler
        # Imported here: on-demand credentials never need the scheduler's timer thread, pool or heap.
        from ._scheduler import default_scheduler

        return default_scheduler()

    def _wake(self, attempt: lc.Attempt) -> None:
        cond = self._cond
        if cond is not None:
            cond.notify_all()

    def _expire(self, attempt: lc.Attempt) -> None:
        with self._get_lock():
            self._feed(lc.Expire(attempt))

    def _obtain(self) -> TokenSnapshot:
        lock = self._get_lock()
        snapshot = self._snapshot
        if token_state(snapshot, self._clock()) is TokenState.STALE:
            # Botocore's advisory window: the token is still valid, so never queue behind another caller.
            if not lock.acquire(blocking=False):
                return snapshot
        else:
            lock.acquire()
        # Created before it can be published: whatever interrupts this thread from here on, the except
        # clause below finds the attempt and finishes it, so it never stays in flight.
        attempt = lc.Attempt()
        try:
            try:
                self._check_reentrant()
                verdict = self._feed(lc.Begin(attempt))
                if isinstance(verdict, lc.ReturnCached):
                    return verdict.snapshot
                if isinstance(verdict, lc.Raise):
                    self._raise(verdict)
                if isinstance(verdict, lc.Wait):
                    return self._wait(lock, verdict.attempt)
                self._arm_deadline(attempt)
            finally:
                lock.release()
            self._call(attempt)
        except BaseException as exc:
            if self._state.attempt is attempt:
                self._finish(attempt, None, exc)
            raise
        if attempt.abandoned:
            # This thread ran the refresher past the deadline: it returns when the refresher does, with
            # the token now cached when that is valid (its own late result, or a newer one).
            snapshot = self._state.snapshot
            if not self._state.closed and self._clock() < snapshot.expires_on:
                return snapshot
        return self._outcome(attempt)

    def _wait(self, lock: threading.Lock, attempt: lc.Attempt) -> TokenSnapshot:
        """Wait (holding ``lock`` on entry and exit) until ``attempt`` resolves or its deadline passes."""
        cond = self._cond
        if cond is None:
            cond = self._cond = threading.Condition(lock)
        while not attempt.done and not self._state.closed:
            remaining = attempt.deadline - self._monotonic()
            if remaining <= 0:
                self._feed(lc.Expire(attempt))
                break
            cond.wait(min(remaining, threading.TIMEOUT_MAX))
        return self._outcome(attempt)

    def _call(self, attempt: lc.Attempt) -> None:
        """Call the refresher for ``attempt`` (outside the lock) and finish the attempt with its outcome."""
        refresher = self._refresher
        assert refresher is not None
        variable = _running()
        running = variable.set((*variable.get(), attempt))
        try:
            # Checked on the same line as the call: close() runs under the lock, so either it marked the
            # credential closed before this check, or the refresher call started before close() returned.
            value = None if self._state.closed else refresher()
        except BaseException as exc:  # waiters must be released whatever happens
            self._finish(attempt, None, exc)
            if not isinstance(exc, Exception) and not attempt.background:
                # The caller that ran the refresher sees its own KeyboardInterrupt/SystemExit unchanged; a
                # background worker keeps serving the other credentials.
                raise
            return
        finally:
            variable.reset(running)
        self._finish(attempt, value, None)

    def _finish(self, attempt: lc.Attempt, value: object, error: BaseException | None) -> None:
        with self._get_lock():
            self._feed(lc.Finish(attempt, value, error))

    def _background(self) -> None:
        attempt = lc.Attempt(background=True)
        try:
            with self._get_lock():
                verdict = self._feed(lc.Due(attempt))
                if not isinstance(verdict, lc.Run):
                    return
                self._arm_deadline(attempt)
            self._call(attempt)
        except BaseException as exc:
            if self._state.attempt is attempt:
                self._finish(attempt, None, exc)
            if not isinstance(exc, Exception):
                raise


#: The name used by the JavaScript SDK's documentation.
AzureCommunicationTokenCredential = CommunicationTokenCredential

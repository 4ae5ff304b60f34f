"""The user access token credential for threads (``azure.communication.common.CommunicationTokenCredential``).

This module holds :class:`_CredentialCore`, the state and transitions shared with the asyncio credential
(:mod:`azure.communication.common.aio._credential`), and the threading shell. The decisions themselves
(fresh / stale / expired, who refreshes, when to retry) are the pure functions of :mod:`._refresh`; the
shells only lock, wait and call.

Private test seam (keyword-only constructor arguments, not part of the public overloads):

- ``_clock``: a ``Callable[[], float]`` returning the time in seconds since the epoch (default
  ``time.time``); every timing decision reads it, so tests drive time with a fake clock.
- ``_scheduler``: an object with ``schedule(due, owner, callback) -> entry`` (``entry.cancel()``), see
  :class:`._scheduler.Scheduler`; ``due`` is on ``_clock``. Default: the process-wide
  :func:`._scheduler.default_scheduler` (sync) or the bound event loop's ``call_at`` (asyncio). Tests pass a
  scheduler whose due entries they run themselves.
- ``_jitter``: a ``Callable[[], float]`` returning a fraction in ``[0, 1)`` (default ``random.random``).
- ``_exchanger_factory``: builds the Entra exchanger from ``(resource_endpoint, token_credential, scopes,
  **pipeline_kwargs)`` (default: :class:`._entra.EntraTokenExchanger`).
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
import types
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, overload

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions

from ._refresh import (
    ON_DEMAND_WINDOW,
    PROACTIVE_WINDOW,
    Action,
    TokenState,
    accept_refreshed,
    background_retry_at,
    decide,
    initial_snapshot,
    next_failure_gap,
    proactive_due,
    stale_retry_at,
    token_state,
)
from ._scheduler import ScheduledEntry, Scheduler, default_scheduler, fork_generation
from ._tokens import TokenInput, TokenSnapshot, normalize_token

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

__all__ = ["AzureCommunicationTokenCredential", "CommunicationTokenCredential", "TokenRefresher"]

_LOGGER = logging.getLogger("azure.communication.common")

#: A no-argument callable returning a new token: a ``str``, an ``AccessToken`` or an ``AccessTokenInfo``.
TokenRefresher = Callable[[], TokenInput]

# Shared by every closed credential: never fresh, so each call reaches the closed check.
_CLOSED = TokenSnapshot.empty()
_REFRESHER_RESULT = "the token_refresher result"
# Guards the lazy creation of per-credential locks (most credentials never need one), and their
# replacement in a forked child.
_ALLOC_LOCK = threading.Lock()


def _reset_alloc_lock() -> None:
    global _ALLOC_LOCK
    # A parent thread may have held it at the fork; that thread does not exist in the child.
    _ALLOC_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_alloc_lock)


class _Attempt:
    """One refresher call in flight and, once done, its outcome (read by every caller that waited)."""

    __slots__ = ("background", "done", "error", "owner", "snapshot", "traceback", "usable")

    def __init__(self, owner: object, background: bool) -> None:
        self.owner = owner
        self.background = background
        self.done = False
        self.snapshot: TokenSnapshot | None = None
        self.error: BaseException | None = None
        self.traceback: types.TracebackType | None = None
        self.usable = False


class _CredentialCore:
    """State and transitions shared by the threading and asyncio credentials; no locking, no waiting.

    Subclasses call :meth:`_setup` from ``__init__`` and :meth:`_complete` (under their lock) when a
    refresher call ends; they provide :meth:`_current_scheduler` and the background callback.
    """

    __slots__ = (
        "_attempt",
        "_bg_failures",
        "_clock",
        "_closed",
        "_entry",
        "_exchanger",
        "_failure",
        "_failure_gap",
        "_failure_traceback",
        "_failure_until",
        "_generation",
        "_jitter",
        "_parked",
        "_proactive",
        "_refresher",
        "_scheduler",
        "_snapshot",
        "_window",
    )

    def _setup(
        self,
        token: object,
        token_refresher: object,
        proactive_refresh: bool,
        resource_endpoint: object,
        token_credential: object,
        scopes: object,
        pipeline_kwargs: dict[str, Any],
        clock: Callable[[], float] | None,
        scheduler: Scheduler | None,
        jitter: Callable[[], float] | None,
        exchanger_factory: Callable[..., Any],
    ) -> None:
        self._clock: Callable[[], float] = time.time if clock is None else clock
        self._scheduler = scheduler
        self._jitter: Callable[[], float] = random.random if jitter is None else jitter
        self._closed = False
        self._attempt: _Attempt | None = None
        self._entry: ScheduledEntry | None = None
        self._failure_until = -math.inf
        self._failure_gap = 0.0
        self._failure: BaseException | None = None
        self._failure_traceback: types.TracebackType | None = None
        self._bg_failures = 0
        self._exchanger: Any = None
        self._generation = fork_generation()
        # The real snapshot while a never-fresh view of it is published (see _park).
        self._parked: TokenSnapshot | None = None
        name = type(self).__name__
        entra = resource_endpoint is not None or token_credential is not None or scopes is not None
        if entra:
            if token is not None or token_refresher is not None or proactive_refresh:
                raise TypeError(
                    f"{name} takes either token/token_refresher/proactive_refresh or "
                    "resource_endpoint/token_credential/scopes (Entra mode), not both."
                )
            if resource_endpoint is None or token_credential is None:
                raise TypeError(f"{name} in Entra mode needs both resource_endpoint and token_credential.")
            self._exchanger = exchanger_factory(resource_endpoint, token_credential, scopes, **pipeline_kwargs)
            self._refresher: Callable[[], object] | None = self._exchanger
            self._window = ON_DEMAND_WINDOW
            self._proactive = False
            self._snapshot = TokenSnapshot.empty()
            return
        if pipeline_kwargs:
            unexpected = sorted(pipeline_kwargs)[0]
            raise TypeError(f"{name}() got an unexpected keyword argument {unexpected!r}.")
        if token_refresher is not None and not callable(token_refresher):
            raise TypeError(
                f"token_refresher must be a callable with no arguments, not {type(token_refresher).__name__}."
            )
        if proactive_refresh and token_refresher is None:
            raise ValueError("proactive_refresh=True needs a token_refresher.")
        if token is None and token_refresher is None:
            raise ValueError(f"{name} needs a token, a token_refresher, or both.")
        self._refresher = token_refresher
        self._proactive = bool(proactive_refresh)
        self._window = PROACTIVE_WINDOW if self._proactive else ON_DEMAND_WINDOW
        if token is None:
            self._snapshot = TokenSnapshot.empty()
        else:
            now = self._clock()
            parsed = normalize_token(token, now)
            window = None if token_refresher is None else self._window
            self._snapshot = initial_snapshot(parsed, now, window)

    # -- the published snapshot -----------------------------------------------------------------------------

    def _current(self) -> TokenSnapshot:
        """The real snapshot (the published one may be its never-fresh view, see :meth:`_park`)."""
        parked = self._parked
        return self._snapshot if parked is None else parked

    def _publish(self, snapshot: TokenSnapshot) -> None:
        if self._parked is None:
            self._snapshot = snapshot
        else:
            self._parked = snapshot
            self._snapshot = snapshot.never_fresh()

    def _park(self) -> None:
        """Send the next call to the slow path, where the shell (re)binds and schedules its refresh.

        The fresh path stays one clock call and one comparison: the published snapshot is the same token
        with ``refresh_on`` at minus infinity, the real one is kept aside until :meth:`_unpark`.
        """
        if self._closed or self._parked is not None:
            return
        self._parked = snapshot = self._snapshot
        self._snapshot = snapshot.never_fresh()
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.cancel()

    def _unpark(self) -> None:
        parked, self._parked = self._parked, None
        if parked is not None:
            self._snapshot = parked

    def _mark_closed(self) -> bool:
        """Mark the credential closed (under the shell's lock); ``False`` if it already was.

        Later calls miss the fresh path (the closed snapshot is never fresh) and get the closed error;
        the scheduled refresh is cancelled.
        """
        if self._closed:
            return False
        self._closed = True
        self._snapshot = _CLOSED
        self._parked = None
        entry, self._entry = self._entry, None
        if entry is not None:
            entry.cancel()
        return True

    # -- decisions taken under the shell's lock ---------------------------------------------------------

    def _decide(self, now: float) -> Action:
        return decide(
            token_state(self._current(), now),
            in_flight=self._attempt is not None,
            now=now,
            failure_until=self._failure_until,
        )

    def _raise_last_failure(self) -> NoReturn:
        error = self._failure
        assert error is not None
        # Re-raised from the traceback of the failed call, so repeated raises do not grow it.
        raise error.with_traceback(self._failure_traceback)

    def _closed_error(self) -> RuntimeError:
        return RuntimeError(f"This {type(self).__name__} is closed.")

    def _reentrant_error(self) -> RuntimeError:
        return RuntimeError(
            f"The token_refresher called get_token on its own {type(self).__name__}; "
            "a refresher must fetch a new token without using the credential it refreshes."
        )

    def _first_due(self) -> float:
        snapshot = self._current()
        if not math.isfinite(snapshot.expires_on):
            return self._clock()
        return proactive_due(snapshot, self._jitter())

    def _current_scheduler(self) -> Scheduler:
        raise NotImplementedError

    def _due_callback(self) -> Callable[[Any], None]:
        """The module-level function the scheduler calls with the credential (never a bound method,
        which would hold the credential strongly)."""
        raise NotImplementedError

    def _reschedule(self, due: float) -> None:
        """Replace the scheduled background refresh by one at ``due``.

        A scheduler that fails (e.g. it cannot start its thread) is logged, not raised: the token is then
        refreshed on demand, and the next successful refresh schedules again.
        """
        old, self._entry = self._entry, None
        if old is not None:
            old.cancel()
        try:
            self._entry = self._current_scheduler().schedule(due, self, self._due_callback())
        except Exception as exc:
            _LOGGER.warning(
                "Could not schedule the background token refresh (%s); the token is refreshed on demand.",
                type(exc).__name__,
            )

    def _background_due(self, now: float) -> bool:
        """Whether a due background refresh starts now (under the shell's lock).

        A refresh already in flight reschedules when it ends, and a closed credential never refreshes:
        both answer ``False``. A token still fresh (refreshed on demand since the entry was scheduled)
        is rescheduled at its own time, also ``False``.
        """
        if self._closed or self._attempt is not None:
            return False
        snapshot = self._current()
        if token_state(snapshot, now) is TokenState.FRESH:
            self._reschedule(proactive_due(snapshot, self._jitter()))
            return False
        return True

    def _complete(self, attempt: _Attempt, value: object, error: BaseException | None) -> None:
        """Record the outcome of a refresher call (under the shell's lock).

        The attempt ends first, whatever happens next, so nobody waits on it again; the shells wake the
        waiters in a ``finally``.
        """
        if self._attempt is attempt:
            self._attempt = None
        attempt.done = True
        now = self._clock()
        snapshot: TokenSnapshot | None = None
        if error is None:
            try:
                parsed = normalize_token(value, now, source=_REFRESHER_RESULT)
                snapshot = accept_refreshed(parsed, now, self._window)
            except Exception as exc:  # whatever a strange result raises reaches the waiters as an error
                error = exc
        if self._closed:
            return
        if snapshot is not None:
            attempt.snapshot = snapshot
            self._publish(snapshot)
            self._failure_until = -math.inf
            self._failure_gap = 0.0
            self._failure = self._failure_traceback = None
            self._bg_failures = 0
            _LOGGER.debug(
                "Token refreshed: expires at %.0f, next refresh at %.0f.",
                snapshot.expires_on,
                snapshot.refresh_on,
            )
            if self._proactive:
                self._reschedule(proactive_due(snapshot, self._jitter()))
            return
        assert error is not None
        attempt.error = error
        attempt.traceback = error.__traceback__
        cached = self._current()
        if isinstance(error, Exception):
            # Only the type name is logged: a refresher's error text may hold a secret.
            if now < cached.expires_on:
                retry_at = stale_retry_at(cached.expires_on, now)
                self._publish(cached.with_refresh_on(retry_at))
                attempt.usable = True
                _LOGGER.warning(
                    "A token refresh failed (%s); the cached token is used until it expires, next attempt in %.0f s.",
                    type(error).__name__,
                    retry_at - now,
                )
            else:
                self._failure_gap = next_failure_gap(self._failure_gap)
                self._failure_until = now + self._failure_gap
                self._failure = error
                self._failure_traceback = attempt.traceback
                log = _LOGGER.warning if attempt.background else _LOGGER.debug
                log("A token refresh failed (%s) and no valid token is cached.", type(error).__name__)
        if self._proactive:
            self._bg_failures += 1
            retry = background_retry_at(now, self._bg_failures, cached.expires_on, self._jitter())
            _LOGGER.debug("Background token refresh retry in %.0f s.", retry - now)
            self._reschedule(retry)

    def _outcome(self, attempt: _Attempt) -> TokenSnapshot:
        """What a caller that waited on ``attempt`` gets: the new token, the cached one, or the error."""
        if self._closed:
            raise self._closed_error()
        if attempt.snapshot is not None:
            return attempt.snapshot
        error = attempt.error
        if attempt.usable:
            return self._current()
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
        return f"{type(self).__name__}(mode={mode!r}, proactive_refresh={self._proactive}, closed={self._closed})"


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
    with credential._get_lock():
        if not credential._background_due(credential._clock()):
            return
        attempt = credential._attempt = _Attempt(threading.get_ident(), True)
    credential._run(attempt)


class CommunicationTokenCredential(_CredentialCore):
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
        token_refresher: Returns a new token (``str``, ``AccessToken`` or ``AccessTokenInfo``).
        proactive_refresh: Refresh in the background, starting now, 10 minutes before expiry.
        resource_endpoint: The Communication Services endpoint (Entra mode).
        token_credential: An azure-core ``TokenCredential`` for the Entra user (Entra mode).
        scopes: Entra scopes (Entra mode); default ``https://communication.azure.com/clients/.default``.

    Raises:
        TypeError: Arguments of the wrong type, or of two modes at once.
        ValueError: No token and no refresher, ``proactive_refresh`` without a refresher, an empty token.
    """

    __slots__ = ("__weakref__", "_cond", "_lock")

    @overload
    def __init__(
        self,
        token: str | AccessToken | AccessTokenInfo | None = None,
        *,
        token_refresher: TokenRefresher | None = None,
        proactive_refresh: bool = False,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        resource_endpoint: str,
        token_credential: TokenCredential,
        scopes: Sequence[str] | None = None,
        **pipeline_kwargs: Any,
    ) -> None: ...

    def __init__(
        self,
        token: str | AccessToken | AccessTokenInfo | None = None,
        *,
        token_refresher: TokenRefresher | None = None,
        proactive_refresh: bool = False,
        resource_endpoint: str | None = None,
        token_credential: TokenCredential | None = None,
        scopes: Sequence[str] | None = None,
        _clock: Callable[[], float] | None = None,
        _scheduler: Scheduler | None = None,
        _jitter: Callable[[], float] | None = None,
        _exchanger_factory: Callable[..., Any] = _default_exchanger,
        **pipeline_kwargs: Any,
    ) -> None:
        self._lock: threading.Lock | None = None
        self._cond: threading.Condition | None = None
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
        if self._proactive:
            with self._get_lock():
                self._reschedule(self._first_due())

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        """Return the user access token (``scopes`` and keyword arguments are ignored).

        Raises:
            RuntimeError: The credential is closed, or the refresher called its own credential.
            Exception: Whatever the token refresher raised, unchanged.
        """
        snapshot = self._snapshot
        if self._clock() < snapshot.refresh_on:
            return snapshot.access_token
        return self._obtain().access_token

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        """Return the user access token with its ``refresh_on`` (``scopes`` and ``options`` are ignored).

        Raises:
            RuntimeError: The credential is closed, or the refresher called its own credential.
            Exception: Whatever the token refresher raised, unchanged.
        """
        snapshot = self._snapshot
        if self._clock() < snapshot.refresh_on:
            return snapshot.access_token_info
        return self._obtain().access_token_info

    def close(self) -> None:
        """Close the credential: later calls raise ``RuntimeError``; the background refresh stops.

        Does not wait: a refresher call already running may finish, but its result is discarded and the
        callers waiting for it get ``RuntimeError``. Idempotent. In Entra mode the exchanger is closed too.
        """
        with self._get_lock():
            if not self._mark_closed():
                return
            if self._cond is not None:
                self._cond.notify_all()
        if self._exchanger is not None:
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
        with _ALLOC_LOCK:
            generation = fork_generation()
            if self._generation == generation:
                lock = self._lock
                if lock is None:
                    lock = self._lock = threading.Lock()
                return lock
            # A forked child: the lock may be held by a parent thread, the refresh in flight (and the
            # thread whose ident marks it) does not exist here, and the schedule is the parent's. The
            # generation is updated last, so other threads wait on _ALLOC_LOCK until this is done.
            self._cond = None
            self._attempt = None
            lock = self._lock = threading.Lock()
            if self._proactive and not self._closed:
                with lock:
                    self._reschedule(self._first_due())
            self._generation = generation
            return lock

    def _due_callback(self) -> Callable[[Any], None]:
        return _background_refresh

    def _current_scheduler(self) -> Scheduler:
        scheduler = self._scheduler
        # Looked up on every use, not cached: a forked child gets a fresh process-wide scheduler.
        return default_scheduler() if scheduler is None else scheduler

    def _obtain(self) -> TokenSnapshot:
        me = threading.get_ident()
        lock = self._get_lock()
        snapshot = self._snapshot
        if token_state(snapshot, self._clock()) is TokenState.STALE:
            # Botocore's advisory window: the token is still valid, so never queue behind another caller.
            if not lock.acquire(blocking=False):
                return snapshot
        else:
            lock.acquire()
        try:
            if self._closed:
                raise self._closed_error()
            attempt = self._attempt
            if attempt is not None and attempt.owner == me:
                raise self._reentrant_error()
            action = self._decide(self._clock())
            if action is Action.RETURN_CACHED:
                return self._snapshot
            if action is Action.RAISE_LAST_ERROR:
                self._raise_last_failure()
            if action is Action.WAIT:
                assert attempt is not None
                cond = self._cond
                if cond is None:
                    cond = self._cond = threading.Condition(lock)
                while not attempt.done and not self._closed:
                    cond.wait()
                return self._outcome(attempt)
            attempt = self._attempt = _Attempt(me, False)
        finally:
            lock.release()
        outcome = self._run(attempt)
        assert outcome is not None
        return outcome

    def _run(self, attempt: _Attempt) -> TokenSnapshot | None:
        """Call the refresher (outside the lock) and publish its outcome to every waiter."""
        value: object = None
        error: BaseException | None = None
        refresher = self._refresher
        assert refresher is not None
        try:
            value = refresher()
        except BaseException as exc:  # waiters must be released whatever happens
            error = exc
        with self._get_lock():
            try:
                self._complete(attempt, value, error)
            finally:
                if self._cond is not None:
                    self._cond.notify_all()
        if attempt.background:
            return None
        if error is not None and not isinstance(error, Exception):
            # The caller that ran the refresher sees its own KeyboardInterrupt/SystemExit unchanged.
            raise error
        return self._outcome(attempt)


#: The name used by the JavaScript SDK's documentation.
AzureCommunicationTokenCredential = CommunicationTokenCredential

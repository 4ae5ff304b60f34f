"""The credential's attempt lifecycle as data: one pure transition function and the effects it asks for.

``step(state, event, now_wall, now_mono) -> (state, effects)`` is the whole lifecycle of a refresh attempt
(idle, in flight, done, abandoned, closed), after h11's state machine: the threading shell and the async
shell only take their lock, feed events and run the effects (publish a snapshot, resolve an attempt, wake
its waiters, reschedule, log). A transition a shell performed by hand is where a wedged state hides; here
every path of every event ends in a state where no attempt is in flight unless one is running.

Two clocks: token expiry is wall-clock time (tokens carry wall-clock times), while every gap, back-off and
deadline the credential keeps for itself (the failure gap, the stale retry, the background back-off and
``refresh_timeout``) is measured on the monotonic clock, so stepping the system clock neither stretches nor
shrinks them. Scheduled times are therefore given on the monotonic clock, with the wall-clock time beside
them when the moment comes from a token's expiry (:class:`Reschedule`).
"""

from __future__ import annotations

import logging
import math
import types
from typing import Any, Final, TypeVar

from ._refresh import (
    TokenState,
    accept_refreshed,
    background_retry_at,
    next_failure_gap,
    proactive_due,
    stale_retry_at,
    token_state,
)
from ._tokens import TokenSnapshot, _Frozen, normalize_token

__all__ = [
    "CLOSED_SNAPSHOT",
    "REFRESHER_RESULT",
    "Attempt",
    "Begin",
    "CallerVerdict",
    "Cancel",
    "Close",
    "Config",
    "Due",
    "Effect",
    "Event",
    "Expire",
    "Finish",
    "Log",
    "Publish",
    "Raise",
    "Reschedule",
    "Resolve",
    "ReturnCached",
    "Run",
    "Skip",
    "State",
    "Unschedule",
    "Wait",
    "Wake",
    "first_due",
    "step",
]

_R = TypeVar("_R", bound="_Record")
_set = object.__setattr__


class _Record(_Frozen):
    """Base of the immutable, slotted values below: what ``@dataclass(frozen=True, slots=True)`` would give.

    Written by hand because building a frozen slotted dataclass costs about a millisecond at import, and this
    module has twenty of them: most of the package's import time next to azure-core's (``make bench`` case 9).
    """

    __slots__ = ()

    def _fields(self) -> tuple[Any, ...]:
        names: tuple[str, ...] = self.__slots__
        return tuple(getattr(self, name) for name in names)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({inner})"


def replace(record: _R, **changes: Any) -> _R:
    """A copy of ``record`` with ``changes`` (what :func:`dataclasses.replace` does for dataclasses)."""
    new = object.__new__(type(record))
    names: tuple[str, ...] = record.__slots__
    for name in names:
        _set(new, name, changes.pop(name) if name in changes else getattr(record, name))
    if changes:
        raise TypeError(f"{type(record).__name__} has no field {sorted(changes)[0]!r}")
    return new


#: Published by a closed credential: never fresh, so every call reaches the closed check.
CLOSED_SNAPSHOT: Final = TokenSnapshot.empty()
#: How error messages name a refresher's result.
REFRESHER_RESULT: Final = "the token_refresher result"


class Attempt:
    """One refresher call and, once resolved, what the callers that waited on it get.

    Created by a shell *before* it asks to start it, so an interrupt at any later point still finds the
    attempt to finish. ``handle`` is the shell's own (the refresh task, a waker); the core never reads it.
    """

    __slots__ = (
        "abandoned",
        "background",
        "deadline",
        "done",
        "error",
        "handle",
        "snapshot",
        "timer",
        "traceback",
        "usable",
    )

    def __init__(self, background: bool = False) -> None:
        self.background = background
        self.deadline = math.inf
        self.done = False
        self.abandoned = False
        self.snapshot: TokenSnapshot | None = None
        self.error: BaseException | None = None
        self.traceback: types.TracebackType | None = None
        self.usable = False
        self.handle: object = None
        self.timer: object = None


class Config(_Record):
    """What a credential fixed at construction.

    Args:
        window: The refresh window (600 s proactive, 120 s on demand); ``None`` for a static credential.
        proactive: Refresh in the background.
        refresh_timeout: Longest a caller waits for a refresh it did not run (seconds); ``None``: no limit.
        undecodable_lifetime: Seconds a token without a readable expiry is assumed valid.
    """

    __slots__ = ("proactive", "refresh_timeout", "undecodable_lifetime", "window")

    window: float | None
    proactive: bool
    refresh_timeout: float | None
    undecodable_lifetime: float

    def __init__(
        self,
        window: float | None,
        proactive: bool,
        refresh_timeout: float | None,
        undecodable_lifetime: float,
    ) -> None:
        _set(self, "window", window)
        _set(self, "proactive", proactive)
        _set(self, "refresh_timeout", refresh_timeout)
        _set(self, "undecodable_lifetime", undecodable_lifetime)


class State(_Record):
    """A credential's lifecycle state. Replaced whole by :func:`step`; the shells never edit it."""

    __slots__ = (
        "attempt",
        "bg_failures",
        "closed",
        "config",
        "failure",
        "failure_gap",
        "failure_traceback",
        "failure_until",
        "retry_until",
        "snapshot",
    )

    config: Config
    snapshot: TokenSnapshot
    closed: bool
    attempt: Attempt | None
    failure: BaseException | None
    failure_traceback: types.TracebackType | None
    failure_gap: float
    #: End of the failure gap (monotonic): callers re-raise ``failure`` until then.
    failure_until: float
    #: End of the retry gap after a failed refresh of a still-valid token (monotonic).
    retry_until: float
    bg_failures: int

    def __init__(
        self,
        config: Config,
        snapshot: TokenSnapshot,
        closed: bool = False,
        attempt: Attempt | None = None,
        failure: BaseException | None = None,
        failure_traceback: types.TracebackType | None = None,
        failure_gap: float = 0.0,
        failure_until: float = -math.inf,
        retry_until: float = -math.inf,
        bg_failures: int = 0,
    ) -> None:
        _set(self, "config", config)
        _set(self, "snapshot", snapshot)
        _set(self, "closed", closed)
        _set(self, "attempt", attempt)
        _set(self, "failure", failure)
        _set(self, "failure_traceback", failure_traceback)
        _set(self, "failure_gap", failure_gap)
        _set(self, "failure_until", failure_until)
        _set(self, "retry_until", retry_until)
        _set(self, "bg_failures", bg_failures)

    def published(self) -> TokenSnapshot:
        """The snapshot the fresh path reads: a never-fresh view while a retry gap runs on the monotonic
        clock (the fresh path compares wall-clock times only), the closed snapshot once closed."""
        if self.closed:
            return CLOSED_SNAPSHOT
        if self.retry_until > -math.inf:
            return self.snapshot.never_fresh()
        return self.snapshot


# -- events ---------------------------------------------------------------------------------------------


class Begin(_Record):
    """A caller missed the fresh path; ``attempt`` is the one it runs if a refresh must start."""

    __slots__ = ("attempt",)

    attempt: Attempt

    def __init__(self, attempt: Attempt) -> None:
        _set(self, "attempt", attempt)


class Due(_Record):
    """The background refresh came due; ``attempt`` is the one to run if it must start."""

    __slots__ = ("attempt",)

    attempt: Attempt

    def __init__(self, attempt: Attempt) -> None:
        _set(self, "attempt", attempt)


class Finish(_Record):
    """A refresher call ended with ``value`` or ``error`` (any ``BaseException``, also a cancellation)."""

    __slots__ = ("attempt", "error", "value")

    attempt: Attempt
    value: object
    error: BaseException | None

    def __init__(self, attempt: Attempt, value: object = None, error: BaseException | None = None) -> None:
        _set(self, "attempt", attempt)
        _set(self, "value", value)
        _set(self, "error", error)


class Expire(_Record):
    """``attempt``'s deadline (``refresh_timeout``) passed."""

    __slots__ = ("attempt",)

    attempt: Attempt

    def __init__(self, attempt: Attempt) -> None:
        _set(self, "attempt", attempt)


class Close(_Record):
    """``close()`` was called."""

    __slots__ = ()


Event = Begin | Due | Finish | Expire | Close


# -- effects --------------------------------------------------------------------------------------------


class Publish(_Record):
    """Make ``snapshot`` the one the fresh path reads."""

    __slots__ = ("snapshot",)

    snapshot: TokenSnapshot

    def __init__(self, snapshot: TokenSnapshot) -> None:
        _set(self, "snapshot", snapshot)


class Resolve(_Record):
    """Record ``attempt``'s outcome for the callers waiting on it (the shell sets its fields)."""

    __slots__ = ("abandoned", "attempt", "error", "snapshot", "usable")

    attempt: Attempt
    snapshot: TokenSnapshot | None
    error: BaseException | None
    usable: bool
    abandoned: bool

    def __init__(
        self,
        attempt: Attempt,
        snapshot: TokenSnapshot | None = None,
        error: BaseException | None = None,
        usable: bool = False,
        abandoned: bool = False,
    ) -> None:
        _set(self, "attempt", attempt)
        _set(self, "snapshot", snapshot)
        _set(self, "error", error)
        _set(self, "usable", usable)
        _set(self, "abandoned", abandoned)


class Wake(_Record):
    """Wake the callers waiting on ``attempt`` (after :class:`Resolve`)."""

    __slots__ = ("attempt",)

    attempt: Attempt

    def __init__(self, attempt: Attempt) -> None:
        _set(self, "attempt", attempt)


class Cancel(_Record):
    """Stop ``attempt``'s refresher call where the shell can (an asyncio or trio task); threads cannot."""

    __slots__ = ("attempt",)

    attempt: Attempt

    def __init__(self, attempt: Attempt) -> None:
        _set(self, "attempt", attempt)


class Reschedule(_Record):
    """Replace the background refresh by one at ``due`` (monotonic); ``wall_due`` is the same moment on
    the wall clock when it comes from a token's expiry (a scheduler may follow wall-clock steps)."""

    __slots__ = ("due", "wall_due")

    due: float
    wall_due: float | None

    def __init__(self, due: float, wall_due: float | None = None) -> None:
        _set(self, "due", due)
        _set(self, "wall_due", wall_due)


class Unschedule(_Record):
    """Cancel the scheduled background refresh."""

    __slots__ = ()


class Log(_Record):
    """Log a record. Arguments never hold token text or a refresher's error text (type names only)."""

    __slots__ = ("args", "level", "message")

    level: int
    message: str
    args: tuple[object, ...]

    def __init__(self, level: int, message: str, args: tuple[object, ...] = ()) -> None:
        _set(self, "level", level)
        _set(self, "message", message)
        _set(self, "args", args)


# The verdicts of a Begin or Due event: what the caller (or the background refresher) does next. Exactly
# one is the last effect of those events.


class ReturnCached(_Record):
    """Return ``snapshot`` (fresh, stale with a refresh running, or stale within its retry gap)."""

    __slots__ = ("snapshot",)

    snapshot: TokenSnapshot

    def __init__(self, snapshot: TokenSnapshot) -> None:
        _set(self, "snapshot", snapshot)


class Raise(_Record):
    """Raise ``error`` (the closed error is built by the shell when ``error`` is ``None``)."""

    __slots__ = ("error", "traceback")

    error: BaseException | None
    traceback: types.TracebackType | None

    def __init__(self, error: BaseException | None, traceback: types.TracebackType | None = None) -> None:
        _set(self, "error", error)
        _set(self, "traceback", traceback)


class Wait(_Record):
    """Wait for ``attempt`` (another caller's or the background's) until it resolves or its deadline."""

    __slots__ = ("attempt",)

    attempt: Attempt

    def __init__(self, attempt: Attempt) -> None:
        _set(self, "attempt", attempt)


class Run(_Record):
    """Call the refresher for ``attempt`` now (its deadline, if any, is ``attempt.deadline``)."""

    __slots__ = ("attempt",)

    attempt: Attempt

    def __init__(self, attempt: Attempt) -> None:
        _set(self, "attempt", attempt)


class Skip(_Record):
    """Nothing to do (a background refresh that found the credential closed or busy)."""

    __slots__ = ()


CallerVerdict = ReturnCached | Raise | Wait | Run | Skip
Effect = Publish | Resolve | Wake | Cancel | Reschedule | Unschedule | Log | CallerVerdict

_NO_EFFECTS: tuple[Effect, ...] = ()


def _timeout_error(timeout: float) -> TimeoutError:
    return TimeoutError(
        f"The token refresh did not complete within refresh_timeout ({timeout:g} s); call again to retry."
    )


def _proactive_reschedule(snapshot: TokenSnapshot, now_wall: float, now_mono: float, jitter: float) -> Reschedule:
    due_wall = proactive_due(snapshot, jitter)
    if not math.isfinite(due_wall):
        return Reschedule(now_mono if due_wall < 0 else math.inf, None)
    return Reschedule(now_mono + max(0.0, due_wall - now_wall), due_wall)


def first_due(state: State, now_wall: float, now_mono: float, jitter: float) -> Reschedule:
    # Public for the shells: the first schedule is not a transition (nothing but the schedule changes).
    """When a proactive credential's first background refresh is due (at once without a finite token)."""
    snapshot = state.snapshot
    if not math.isfinite(snapshot.expires_on):
        return Reschedule(now_mono, None)
    return _proactive_reschedule(snapshot, now_wall, now_mono, jitter)


def _token_state(state: State, now_wall: float) -> TokenState:
    tstate = token_state(state.snapshot, now_wall)
    if tstate is TokenState.FRESH and state.retry_until > -math.inf:
        # In a retry gap the snapshot's refresh_on is only the public end of the gap (on the wall clock);
        # the gap itself runs on the monotonic clock.
        return TokenState.STALE
    return tstate


def _abandon(state: State, attempt: Attempt) -> tuple[State, tuple[Effect, ...]]:
    """The deadline of the attempt in flight passed: it stops counting as in flight, its waiters time out."""
    timeout = state.config.refresh_timeout
    assert timeout is not None
    effects: tuple[Effect, ...] = (
        Resolve(attempt, error=_timeout_error(timeout), abandoned=True),
        Wake(attempt),
        Cancel(attempt),
        Log(
            logging.WARNING,
            "A token refresh did not complete within refresh_timeout (%g s); it is abandoned (a late valid "
            "result is still used) and the next call starts a new one.",
            (timeout,),
        ),
    )
    return replace(state, attempt=None), effects


def _begin(state: State, attempt: Attempt, now_wall: float, now_mono: float) -> tuple[State, tuple[Effect, ...]]:
    if state.closed:
        return state, (Raise(None),)
    effects: tuple[Effect, ...] = _NO_EFFECTS
    current = state.attempt
    if current is not None and now_mono >= current.deadline:
        state, effects = _abandon(state, current)
        current = None
    tstate = _token_state(state, now_wall)
    if tstate is TokenState.FRESH or (tstate is TokenState.STALE and now_mono < state.retry_until):
        return state, (*effects, ReturnCached(state.published()))
    if current is not None:
        if tstate is TokenState.STALE:
            return state, (*effects, ReturnCached(state.published()))
        return state, (*effects, Wait(current))
    if tstate is TokenState.EXPIRED and now_mono < state.failure_until:
        return state, (*effects, Raise(state.failure, state.failure_traceback))
    timeout = state.config.refresh_timeout
    attempt.deadline = math.inf if timeout is None else now_mono + timeout
    return replace(state, attempt=attempt), (*effects, Run(attempt))


def _due(
    state: State, attempt: Attempt, now_wall: float, now_mono: float, jitter: float
) -> tuple[State, tuple[Effect, ...]]:
    if state.closed:
        return state, (Skip(),)
    effects: tuple[Effect, ...] = _NO_EFFECTS
    current = state.attempt
    if current is not None and now_mono >= current.deadline:
        state, effects = _abandon(state, current)
        current = None
    if current is not None:
        # The refresh in flight reschedules when it ends.
        return state, (*effects, Skip())
    snapshot = state.snapshot
    tstate = _token_state(state, now_wall)
    if tstate is TokenState.FRESH:
        # Refreshed on demand since the entry was scheduled: due again at the new token's time.
        return state, (*effects, _proactive_reschedule(snapshot, now_wall, now_mono, jitter), Skip())
    if tstate is TokenState.STALE and now_mono < state.retry_until:
        # A failed refresh of this still-valid token set a retry gap: the background waits for it too.
        return state, (*effects, Reschedule(state.retry_until, None), Skip())
    timeout = state.config.refresh_timeout
    attempt.deadline = math.inf if timeout is None else now_mono + timeout
    return replace(state, attempt=attempt), (*effects, Run(attempt))


def _success(
    state: State, attempt: Attempt, snapshot: TokenSnapshot, now_wall: float, now_mono: float, jitter: float
) -> tuple[State, tuple[Effect, ...]]:
    state = replace(
        state,
        snapshot=snapshot,
        failure=None,
        failure_traceback=None,
        failure_gap=0.0,
        failure_until=-math.inf,
        retry_until=-math.inf,
        bg_failures=0,
    )
    effects: list[Effect] = [
        Publish(state.published()),
        Resolve(attempt, snapshot=snapshot),
        Wake(attempt),
        Log(
            logging.DEBUG,
            "Token refreshed: expires at %.0f, next refresh at %.0f.",
            (snapshot.expires_on, snapshot.refresh_on),
        ),
    ]
    if state.config.proactive:
        effects.append(_proactive_reschedule(snapshot, now_wall, now_mono, jitter))
    return state, tuple(effects)


def _late(
    state: State,
    attempt: Attempt,
    value: object,
    error: BaseException | None,
    now_wall: float,
    now_mono: float,
    jitter: float,
) -> tuple[State, tuple[Effect, ...]]:
    """An abandoned attempt ended after its deadline: a valid token that outlives the cached one is kept."""
    if error is not None or state.closed:
        return state, _NO_EFFECTS
    try:
        snapshot = _accept(state, value, now_wall)
    except Exception:  # a late bad result changes nothing: its callers already got their TimeoutError
        return state, _NO_EFFECTS
    if snapshot.expires_on <= state.snapshot.expires_on:
        return state, _NO_EFFECTS
    state, effects = _success(state, attempt, snapshot, now_wall, now_mono, jitter)
    # The attempt's own callers already got their TimeoutError: only the new token is published.
    return state, tuple(e for e in effects if not isinstance(e, (Resolve, Wake)))


def _accept(state: State, value: object, now_wall: float) -> TokenSnapshot:
    window = state.config.window
    assert window is not None
    parsed = normalize_token(
        value, now_wall, source=REFRESHER_RESULT, undecodable_lifetime=state.config.undecodable_lifetime
    )
    return accept_refreshed(parsed, now_wall, window)


def _finish(
    state: State, event: Finish, now_wall: float, now_mono: float, jitter: float
) -> tuple[State, tuple[Effect, ...]]:
    attempt = event.attempt
    if attempt.done:
        # Abandoned (or closed) earlier: only a late valid result still matters.
        return _late(state, attempt, event.value, event.error, now_wall, now_mono, jitter)
    if state.attempt is attempt:
        state = replace(state, attempt=None)
    error = event.error
    snapshot: TokenSnapshot | None = None
    if state.closed:
        return state, (Resolve(attempt, error=error), Wake(attempt))
    if error is None:
        try:
            snapshot = _accept(state, event.value, now_wall)
        except Exception as exc:  # whatever a strange result raises reaches the waiters as an error
            error = exc
    if snapshot is not None:
        return _success(state, attempt, snapshot, now_wall, now_mono, jitter)
    assert error is not None
    effects: list[Effect] = []
    cached = state.snapshot
    usable = False
    if isinstance(error, Exception):
        # Only the type name is logged: a refresher's error text may hold a secret.
        if now_wall < cached.expires_on:
            retry_at = stale_retry_at(cached.expires_on, now_wall)
            gap = retry_at - now_wall
            state = replace(state, snapshot=cached.with_refresh_on(retry_at), retry_until=now_mono + gap)
            effects.append(Publish(state.published()))
            usable = True
            effects.append(
                Log(
                    logging.WARNING,
                    "A token refresh failed (%s); the cached token is used until it expires, next attempt in %.0f s.",
                    (type(error).__name__, gap),
                )
            )
        else:
            gap = next_failure_gap(state.failure_gap)
            state = replace(
                state,
                failure_gap=gap,
                failure_until=now_mono + gap,
                failure=error,
                failure_traceback=error.__traceback__,
            )
            effects.append(
                Log(
                    logging.WARNING if attempt.background else logging.DEBUG,
                    "A token refresh failed (%s) and no valid token is cached.",
                    (type(error).__name__,),
                )
            )
    effects.append(Resolve(attempt, error=error, usable=usable))
    effects.append(Wake(attempt))
    if state.config.proactive:
        failures = state.bg_failures + 1
        state = replace(state, bg_failures=failures)
        retry = background_retry_at(now_wall, failures, cached.expires_on, jitter)
        effects.append(Log(logging.DEBUG, "Background token refresh retry in %.0f s.", (retry - now_wall,)))
        effects.append(Reschedule(now_mono + (retry - now_wall), None))
    return state, tuple(effects)


def _close(state: State) -> tuple[State, tuple[Effect, ...]]:
    if state.closed:
        return state, _NO_EFFECTS
    attempt = state.attempt
    state = replace(state, closed=True, attempt=None)
    effects: list[Effect] = [Publish(CLOSED_SNAPSHOT), Unschedule()]
    if attempt is not None:
        effects += [Resolve(attempt), Wake(attempt), Cancel(attempt)]
    return state, tuple(effects)


def step(
    state: State, event: Event, now_wall: float, now_mono: float, jitter: float = 0.0
) -> tuple[State, tuple[Effect, ...]]:
    """The one transition function of the credential lifecycle.

    Args:
        state: The current state.
        event: What happened.
        now_wall: The wall clock (seconds since the epoch): token expiry.
        now_mono: The monotonic clock: gaps, back-off and deadlines.
        jitter: A random fraction in ``[0, 1)`` for background schedules (supplied by the shell).

    Returns:
        The new state and the effects for the shell to run, in order. For :class:`Begin` and :class:`Due`
        the last effect is the verdict (:data:`CallerVerdict`).
    """
    if isinstance(event, Begin):
        return _begin(state, event.attempt, now_wall, now_mono)
    if isinstance(event, Finish):
        return _finish(state, event, now_wall, now_mono, jitter)
    if isinstance(event, Due):
        return _due(state, event.attempt, now_wall, now_mono, jitter)
    if isinstance(event, Expire):
        if state.attempt is event.attempt and not event.attempt.done:
            return _abandon(state, event.attempt)
        return state, _NO_EFFECTS
    return _close(state)

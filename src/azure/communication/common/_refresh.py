"""The refresh rules of the user access token credential, as pure functions of ``(token, now)``.

The sync shell (threads) and the asyncio shell only lock, wait and call; every decision they take (is the
token fresh, who refreshes, when the next attempt is, how long to back off) comes from here, so both follow
the same rules and the rules are tested without threads, event loops or real time.

States of a cached token at ``now``:

- FRESH while ``now < refresh_on``: return it, nothing else.
- STALE while ``refresh_on <= now < expires_on``: one caller refreshes, the others keep using it.
- EXPIRED from ``expires_on`` on (or no token yet): callers wait for the single refresh in flight.
"""

from __future__ import annotations

import math
from typing import ClassVar, Final, Protocol

from ._tokens import ParsedToken, TokenSnapshot

__all__ = [
    "BACKGROUND_BACKOFF_INITIAL",
    "BACKGROUND_BACKOFF_MAX",
    "EXPIRED_RESULT_MESSAGE",
    "FAILURE_GAP_INITIAL",
    "FAILURE_GAP_MAX",
    "FINAL_SECOND",
    "JITTER_MAX",
    "MIN_INTERVAL",
    "ON_DEMAND_WINDOW",
    "PROACTIVE_WINDOW",
    "STALE_RETRY_MAX",
    "Action",
    "TokenState",
    "accept_refreshed",
    "background_retry_at",
    "compute_refresh_on",
    "decide",
    "initial_snapshot",
    "next_failure_gap",
    "proactive_due",
    "stale_retry_at",
    "token_state",
]

# The two windows and the fractional back-off are the JS SDK's (an Azure SDK architecture-board decision
# shared by every language): proactive refresh starts 10 minutes before expiry so a background refresh has
# time for several retries; on demand 2 minutes, enough to absorb clock skew and one slow refresh without
# calling the refresher on most requests.
PROACTIVE_WINDOW: Final = 600.0
ON_DEMAND_WINDOW: Final = 120.0
# Refreshing more often than once a second only loads the token service, and an attempt in the last
# second of a token's life cannot finish before the token it replaces expires.
MIN_INTERVAL: Final = 1.0
FINAL_SECOND: Final = 1.0
# A failed refresh of a still-valid token is retried soon, but the refresher is not hammered: at most every
# 30 s, and at half the remaining life when less than a minute is left.
STALE_RETRY_MAX: Final = 30.0
# With no valid token, callers re-raise the last error for a gap that doubles (1, 2, 4 ... 30 s), so a
# failing token service sees at most one call per gap instead of one per request.
FAILURE_GAP_INITIAL: Final = 1.0
FAILURE_GAP_MAX: Final = 30.0
# Background retries (proactive mode) back off from 1 s to 5 minutes: nobody waits on them, so they can
# afford to be patient with an outage.
BACKGROUND_BACKOFF_INITIAL: Final = 1.0
BACKGROUND_BACKOFF_MAX: Final = 300.0
# Jitter spreads credentials created together over a few seconds (capped at a tenth of the time left).
JITTER_MAX: Final = 5.0

EXPIRED_RESULT_MESSAGE: Final = "The token returned from the token_refresher is expired."


class _Times(Protocol):
    @property
    def refresh_on(self) -> float: ...

    @property
    def expires_on(self) -> float: ...


class _Constant:
    """A named constant compared by identity.

    What ``enum.Enum`` gives here, without the 0.1 ms that building each enum class costs at import.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


class TokenState(_Constant):
    """Where a cached token stands at a given time: ``FRESH``, ``STALE`` or ``EXPIRED``."""

    __slots__ = ()

    FRESH: ClassVar[TokenState]
    STALE: ClassVar[TokenState]
    EXPIRED: ClassVar[TokenState]


TokenState.FRESH = TokenState("FRESH")
TokenState.STALE = TokenState("STALE")
TokenState.EXPIRED = TokenState("EXPIRED")


class Action(_Constant):
    """What a caller that missed the fresh path does next."""

    __slots__ = ()

    RETURN_CACHED: ClassVar[Action]
    WAIT: ClassVar[Action]
    REFRESH: ClassVar[Action]
    RAISE_LAST_ERROR: ClassVar[Action]


Action.RETURN_CACHED = Action("RETURN_CACHED")
Action.WAIT = Action("WAIT")
Action.REFRESH = Action("REFRESH")
Action.RAISE_LAST_ERROR = Action("RAISE_LAST_ERROR")


def token_state(token: _Times, now: float) -> TokenState:
    """Classify ``token`` at ``now``."""
    if now < token.refresh_on:
        return TokenState.FRESH
    if now < token.expires_on:
        return TokenState.STALE
    return TokenState.EXPIRED


def decide(state: TokenState, *, in_flight: bool, now: float, failure_until: float) -> Action:
    """Decide what a caller does, given the token's state and whether a refresh is already running.

    Args:
        state: The cached token's state at ``now``.
        in_flight: A refresher call is running (started by any caller or the background refresher).
        now: The current time.
        failure_until: End of the failure gap after a failed refresh with no valid token.
    """
    if state is TokenState.FRESH:
        return Action.RETURN_CACHED
    if in_flight:
        return Action.RETURN_CACHED if state is TokenState.STALE else Action.WAIT
    if state is TokenState.EXPIRED and now < failure_until:
        return Action.RAISE_LAST_ERROR
    return Action.REFRESH


def _clamp(at: float, now: float, expires_on: float) -> float:
    at = max(at, now + MIN_INTERVAL)
    last_second = expires_on - FINAL_SECOND
    if last_second < at < expires_on:
        at = last_second if last_second >= now + MIN_INTERVAL else expires_on
    return at


def compute_refresh_on(expires_on: float, now: float, window: float, requested: float | None = None) -> float:
    """When a token obtained at ``now`` stops being fresh.

    ``expires_on - window``; when the remaining life is not longer than the window, half-way through it
    (fractional back-off: a refresher that keeps returning short-lived tokens is called at 1/2, 3/4, 7/8 ...
    of their life). A ``requested`` time (``AccessTokenInfo.refresh_on``) wins when earlier. Never less than
    :data:`MIN_INTERVAL` away, never in the last second of the token's life, never after its expiry.
    """
    remaining = expires_on - now
    at = expires_on - window if remaining > window else now + remaining / 2
    if requested is not None:
        at = min(at, requested)
    return min(_clamp(at, now, expires_on), expires_on)


def stale_retry_at(expires_on: float, now: float) -> float:
    """When to retry after a refresh of a still-valid token failed: ``min(30 s, half the life left)``."""
    gap = min(STALE_RETRY_MAX, (expires_on - now) / 2)
    return min(_clamp(now + gap, now, expires_on), expires_on)


def next_failure_gap(previous: float) -> float:
    """The failure gap after another failure with no valid token (``previous`` is 0 after a success)."""
    if previous <= 0:
        return FAILURE_GAP_INITIAL
    return min(FAILURE_GAP_MAX, previous * 2)


def background_retry_at(now: float, failures: int, expires_on: float, jitter: float) -> float:
    """When the background refresher retries after its ``failures``-th failure in a row.

    Args:
        now: The time of the failure.
        failures: Consecutive failures, 1 for the first.
        expires_on: Expiry of the cached token (``-inf`` when there is none).
        jitter: A random fraction in ``[0, 1)`` supplied by the shell.
    """
    exponent = min(max(failures, 1) - 1, 32)
    delay = min(BACKGROUND_BACKOFF_MAX, BACKGROUND_BACKOFF_INITIAL * 2.0**exponent)
    delay += jitter * min(JITTER_MAX, delay / 10)
    return _clamp(now + delay, now, expires_on)


def proactive_due(token: _Times, jitter: float) -> float:
    """When the background refresher should refresh ``token``: at ``refresh_on`` plus a little jitter.

    The jitter (a fraction in ``[0, 1)`` supplied by the shell) delays by at most :data:`JITTER_MAX`, and at
    most a tenth of the stale window, so it never pushes the refresh near the token's expiry.
    """
    refresh_on = token.refresh_on
    if not math.isfinite(refresh_on):
        return refresh_on
    spread = min(JITTER_MAX, max(0.0, (token.expires_on - refresh_on - FINAL_SECOND) / 10))
    return refresh_on + jitter * spread


def initial_snapshot(parsed: ParsedToken, now: float, window: float | None) -> TokenSnapshot:
    """The snapshot of the token given at construction (``window=None``: static, never refreshed).

    An initial token may already be expired: with a refresher, the first call then refreshes it; without
    one it is returned as it is (the JS and Python SDKs do the same).
    """
    if window is None:
        return TokenSnapshot.build(parsed.token, parsed.expires_on, math.inf)
    if parsed.expires_on <= now:
        return TokenSnapshot.build(parsed.token, parsed.expires_on, parsed.expires_on)
    refresh_on = compute_refresh_on(parsed.expires_on, now, window, parsed.refresh_on)
    return TokenSnapshot.build(parsed.token, parsed.expires_on, refresh_on)


def accept_refreshed(parsed: ParsedToken, now: float, window: float) -> TokenSnapshot:
    """The snapshot of a token a refresher returned at ``now``.

    Raises:
        ValueError: The token is already expired (:data:`EXPIRED_RESULT_MESSAGE`).
    """
    if parsed.expires_on <= now:
        raise ValueError(EXPIRED_RESULT_MESSAGE)
    refresh_on = compute_refresh_on(parsed.expires_on, now, window, parsed.refresh_on)
    return TokenSnapshot.build(parsed.token, parsed.expires_on, refresh_on)

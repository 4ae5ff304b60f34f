"""The pure refresh rules (``_refresh.py``): states, decisions, windows, back-offs, jitter."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from token_credential_helpers import EPOCH

from azure.communication.common._refresh import (
    BACKGROUND_BACKOFF_MAX,
    EXPIRED_RESULT_MESSAGE,
    FAILURE_GAP_MAX,
    JITTER_MAX,
    ON_DEMAND_WINDOW,
    PROACTIVE_WINDOW,
    Action,
    TokenState,
    accept_refreshed,
    background_retry_at,
    compute_refresh_on,
    decide,
    initial_snapshot,
    next_failure_gap,
    proactive_due,
    stale_retry_at,
    token_state,
)
from azure.communication.common._tokens import ParsedToken, TokenSnapshot

NOW = EPOCH


def test_expired_result_message_is_the_public_text() -> None:
    # Callers may match on this text: pinned here once so a change to it is a deliberate one.
    assert EXPIRED_RESULT_MESSAGE == "The token returned from the token_refresher is expired."


def test_windows_are_the_js_values() -> None:
    assert (PROACTIVE_WINDOW, ON_DEMAND_WINDOW) == (600.0, 120.0)


@pytest.mark.parametrize(
    ("now", "state"),
    [
        (NOW - 1, TokenState.FRESH),
        (NOW, TokenState.STALE),
        (NOW + 99.9, TokenState.STALE),
        (NOW + 100, TokenState.EXPIRED),
    ],
)
def test_token_state_boundaries(now: float, state: TokenState) -> None:
    assert token_state(TokenSnapshot.build("t", NOW + 100, NOW), now) is state
    assert token_state(TokenSnapshot.empty(), now) is TokenState.EXPIRED


@pytest.mark.parametrize(
    ("state", "in_flight", "failure_until", "action"),
    [
        (TokenState.FRESH, False, math.inf, Action.RETURN_CACHED),
        (TokenState.FRESH, True, -math.inf, Action.RETURN_CACHED),
        (TokenState.STALE, True, -math.inf, Action.RETURN_CACHED),
        (TokenState.STALE, False, math.inf, Action.REFRESH),
        (TokenState.EXPIRED, True, math.inf, Action.WAIT),
        (TokenState.EXPIRED, False, NOW + 1, Action.RAISE_LAST_ERROR),
        (TokenState.EXPIRED, False, NOW, Action.REFRESH),
    ],
)
def test_decide(state: TokenState, in_flight: bool, failure_until: float, action: Action) -> None:
    assert decide(state, in_flight=in_flight, now=NOW, failure_until=failure_until) is action


@pytest.mark.parametrize(
    ("remaining", "window", "requested", "expected_offset"),
    [
        (3600, 600, None, 3000),  # the proactive window
        (3600, 120, None, 3480),  # the on-demand window
        (600, 600, None, 300),  # not longer than the window: half-way
        (100, 120, None, 50),
        (3600, 600, NOW + 1000, 1000),  # an earlier requested refresh_on wins
        (3600, 600, NOW + 3500, 3000),  # a later one does not
        (3600, 600, NOW - 50, 1),  # never sooner than a second from now
        (3, 600, None, 1.5),
        (2, 600, None, 1),
        (1.5, 600, None, 1.5),  # within the last second: wait for expiry
        (0.5, 600, None, 0.5),
    ],
)
def test_compute_refresh_on(remaining: float, window: float, requested: float | None, expected_offset: float) -> None:
    assert compute_refresh_on(NOW + remaining, NOW, window, requested) == NOW + expected_offset


def test_fractional_backoff_series_of_a_twenty_minute_token() -> None:
    # The refresher keeps returning the same 20-minute token: refreshed at 10 min, then at half the rest.
    expires_on = NOW + 1200
    now = NOW
    times = []
    while True:
        refresh_on = compute_refresh_on(expires_on, now, PROACTIVE_WINDOW)
        if refresh_on >= expires_on:
            break
        times.append(refresh_on - NOW)
        now = refresh_on
    assert times[:5] == [600, 900, 1050, 1125, 1162.5]
    for before, after in itertools.pairwise(times):
        assert after - before == pytest.approx((1200 - before) / 2)
    assert 1200 - times[-1] < 2


@given(
    remaining=st.floats(min_value=-10, max_value=1e6, allow_nan=False),
    window=st.sampled_from([ON_DEMAND_WINDOW, PROACTIVE_WINDOW]),
    requested=st.none() | st.floats(min_value=NOW - 1e6, max_value=NOW + 2e6),
)
def test_refresh_on_is_never_too_soon_nor_in_the_last_second(
    remaining: float, window: float, requested: float | None
) -> None:
    expires_on = NOW + remaining
    refresh_on = compute_refresh_on(expires_on, NOW, window, requested)
    assert refresh_on <= expires_on
    if remaining >= 2:
        assert NOW + 1 <= refresh_on <= expires_on - 1
    else:
        assert refresh_on == expires_on


@pytest.mark.parametrize(
    ("remaining", "expected_offset"),
    [(600, 30), (61, 30), (20, 10), (2, 1), (1.5, 1.5)],
)
def test_stale_retry_gap_is_min_30_s_or_half_the_remaining_life(remaining: float, expected_offset: float) -> None:
    assert stale_retry_at(NOW + remaining, NOW) == NOW + expected_offset


def test_failure_gap_doubles_to_30_s() -> None:
    gaps = [next_failure_gap(0.0)]
    for _ in range(7):
        gaps.append(next_failure_gap(gaps[-1]))
    assert gaps == [1, 2, 4, 8, 16, FAILURE_GAP_MAX, 30, 30]


def test_background_backoff_doubles_from_1_s_to_5_minutes() -> None:
    delays = [background_retry_at(NOW, n, -math.inf, 0.0) - NOW for n in range(1, 12)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, BACKGROUND_BACKOFF_MAX, 300]
    assert background_retry_at(NOW, 10_000, -math.inf, 0.0) == NOW + 300
    # Jitter adds at most a tenth of the delay, capped.
    assert background_retry_at(NOW, 1, -math.inf, 0.5) == NOW + 1.05
    assert background_retry_at(NOW, 20, -math.inf, 1.0) == NOW + 300 + JITTER_MAX


def test_background_retry_avoids_the_last_second_of_a_valid_token() -> None:
    # Due at +4, inside (exp-1, exp): moved to exp-1.
    assert background_retry_at(NOW, 3, NOW + 4.5, 0.0) == NOW + 3.5
    # No room for a whole second before the last one: wait for expiry.
    assert background_retry_at(NOW, 1, NOW + 1.5, 0.0) == NOW + 1.5
    # After expiry the back-off is kept.
    assert background_retry_at(NOW, 3, NOW + 2, 0.0) == NOW + 4


def test_proactive_due_adds_bounded_jitter() -> None:
    wide = TokenSnapshot.build("t", NOW + 600, NOW)
    assert proactive_due(wide, 0.0) == NOW
    assert proactive_due(wide, 1.0) == NOW + JITTER_MAX
    narrow = TokenSnapshot.build("t", NOW + 11, NOW)
    assert proactive_due(narrow, 1.0) == NOW + 1
    at_expiry = TokenSnapshot.build("t", NOW, NOW)
    assert proactive_due(at_expiry, 0.9) == NOW
    assert proactive_due(TokenSnapshot.build("t", NOW, math.inf), 0.5) == math.inf


def test_initial_snapshot() -> None:
    token = ParsedToken("t", NOW + 3600)
    assert initial_snapshot(token, NOW, None).refresh_on == math.inf
    assert initial_snapshot(token, NOW, PROACTIVE_WINDOW).refresh_on == NOW + 3000
    hinted = ParsedToken("t", NOW + 3600, NOW + 10)
    assert initial_snapshot(hinted, NOW, ON_DEMAND_WINDOW).refresh_on == NOW + 10
    expired = initial_snapshot(ParsedToken("t", NOW - 5), NOW, ON_DEMAND_WINDOW)
    assert token_state(expired, NOW) is TokenState.EXPIRED
    assert expired.refresh_on == expired.expires_on == NOW - 5


def test_accept_refreshed_rejects_expired_tokens() -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(EXPIRED_RESULT_MESSAGE)}$"):
        accept_refreshed(ParsedToken("t", NOW), NOW, ON_DEMAND_WINDOW)
    snapshot = accept_refreshed(ParsedToken("t", NOW + 3600, NOW + 60), NOW, ON_DEMAND_WINDOW)
    assert (snapshot.expires_on, snapshot.refresh_on) == (NOW + 3600, NOW + 60)

"""Units of the Chat service's authentication: the verified-token cache, expiry and revocation rules."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acs_emulator import _chat_validation as validation
from acs_emulator import _user_auth
from acs_emulator._chat_validation import CHAT_API_VERSIONS
from acs_emulator._errors import ApiError
from acs_emulator._user_auth import CLOCK_SKEW, Caller, CallerRefused, UserTokenVerifier, identity_verdict
from emulator_support import FakeClock

CLAIMS = {"skypeid": "acs:r_u", "iat": 1000, "exp": 2000, "acsScope": "chat,voip"}


class Signatures:
    """A fake signature check that counts its calls."""

    def __init__(self, claims: dict[str, Any] | None = None) -> None:
        self.calls = 0
        self.claims = claims or CLAIMS

    def __call__(self, token: str) -> dict[str, Any]:
        self.calls += 1
        if token.startswith("bad"):
            raise ValueError("not ours")
        return dict(self.claims)


def test_verified_tokens_are_cached_but_expiry_is_checked_every_time() -> None:
    clock, signatures = FakeClock(1500.0), Signatures()
    verifier = UserTokenVerifier(signatures, clock)
    for _ in range(5):
        caller = verifier.caller("Bearer tok")
    assert signatures.calls == verifier.signature_checks == 1
    assert caller == Caller("8:acs:r_u", 1000, 2000, frozenset({"chat"}))
    assert "tok" not in repr(caller)
    clock.now = 2000 + CLOCK_SKEW + 0.5
    with pytest.raises(CallerRefused) as info:
        verifier.caller("bearer tok")
    assert info.value.verdict == "bearer: expired"
    assert info.value.status == 401
    assert signatures.calls == 1


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_user_auth, "_CACHE_LIMIT", 16)
    signatures = Signatures()
    verifier = UserTokenVerifier(signatures, FakeClock(1500.0))
    for i in range(40):
        verifier.caller(f"Bearer token-{i}")
    assert len(verifier._cache) <= 16
    verifier.caller("Bearer token-39")
    assert signatures.calls == 40  # the newest are still cached
    verifier.caller("Bearer token-0")
    assert signatures.calls == 41  # the oldest were dropped


@pytest.mark.parametrize(
    ("claims", "verdict"),
    [
        ({**CLAIMS, "skypeid": "orgid:abc"}, "bearer: not a user token"),
        ({**CLAIMS, "exp": "soon"}, "bearer: not a user token"),
        ({**CLAIMS, "iat": True}, "bearer: not a user token"),
        ({**CLAIMS, "acsScope": "voip"}, "bearer: no chat scope"),
        ({k: v for k, v in CLAIMS.items() if k != "acsScope"}, "bearer: no chat scope"),
    ],
)
def test_claims_that_cannot_open_chat(claims: dict[str, Any], verdict: str) -> None:
    verifier = UserTokenVerifier(Signatures(claims), FakeClock(1500.0))
    with pytest.raises(CallerRefused) as info:
        verifier.caller("Bearer t")
    assert info.value.verdict == verdict


def test_bad_signatures_are_not_cached() -> None:
    signatures = Signatures()
    verifier = UserTokenVerifier(signatures, FakeClock(1500.0))
    for _ in range(2):
        with pytest.raises(CallerRefused, match="not issued by this resource"):
            verifier.caller("Bearer bad-token")
    assert signatures.calls == 2


def test_scopes_decide_what_a_caller_manages() -> None:
    full = Caller("8:acs:a", 0, 1, frozenset({"chat"}))
    join = Caller("8:acs:a", 0, 1, frozenset({"chat.join"}))
    limited = Caller("8:acs:a", 0, 1, frozenset({"chat.join.limited"}))
    assert [c.can_manage_threads for c in (full, join, limited)] == [True, False, False]
    assert [c.can_manage_participants for c in (full, join, limited)] == [True, True, False]


CALLER = Caller("8:acs:a", iat=100, exp=200, scopes=frozenset({"chat"}))


@pytest.mark.parametrize(
    ("row", "verdict"),
    [
        (None, "bearer: identity deleted"),
        ((100.0, None), None),
        ((100.0, 99.5), None),  # revoked before this token's second
        ((100.0, 100.5), "bearer: revoked"),  # same second, no token issued since
        ((100.7, 100.5), None),  # same second, a token was issued after the revocation: this one
        # Tokens of the revocation's second cannot be told apart once one was issued after it: accepted.
        ((101.2, 100.5), None),
        ((101.2, 101.0), "bearer: revoked"),  # revoked in a later second than this token's
        ((150.0, 120.0), "bearer: revoked"),
    ],
)
def test_identity_verdict(row: tuple[float | None, float | None] | None, verdict: str | None) -> None:
    assert identity_verdict(CALLER, row) == verdict


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "topic",
        "participants",
        "metadata",
        "retentionPolicy",
        "content",
        "type",
        "senderDisplayName",
        "chatMessageId",
        "communicationIdentifier",
        "rawId",
        "kind",
        "communicationUser",
    ]
)


@given(st.dictionaries(FIELDS, JSON, max_size=6), st.sampled_from(CHAT_API_VERSIONS))
def test_any_json_body_is_parsed_or_refused_with_a_400(obj: dict[str, Any], version: str) -> None:
    body = json.dumps(obj).encode()
    parsers: list[Callable[[], object]] = [
        lambda: validation.parse_create_thread(body, version),
        lambda: validation.parse_update_thread(body, version),
        lambda: validation.parse_send_message(body),
        lambda: validation.parse_update_message(body),
        lambda: validation.parse_add_participants(body, version),
        lambda: validation.parse_read_receipt(body),
        lambda: validation.parse_typing(body),
        lambda: validation.parse_identifier(obj, "body"),
    ]
    refused: list[tuple[int, bool]] = []
    for parse in parsers:
        try:
            parse()
        except ApiError as exc:
            refused.append((exc.status, bool(exc.message)))
    assert all(outcome == (400, True) for outcome in refused)


@given(st.text(max_size=64))
def test_any_query_value_or_id_is_parsed_or_refused_with_a_400(text: str) -> None:
    encoded = base64.urlsafe_b64encode(text.encode()).decode()
    checks: list[Callable[[], object]] = [
        lambda: validation.parse_page_size([text]),
        lambda: validation.parse_skip([text]),
        lambda: validation.parse_start_time([text]),
        lambda: validation.check_message_id(text),
        lambda: validation.check_thread_id(text),
        lambda: validation.decode_cursor([text], {"before": float, "since": float}),
        lambda: validation.decode_cursor([encoded], {"on": float, "id": str}),
    ]
    refused: list[int] = []
    for check in checks:
        try:
            check()
        except ApiError as exc:
            refused.append(exc.status)
    assert set(refused) <= {400}


def test_cursors_round_trip_and_forged_ones_are_refused() -> None:
    state = {"before": 12, "since": -1.0}
    assert validation.decode_cursor([validation.encode_cursor(state)], {"before": float, "since": float}) == state
    for forged in ({"before": "12", "since": 0}, {"before": float("inf"), "since": 0}, {"before": True, "since": 0}):
        raw = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode()
        with pytest.raises(ApiError, match="syncState"):
            validation.decode_cursor([raw], {"before": float, "since": float})

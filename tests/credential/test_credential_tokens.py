"""Token input: JWT decoding (base64url), opaque tokens, normalisation errors, hidden reprs."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from hypothesis import given
from hypothesis import strategies as st
from token_credential_helpers import EPOCH, b64url, make_jwt

from azure.communication.common._tokens import (
    OPAQUE_TOKEN_LIFETIME,
    ParsedToken,
    TokenSnapshot,
    _flat_exp,
    _numeric_exp,
    _payload_exp,
    decode_jwt_header,
    decode_jwt_payload,
    normalize_token,
    parse_jwt_expiry,
)

SECRET = "s3cr3t-t0ken-text"


def _url_safe_jwt(exp: float) -> str:
    # "~~~" encodes to sextet 62 ("-") and "???" to 63 ("_") at some alignment of the nonce.
    for shift in range(9):
        token = make_jwt(exp, nonce="x" * (shift % 3) + "~~~" + "x" * (shift // 3) + "???")
        payload = token.split(".")[1]
        if "-" in payload and "_" in payload:
            return token
    raise AssertionError("no base64url nonce found")


def test_base64url_payload_with_dash_and_underscore_decodes() -> None:
    token = _url_safe_jwt(EPOCH + 60)
    payload = token.split(".")[1]
    # Plain base64 (what the peers use) rejects this valid token.
    with pytest.raises(binascii.Error):
        base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    claims = decode_jwt_payload(token)
    assert claims["exp"] == EPOCH + 60
    assert "~~~" in claims["nonce"]
    assert parse_jwt_expiry(token) == EPOCH + 60


@pytest.mark.parametrize("pad", [False, True], ids=["unpadded", "padded"])
def test_padding_is_optional(pad: bool) -> None:
    # A payload whose length is not a multiple of 4, so the padded form really has "=".
    for extra in ("", "a", "ab"):
        token = make_jwt(EPOCH + 5, pad=pad, sub=extra)
        if len(token.split(".")[1].rstrip("=")) % 4:
            break
    payload = token.split(".")[1]
    assert payload.endswith("=") is pad
    assert decode_jwt_payload(token) == {"sub": extra, "exp": EPOCH + 5}
    assert decode_jwt_header(token) == {"alg": "RS256", "typ": "JWT"}


def test_fractional_exp_is_kept() -> None:
    token = make_jwt(EPOCH + 0.75)
    assert parse_jwt_expiry(token) == EPOCH + 0.75
    parsed = normalize_token(token, EPOCH - 100)
    assert parsed.expires_on == EPOCH + 0.75
    snapshot = TokenSnapshot.build(parsed.token, parsed.expires_on, EPOCH - 0.5)
    # Exposed as whole seconds, rounded down.
    assert snapshot.access_token.expires_on == int(EPOCH)
    assert snapshot.access_token_info.refresh_on == int(EPOCH) - 1


def _decode_both(token: str) -> dict[str, object]:
    decode_jwt_header(token)
    return decode_jwt_payload(token)


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("abc", "segments"),
        ("a.b", "segments"),
        ("a.b.c.d", "segments"),
        (f"{b64url(b'{}')}.{SECRET}+/.sig", "outside base64url"),
        (f"{b64url(b'{}')}.e3!{SECRET}.sig", "outside base64url"),
        (f"{b64url(b'{}')}.e3é0.sig", "outside base64url"),
        (f"{b64url(b'{}')}.e=30.sig", "outside base64url"),
        (f"{b64url(b'{}')}.{b64url(b'{}')}AA.sig", "impossible base64url length"),
        (f"{b64url(b'{}')}.{b64url(b'not json')}.sig", "not base64url-encoded JSON"),
        (f"{b64url(b'{}')}.{b64url(b'[1, 2]')}.sig", "not an object"),
        (f"{b64url(bytes([0xFF, 0xFE]))}.{b64url(b'{}')}.sig", "header is not base64url"),
    ],
)
def test_not_a_jwt_is_a_value_error_that_never_quotes_the_token(token: str, reason: str) -> None:
    with pytest.raises(ValueError, match="not a JWT") as info:
        _decode_both(token)
    assert reason in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


def test_decoders_reject_non_strings() -> None:
    with pytest.raises(TypeError, match="must be a str"):
        decode_jwt_payload(b"a.b.c")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        parse_jwt_expiry(None)  # type: ignore[arg-type]
    # Surrounding whitespace is tolerated.
    assert parse_jwt_expiry(f"  {make_jwt(EPOCH)}\n") == EPOCH
    with pytest.raises(ValueError, match="no numeric 'exp'"):
        parse_jwt_expiry(make_jwt(None, sub="x"))


@pytest.mark.usefixtures("fresh_opaque_notice")
@pytest.mark.parametrize(
    "token",
    [
        "opaque-token-text",
        make_jwt(None, sub="no exp"),
        make_jwt(True),  # type: ignore[arg-type]
        make_jwt("1800000000"),  # type: ignore[arg-type]
        make_jwt(math.inf),
    ],
    ids=["opaque", "no-exp", "bool-exp", "string-exp", "infinite-exp"],
)
def test_opaque_tokens_get_the_assumed_lifetime_and_one_warning(token: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="azure.communication.common")
    first = normalize_token(token, EPOCH)
    second = normalize_token(token, EPOCH + 10)
    assert first.expires_on == EPOCH + OPAQUE_TOKEN_LIFETIME == 600 + EPOCH
    assert second.expires_on == EPOCH + 10 + OPAQUE_TOKEN_LIFETIME
    records = [r for r in caplog.records if "opaque" in r.getMessage()]
    assert len(records) == 1
    assert token not in records[0].getMessage()


def test_strings_access_tokens_and_infos_are_normalised() -> None:
    jwt = make_jwt(EPOCH + 3600)
    assert normalize_token(f"  {jwt}\n", EPOCH) == ParsedToken(jwt, EPOCH + 3600)
    assert normalize_token(AccessToken("tok", int(EPOCH) + 7), EPOCH) == ParsedToken("tok", EPOCH + 7)
    info = AccessTokenInfo("tok", int(EPOCH) + 9, refresh_on=int(EPOCH) + 3)
    assert normalize_token(info, EPOCH) == ParsedToken("tok", EPOCH + 9, EPOCH + 3)
    assert normalize_token(AccessTokenInfo("tok", int(EPOCH) + 9), EPOCH).refresh_on is None


@pytest.mark.parametrize(
    "value",
    ["", "   \n\t", AccessToken("", 1), AccessToken("  ", 1), AccessTokenInfo("", 1)],
    ids=["empty", "whitespace", "empty-access-token", "blank-access-token", "empty-info"],
)
def test_empty_tokens_are_value_errors(value: object) -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        normalize_token(value, EPOCH)


@pytest.mark.parametrize(
    ("value", "error", "expected"),
    [
        (AccessToken(123, 1), TypeError, "must be a str, not int"),  # type: ignore[arg-type]
        (AccessToken("tok", "soon"), TypeError, "expires_on .* must be a number"),  # type: ignore[arg-type]
        (AccessToken("tok", True), TypeError, "expires_on .* must be a number"),  # type: ignore[arg-type]
        (AccessToken("tok", math.nan), ValueError, "not NaN"),  # type: ignore[arg-type]
        (AccessTokenInfo("tok", 1, refresh_on="x"), TypeError, "refresh_on .* must be a number"),  # type: ignore[arg-type]
    ],
)
def test_malformed_token_objects(value: object, error: type[Exception], expected: str) -> None:
    with pytest.raises(error, match=expected):
        normalize_token(value, EPOCH)


class _IdentityUser:
    def __init__(self) -> None:
        self.properties = {"id": "8:acs:resource_user"}


class _TokenResponse:
    def __init__(self, token: str) -> None:
        self.token = token
        self.expires_on = "2030-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ((_IdentityUser(), AccessToken(SECRET, 1)), r"pass result\[1\]\.token"),
        ({"token": SECRET, "expiresOn": "2030-01-01T00:00:00Z"}, 'pass only its "token" field'),
        (_TokenResponse(SECRET), r"pass only its token field \(value\.token"),
        (SECRET.encode(), "decode the bytes to str first"),
        (12345, "pass the bare token string"),
        ([SECRET], "pass the bare token string"),
    ],
    ids=["identity-tuple", "response-dict", "response-object", "bytes", "int", "list"],
)
def test_wrong_types_are_type_errors_with_a_hint(value: object, hint: str) -> None:
    with pytest.raises(TypeError, match=hint) as info:
        normalize_token(value, EPOCH)
    message = str(info.value)
    assert message.startswith("token must be a token string, an AccessToken or an AccessTokenInfo")
    assert type(value).__name__ in message
    assert SECRET not in message


def test_the_refresher_source_is_named_in_errors() -> None:
    with pytest.raises(TypeError, match=r"^the token_refresher result must be a token string"):
        normalize_token(42, EPOCH, source="the token_refresher result")


def test_token_objects_hide_the_token_and_stay_azure_core_types() -> None:
    snapshot = TokenSnapshot.build(SECRET, EPOCH + 100.9, EPOCH + 50.5)
    token, info = snapshot.access_token, snapshot.access_token_info
    assert isinstance(token, AccessToken)
    assert isinstance(info, AccessTokenInfo)
    assert token == (SECRET, int(EPOCH) + 100)
    assert (info.token, info.expires_on, info.refresh_on) == (SECRET, int(EPOCH) + 100, int(EPOCH) + 50)
    assert info.token_type == "Bearer"
    for text in (repr(token), str(token), repr(info), str(info), repr(snapshot)):
        assert SECRET not in text
        assert "hidden" in text or "TokenSnapshot" in text
    assert f"expires_on={int(EPOCH) + 100}" in repr(token)
    assert SECRET not in repr(ParsedToken(SECRET, 1.0))
    # azure-core's own class prints it: this is why ours exist.
    assert SECRET in repr(AccessTokenInfo(SECRET, 1))


def test_static_snapshot_exposes_no_refresh_on_and_empty_is_never_fresh() -> None:
    static = TokenSnapshot.build("tok", EPOCH, math.inf)
    assert static.access_token_info.refresh_on is None
    empty = TokenSnapshot.empty()
    assert empty.refresh_on == empty.expires_on == -math.inf
    assert empty.access_token.expires_on == 0
    moved = static.with_refresh_on(EPOCH - 10)
    assert (moved.token, moved.expires_on, moved.refresh_on) == ("tok", EPOCH, EPOCH - 10)
    assert moved.access_token_info.refresh_on == int(EPOCH) - 10


def test_decoding_handles_real_unicode_claims() -> None:
    token = make_jwt(EPOCH, name="Zoë 🚀")
    assert decode_jwt_payload(token)["name"] == "Zoë 🚀"
    raw = json.dumps({"exp": 1}).encode()
    assert decode_jwt_payload(f"{b64url(b'{}')}.{b64url(raw)}.") == {"exp": 1}


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(alphabet='exp"\\{}:, 0123456789', max_size=8)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["exp", "x", '"exp"']), children, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.sampled_from(["exp", "iat", "skypeid", '"exp"', "exp\\", "{", "e"]) | st.text(max_size=4)


@given(
    payload=st.dictionaries(_keys, _values, max_size=5),
    layout=st.sampled_from([{}, {"indent": 1}, {"separators": (",", ":")}]),
)
def test_expiry_fast_path_agrees_with_json(payload: dict[str, object], layout: dict[str, object]) -> None:
    raw = json.dumps(payload, **layout).encode()  # type: ignore[arg-type]
    token = f"{b64url(b'{}')}.{b64url(raw)}.sig"
    applies, exp = _flat_exp(raw)
    expected = _numeric_exp(json.loads(raw))
    if applies:
        assert exp == expected
    assert _payload_exp(token) == expected


def test_expiry_fast_path_applies_to_flat_payloads_only() -> None:
    assert _flat_exp(b'{"scp":1792,"exp":1800000000.5,"iat":1}') == (True, 1800000000.5)
    assert _flat_exp(b'{"exp": 1e400}') == (True, None)
    assert _flat_exp(b'{"exp":' + b"9" * 400 + b"}") == (True, None)
    assert _numeric_exp({"exp": 10**400}) is None
    for raw in (
        b'{"a":{"exp":1},"exp":2}',  # nested objects
        b'{"exp":1,"exp":2}',  # duplicated key: json keeps the last
        b'{"a":"\\"exp\\":1","b":2}',  # inside a string
        b'{"exp":"1"}',
        b'{"exp":true}',
        b' {"exp":1}',
    ):
        assert _flat_exp(raw)[0] is False, raw

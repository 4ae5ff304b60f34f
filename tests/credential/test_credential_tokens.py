"""Token input: the one JWT reader, opaque tokens, timestamps of token objects, mistaken inputs, hidden reprs."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import math
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from hypothesis import given
from hypothesis import strategies as st
from token_credential_helpers import EPOCH, Flavor, b64url, make_jwt

from azure.communication.common._cli import main as cli_main
from azure.communication.common._jwt import jwt_expiry, numeric_exp, read_jwt
from azure.communication.common._tokens import (
    NEVER_EXPIRES_PUBLIC,
    OPAQUE_TOKEN_LIFETIME,
    ParsedToken,
    TokenSnapshot,
    check_undecodable_interval,
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
        (f"{b64url(b'{}')}.{b64url(b'not json')}.sig", "not base64url-encoded UTF-8 JSON"),
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
    assert info.value.__context__ is None


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
        make_jwt(math.inf),  # json.dumps writes Infinity, which is not JSON
        make_jwt(10**400),
    ],
    ids=["opaque", "no-exp", "bool-exp", "string-exp", "infinite-exp", "huge-exp"],
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
        (AccessToken("tok", "soon"), ValueError, "expires_on of the token is a str that is not an ISO 8601"),  # type: ignore[arg-type]
        (AccessToken("tok", b"1"), TypeError, "expires_on of the token must be a number"),  # type: ignore[arg-type]
        (AccessToken("tok", True), TypeError, "expires_on .* must be a number"),  # type: ignore[arg-type]
        (AccessToken("tok", math.nan), ValueError, "not NaN"),  # type: ignore[arg-type]
        (AccessTokenInfo("tok", 1, refresh_on="x"), ValueError, "refresh_on .* not an ISO 8601"),  # type: ignore[arg-type]
        (AccessTokenInfo("tok", 1, refresh_on=[1]), TypeError, "refresh_on .* must be a number"),  # type: ignore[arg-type]
        (AccessToken("tok", datetime(2030, 1, 1)), ValueError, "naive datetime: it must be timezone-aware"),  # type: ignore[arg-type]
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


@pytest.mark.parametrize("make", ["jwt", "access_token", "refresher"])
def test_snapshot_times_are_floats_whatever_the_input_gave(make: str) -> None:
    # The fresh path compares refresh_on with time.time(): an int there leaves CPython's comparison
    # unspecialised and costs the hot path about a third of its time (bench case 1).
    from azure.communication.common import CommunicationTokenCredential

    exp = int(time.time()) + 3600
    if make == "jwt":
        credential = CommunicationTokenCredential(make_jwt(exp))
    elif make == "access_token":
        credential = CommunicationTokenCredential(AccessToken("opaque", exp))
    else:
        credential = CommunicationTokenCredential(token_refresher=lambda: AccessToken("opaque", exp))
        credential.get_token()
    with credential:
        snapshot = credential._snapshot
        assert type(snapshot.refresh_on) is float
        assert type(snapshot.expires_on) is float
        assert snapshot.expires_on == exp
    assert type(TokenSnapshot.build("t", 10, 5).refresh_on) is float


def test_decoding_handles_real_unicode_claims() -> None:
    token = make_jwt(EPOCH, name="Zoë 🚀")
    assert decode_jwt_payload(token)["name"] == "Zoë 🚀"
    raw = json.dumps({"exp": 1}).encode()
    assert decode_jwt_payload(f"{b64url(b'{}')}.{b64url(raw)}.") == {"exp": 1}


# --------------------------------------------------------------------------------------------------------
# The one JWT reader: a table of odd tokens, read by the credential and by `acs-common token inspect`
# --------------------------------------------------------------------------------------------------------

EXP = 4_000_000_000  # 2096: still valid whenever the CLI's real clock reads it
HEADER = b64url(b'{"alg":"RS256","typ":"JWT"}')


def _jwt_of(payload: bytes, *, header: str = HEADER, pad: bool = False, signature: str = "c2ln") -> str:
    return f"{header}.{b64url(payload, pad=pad)}.{signature}"


def _dash_underscore_payload() -> str:
    for shift in range(9):
        claims = {"exp": EXP, "n": "x" * (shift % 3) + "~~~" + "x" * (shift // 3) + "???"}
        payload = b64url(json.dumps(claims).encode())
        if "-" in payload and "_" in payload:
            return f"{HEADER}.{payload}.c2ln"
    raise AssertionError("no base64url nonce found")


def _padded() -> str:
    # A payload whose unpadded length is not a multiple of 4, so the padded form really ends in "=".
    for extra in ("", "a", "ab"):
        token = _jwt_of(json.dumps({"exp": EXP, "p": extra}).encode(), pad=True)
        if token.split(".")[1].endswith("="):
            return token
    raise AssertionError("no padded payload found")


VALID, NO_EXPIRY, NOT_A_JWT = "valid", "no expiry", "not a JWT"
E = str(EXP).encode()
PLAIN = b'{"exp":' + E + b"}"
PLUS_SLASH = b'{"exp":' + E + b', "n":"~~~???"}'  # plain base64 of it holds "+" and "/"

# (case, token, the CLI's verdict); the credential reads `exp` exactly when the verdict is "valid".
ODD_TOKENS: list[tuple[str, str, str]] = [
    ("plain", _jwt_of(b'{"exp":' + E + b"}"), VALID),
    ("trailing-comma-with-nested-object", _jwt_of(b'{"exp":' + E + b',"o":{},}'), NOT_A_JWT),
    ("trailing-comma-flat", _jwt_of(b'{"exp":' + E + b",}"), NOT_A_JWT),
    ("utf8-bom", _jwt_of(b'\xef\xbb\xbf{"exp":' + E + b"}"), NOT_A_JWT),
    ("utf16-with-bom", _jwt_of(('{"exp":' + str(EXP) + "}").encode("utf-16")), NOT_A_JWT),
    ("utf16-le-without-bom", _jwt_of(('{"exp":' + str(EXP) + "}").encode("utf-16-le")), NOT_A_JWT),
    ("latin1-text", _jwt_of(b'{"exp":' + E + b',"n":"\xe9"}'), NOT_A_JWT),
    ("nan-exp", _jwt_of(b'{"exp":NaN}'), NOT_A_JWT),
    ("infinity-exp", _jwt_of(b'{"exp":Infinity}'), NOT_A_JWT),
    ("nan-in-another-claim", _jwt_of(b'{"exp":' + E + b',"x":-Infinity}'), NOT_A_JWT),
    ("string-exp", _jwt_of(b'{"exp":"' + E + b'"}'), NO_EXPIRY),
    ("bool-exp", _jwt_of(b'{"exp":true}'), NO_EXPIRY),
    ("null-exp", _jwt_of(b'{"exp":null}'), NO_EXPIRY),
    ("overflowing-float-exp", _jwt_of(b'{"exp":1e400}'), NO_EXPIRY),
    ("overflowing-int-exp", _jwt_of(b'{"exp":' + b"9" * 400 + b"}"), NO_EXPIRY),
    ("exp-only-in-a-nested-object", _jwt_of(b'{"o":{"exp":' + E + b"}}"), NO_EXPIRY),
    ("exp-inside-a-string", _jwt_of(b'{"a":"\\"exp\\":' + E + b'"}'), NO_EXPIRY),
    ("duplicated-exp-last-wins", _jwt_of(b'{"exp":1,"exp":' + E + b"}"), VALID),
    ("fractional-exp", _jwt_of(b'{"exp":' + E + b".5}"), VALID),
    ("whitespace-around-json", _jwt_of(b' \n{ "exp" : ' + E + b" }\t"), VALID),
    ("padding-present", _padded(), VALID),
    ("padding-absent", _jwt_of(json.dumps({"exp": EXP, "p": "a"}).encode()), VALID),
    ("wrong-padding", "", NOT_A_JWT),  # built below
    ("dash-and-underscore", _dash_underscore_payload(), VALID),
    ("empty-signature", _jwt_of(b'{"exp":' + E + b"}", signature=""), VALID),
    ("two-segments", f"{HEADER}.{b64url(PLAIN)}", NOT_A_JWT),
    ("four-segments", _jwt_of(b'{"exp":' + E + b"}") + ".more", NOT_A_JWT),
    ("empty-payload", f"{HEADER}..c2ln", NOT_A_JWT),
    ("payload-is-an-array", _jwt_of(b"[" + E + b"]"), NOT_A_JWT),
    ("header-not-json-is-ignored", _jwt_of(b'{"exp":' + E + b"}", header=b64url(b"alg")), VALID),
    ("plain-base64-in-payload", f"{HEADER}.{base64.b64encode(PLUS_SLASH).decode()}.c2ln", NOT_A_JWT),
]


def _wrong_padding() -> str:
    # One "=" where none belongs: a payload of a multiple of 3 bytes has an unpadded length divisible by 4.
    for extra in ("", "a", "ab"):
        raw = json.dumps({"exp": EXP, "q": extra}).encode()
        if len(raw) % 3 == 0:
            return f"{HEADER}.{b64url(raw)}=.c2ln"
    raise AssertionError("no payload of a multiple of 3 bytes")


ODD_TOKENS[[case for case, _, _ in ODD_TOKENS].index("wrong-padding")] = ("wrong-padding", _wrong_padding(), NOT_A_JWT)


def test_the_odd_token_table_is_well_formed() -> None:
    # Each case really is what its name says (so the verdicts below test the reader, not the table).
    tokens = dict((case, token) for case, token, _ in ODD_TOKENS)
    assert tokens["padding-present"].split(".")[1].endswith("=")
    assert "=" not in tokens["padding-absent"]
    assert {"-", "_"} <= set(tokens["dash-and-underscore"].split(".")[1])
    assert tokens["two-segments"].count(".") == 1
    assert tokens["four-segments"].count(".") == 3
    assert len(tokens["wrong-padding"].split(".")[1].rstrip("=")) % 4 == 0
    assert len(ODD_TOKENS) == len(tokens) >= 30


@pytest.mark.usefixtures("fresh_opaque_notice")
@pytest.mark.parametrize(("case", "token", "verdict"), ODD_TOKENS, ids=[c for c, _, _ in ODD_TOKENS])
async def test_odd_tokens_get_one_verdict_from_the_credential_and_the_cli(
    case: str, token: str, verdict: str, flavor: Flavor, capsys: pytest.CaptureFixture[str]
) -> None:
    payload_exp = float(EXP) + (0.5 if case == "fractional-exp" else 0.0)
    credential = flavor.make(token)
    got = await flavor.get(credential)
    # The credential: the token's own exp when the verdict is "valid", else the opaque lifetime from now.
    if verdict == VALID:
        assert got.expires_on == math.floor(payload_exp)
        assert jwt_expiry(token) == payload_exp
    else:
        assert got.expires_on == int(EPOCH + OPAQUE_TOKEN_LIFETIME)
        assert jwt_expiry(token) is None
    # The CLI, in-process: the same verdict, the same expiry.
    assert cli_main(["token", "inspect", "--json", token]) == (0 if verdict == VALID else 1)
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == verdict, case
    assert report["expires_on"] == (payload_exp if verdict == VALID else None)
    assert "c2ln" not in json.dumps(report)  # the signature is never shown


def test_reader_parts_and_numeric_exp() -> None:
    parts = read_jwt(make_jwt(EPOCH + 1, sub="u"))
    assert parts.header == {"alg": "RS256", "typ": "JWT"}
    assert parts.claims == {"sub": "u", "exp": EPOCH + 1}
    assert parts.expires_on == EPOCH + 1
    assert numeric_exp({"exp": 10**400}) is None
    assert numeric_exp({"exp": True}) is None
    assert numeric_exp({"exp": 5}) == 5.0
    with pytest.raises(TypeError, match="must be a str"):
        jwt_expiry(None)  # type: ignore[arg-type]


def test_the_flat_exp_shortcut_is_gone() -> None:
    import azure.communication.common._jwt as jwt_module
    import azure.communication.common._tokens as tokens_module

    for module in (jwt_module, tokens_module):
        assert not any("flat" in name for name in vars(module)), module.__name__


# --------------------------------------------------------------------------------------------------------
# Token objects: expires_on as a number, an ACS timestamp string or an aware datetime
# --------------------------------------------------------------------------------------------------------

ACS_TEXT = "2026-12-02T20:16:31.0000000Z"
ACS_SECONDS = 1_796_242_591.0


@pytest.mark.parametrize(
    ("expires_on", "expected"),
    [
        (ACS_TEXT, ACS_SECONDS),
        ("2026-12-02T20:16:31Z", ACS_SECONDS),
        ("2026-12-02T20:16:31.5Z", ACS_SECONDS + 0.5),
        ("2026-12-02T20:16:31.123456789Z", ACS_SECONDS + 0.123456789),
        ("2026-12-02T20:16:31+00:00", ACS_SECONDS),
        ("2026-12-02T22:16:31.0000000+02:00", ACS_SECONDS),
        ("  2026-12-02T20:16:31.0000000Z\n", ACS_SECONDS),
        (datetime(2026, 12, 2, 20, 16, 31, tzinfo=timezone.utc), ACS_SECONDS),
        (datetime(2026, 12, 2, 15, 16, 31, tzinfo=timezone(timedelta(hours=-5))), ACS_SECONDS),
        (int(ACS_SECONDS), ACS_SECONDS),
        (ACS_SECONDS + 0.25, ACS_SECONDS + 0.25),
        (math.inf, math.inf),
    ],
    ids=[
        "acs-7-digits",
        "no-fraction",
        "1-digit",
        "9-digits",
        "offset-zero",
        "offset",
        "whitespace",
        "aware-utc",
        "aware-offset",
        "int",
        "float",
        "inf",
    ],
)
@pytest.mark.parametrize("kind", [AccessToken, AccessTokenInfo])
def test_token_objects_take_numbers_timestamps_and_aware_datetimes(
    kind: Any, expires_on: object, expected: float
) -> None:
    parsed = normalize_token(kind(SECRET, expires_on), EPOCH)
    assert parsed.expires_on == pytest.approx(expected, abs=1e-6)
    assert parsed.token == SECRET


def test_refresh_on_takes_the_same_forms() -> None:
    info = AccessTokenInfo(SECRET, ACS_TEXT, refresh_on="2026-12-02T20:06:31.0000000Z")  # type: ignore[arg-type]
    assert normalize_token(info, EPOCH) == ParsedToken(SECRET, ACS_SECONDS, ACS_SECONDS - 600)


def test_messages_name_the_source_once() -> None:
    source = "the token_refresher result"
    with pytest.raises(TypeError) as info:
        normalize_token(AccessToken("tok", [1]), EPOCH, source=source)  # type: ignore[arg-type]
    assert str(info.value).startswith("the expires_on of the token_refresher result must be a number")
    assert "the the" not in str(info.value)
    with pytest.raises(TypeError) as info2:
        normalize_token(AccessToken(7, 1), EPOCH, source=source)  # type: ignore[arg-type]
    assert str(info2.value) == "the token of the token_refresher result must be a str, not int."


def test_a_bad_timestamp_is_not_quoted_and_not_chained() -> None:
    with pytest.raises(ValueError) as info:
        normalize_token(AccessToken("tok", f"2026-13-02T20:16:31Z {SECRET}"), EPOCH)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


def test_a_token_that_never_expires_is_published_far_in_the_future() -> None:
    snapshot = TokenSnapshot.build(SECRET, math.inf, math.inf)
    assert snapshot.access_token.expires_on == NEVER_EXPIRES_PUBLIC
    assert snapshot.access_token_info.expires_on == NEVER_EXPIRES_PUBLIC
    assert snapshot.access_token_info.refresh_on is None
    # The last second a datetime holds, so code that converts it does not overflow.
    assert datetime.fromtimestamp(NEVER_EXPIRES_PUBLIC, timezone.utc).year == 9999
    assert TokenSnapshot.empty().access_token.expires_on == 0


# --------------------------------------------------------------------------------------------------------
# Mistaken token strings
# --------------------------------------------------------------------------------------------------------

JWT_SECRET = make_jwt(EPOCH + 3600, skypeid="acs:mistaken")


@pytest.mark.parametrize(
    "text",
    [f"Bearer {JWT_SECRET}", f"bearer {JWT_SECRET}", f"BEARER\t{JWT_SECRET}", f"  Bearer   {SECRET}\n"],
    ids=["Bearer", "lower", "upper-tab", "opaque-with-spaces"],
)
@pytest.mark.parametrize("wrap", ["str", "AccessToken", "AccessTokenInfo"])
def test_a_bearer_prefix_is_refused_with_the_fix(text: str, wrap: str) -> None:
    value: object = {"str": text, "AccessToken": AccessToken(text, 1), "AccessTokenInfo": AccessTokenInfo(text, 1)}[
        wrap
    ]
    with pytest.raises(ValueError, match="without the prefix") as info:
        normalize_token(value, EPOCH)
    assert JWT_SECRET not in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "document",
    [
        {"token": JWT_SECRET, "expiresOn": ACS_TEXT},
        {"accessToken": {"token": JWT_SECRET, "expiresOn": ACS_TEXT}},
        {"identity": {"id": "8:acs:r_u"}, "accessToken": {"token": JWT_SECRET, "expiresOn": ACS_TEXT}},
        {"accessToken": JWT_SECRET},
    ],
    ids=["token", "nested-accessToken", "create-user-response", "accessToken-string"],
)
@pytest.mark.parametrize("indent", [None, 2])
def test_the_json_text_of_an_identity_response_is_refused_with_the_fix(
    document: dict[str, Any], indent: int | None
) -> None:
    with pytest.raises(ValueError, match="JSON text of a whole identity response: pass only its token field") as info:
        normalize_token(json.dumps(document, indent=indent), EPOCH, source="the token_refresher result")
    assert JWT_SECRET not in str(info.value)
    assert str(info.value).startswith("the token_refresher result is the JSON text")
    assert info.value.__context__ is None


@pytest.mark.usefixtures("fresh_opaque_notice")
@pytest.mark.parametrize("text", ['{"other": 1}', "{not json", "Bearer", "bearer-token-without-space"])
def test_lookalikes_stay_opaque_tokens(text: str) -> None:
    assert normalize_token(text, EPOCH).expires_on == EPOCH + OPAQUE_TOKEN_LIFETIME


# --------------------------------------------------------------------------------------------------------
# undecodable_lifetime (the credential's undecodable_token_expiry_interval)
# --------------------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_opaque_notice")
def test_undecodable_lifetime_replaces_the_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="azure.communication.common")
    assert normalize_token("opaque-a", EPOCH, undecodable_lifetime=30.5).expires_on == EPOCH + 30.5
    assert normalize_token("opaque-a", EPOCH).expires_on == EPOCH + OPAQUE_TOKEN_LIFETIME == EPOCH + 600
    # A JWT's own exp wins whatever the interval.
    assert normalize_token(make_jwt(EPOCH + 5), EPOCH, undecodable_lifetime=30).expires_on == EPOCH + 5
    notice = [r.getMessage() for r in caplog.records if "opaque" in r.getMessage()]
    assert notice == [
        "A token without a readable JWT 'exp' claim is treated as opaque and assumed valid for 30.5 seconds."
    ]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (math.inf, ValueError),
        (math.nan, ValueError),
        (10**400, ValueError),
        ("60", TypeError),
        (True, TypeError),
    ],
)
def test_undecodable_interval_must_be_positive_and_finite(value: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="undecodable_token_expiry_interval"):
        check_undecodable_interval(value)


def test_undecodable_interval_accepts_numbers() -> None:
    assert check_undecodable_interval(1) == 1.0
    assert check_undecodable_interval(0.25) == 0.25


@pytest.mark.usefixtures("fresh_opaque_notice")
def test_json_that_is_not_an_identity_response_stays_opaque() -> None:
    for text in ('["token", "x"]', '{"token": 5}', '{"accessToken": {"token": 5}}'):
        assert normalize_token(text, EPOCH).expires_on == EPOCH + OPAQUE_TOKEN_LIFETIME


def test_edge_numbers_and_types_of_the_reader_and_normaliser() -> None:
    with pytest.raises(ValueError, match="within float range"):
        normalize_token(AccessToken("tok", 10**400), EPOCH)
    with pytest.raises(TypeError, match="must be a str"):
        decode_jwt_header(7)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="found 2 segments"):
        decode_jwt_header("a.b")


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False).map(lambda x: round(x, 6)))
def test_any_acs_timestamp_the_library_writes_reads_back_through_an_access_token(seconds: float) -> None:
    from azure.communication.common._timestamps import format_timestamp

    parsed = normalize_token(AccessToken(SECRET, format_timestamp(seconds)), EPOCH)  # type: ignore[arg-type]
    assert parsed.expires_on == pytest.approx(seconds, abs=1e-6)


def _reference_expiry(raw: bytes) -> float | None:
    """The reader's rules written plainly: strict UTF-8, strict JSON, an object, a finite numeric exp."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    exp = value.get("exp")
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    try:
        number = float(exp)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
_json_values = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["exp", "o", "x"]), children),
    max_leaves=6,
)


@given(
    claims=st.dictionaries(st.sampled_from(["exp", "iat", "o", '"exp"', "e\\"]), _json_values, max_size=4),
    layout=st.sampled_from([{}, {"indent": 1}, {"separators": (",", ":")}]),
    damage=st.sampled_from(["", ",", " ", "\ufeff", ",}", "\x00"]),
    where=st.sampled_from(["end", "start", "before-last"]),
)
def test_the_reader_agrees_with_the_plain_rules_on_generated_payloads(
    claims: dict[str, Any], layout: dict[str, Any], damage: str, where: str
) -> None:
    text = json.dumps(claims, **layout)  # NaN and Infinity appear here as json.dumps writes them
    if where == "end":
        text += damage
    elif where == "start":
        text = damage + text
    else:
        text = text[:-1] + damage + text[-1:]
    raw = text.encode("utf-8")
    token = f"{HEADER}.{b64url(raw)}.c2ln"
    assert jwt_expiry(token) == _reference_expiry(raw)


@pytest.mark.parametrize("quote", ['"', "'"])
def test_a_quoted_token_is_refused_with_the_fix(quote: str) -> None:
    with pytest.raises(ValueError, match="wrapped in quotes: pass the bare token string") as info:
        normalize_token(f"{quote}{JWT_SECRET}{quote}", EPOCH)
    assert JWT_SECRET not in str(info.value)

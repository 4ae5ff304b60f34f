"""Unit tests of the emulator's pure parts (verifier, validation, token issuer) and its safety net."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from acs_emulator import Emulator, _server
from acs_emulator._auth import MAX_CLOCK_SKEW, verify_hmac
from acs_emulator._errors import ApiError
from acs_emulator._store import StorageError
from acs_emulator._tokens import TokenIssuer
from acs_emulator._validation import (
    TeamsExchangeRequest,
    check_identity_id,
    parse_bearer,
    parse_create_request,
    parse_issue_request,
    token_expiry,
    unverified_claims,
)
from azure.communication.common._signing import content_hash, sign
from emulator_support import VERSION, send

KEY = b"unit-test-key-bytes"
NOW = 1_800_000_000.0
DATE = "Fri, 15 Jan 2027 08:00:00 GMT"  # == NOW


def _headers(target: str = "/identities?api-version=1", body: bytes = b"", date: str = DATE) -> dict[str, str]:
    signed = sign(method="POST", path_and_query=target, host="h:1", body_hash=content_hash(body), key=KEY, date=date)
    return {"Host": "h:1", **signed}


def test_verify_accepts_its_own_signature_and_the_window_edges() -> None:
    verify_hmac(method="POST", raw_target="/identities?api-version=1", headers=_headers(), body=b"", key=KEY, now=NOW)
    verify_hmac(
        method="post",
        raw_target="/identities?api-version=1",
        headers=_headers(),
        body=b"",
        key=KEY,
        now=NOW + MAX_CLOCK_SKEW,
    )
    with pytest.raises(ApiError, match="15 minutes"):
        verify_hmac(
            method="POST",
            raw_target="/identities?api-version=1",
            headers=_headers(),
            body=b"",
            key=KEY,
            now=NOW - MAX_CLOCK_SKEW - 1,
        )


def test_verify_reads_a_minus_zero_zone_as_utc() -> None:
    date = "Fri, 15 Jan 2027 08:00:00 -0000"
    verify_hmac(method="POST", raw_target="/x", headers=_headers("/x", date=date), body=b"", key=KEY, now=NOW)


def test_verify_ignores_parameters_without_a_value() -> None:
    headers = _headers()
    headers["Authorization"] = headers["Authorization"].replace("&", "&junk&")
    verify_hmac(method="POST", raw_target="/identities?api-version=1", headers=headers, body=b"", key=KEY, now=NOW)


def test_verify_names_every_missing_header() -> None:
    with pytest.raises(ApiError) as info:
        verify_hmac(method="GET", raw_target="/", headers={}, body=b"", key=KEY, now=NOW)
    assert info.value.status == 401
    for name in ("Authorization", "x-ms-date", "Host", "x-ms-content-sha256"):
        assert name in info.value.message


def test_validation_messages_name_the_types() -> None:
    cases = [
        (b'{"createTokenWithScopes": {}}', "not object"),
        (b'{"createTokenWithScopes": [null]}', "not null"),
        (b'{"createTokenWithScopes": [["chat"]]}', "not array"),
        (b'{"createTokenWithScopes": [1.5]}', "not number"),
        (b'{"createTokenWithScopes": ["chat"], "expiresInMinutes": "60"}', "not string"),
        (b'{"createTokenWithScopes": ["chat"], "expiresInMinutes": false}', "not boolean"),
    ]
    for body, expected in cases:
        with pytest.raises(ApiError, match=expected):
            parse_create_request(body, allow_short=False)


def test_valid_bodies_parse() -> None:
    created = parse_create_request(b"", allow_short=False)
    assert (created.scopes, created.lifetime, created.custom_id) == ((), 86400, None)
    created = parse_create_request(
        b'{"createTokenWithScopes": ["chat.join", "voip.join"], "expiresInMinutes": null, "customId": "c"}',
        allow_short=False,
    )
    assert (created.scopes, created.lifetime, created.custom_id) == (("chat.join", "voip.join"), 86400, "c")
    issued = parse_issue_request(b'{"scopes": ["chat.join.limited"], "expiresInMinutes": 1440}', allow_short=False)
    assert (issued.scopes, issued.lifetime) == (("chat.join.limited",), 86400)


def test_teams_request_repr_hides_the_token() -> None:
    request = TeamsExchangeRequest(token="eyJsecret.eyJsecret.sig", app_id="a", user_id="u")
    assert "eyJsecret" not in repr(request)
    assert "a" in repr(request)


def test_identity_ids_and_bearer_headers() -> None:
    assert check_identity_id("8:acs:r_u") == "8:acs:r_u"
    for bad in ("8:acs:a b", "8:acs:a\\b", "acs:x", "8:acs:\n"):
        with pytest.raises(ApiError):
            check_identity_id(bad)
    assert parse_bearer("bearer  abc ") == "abc"
    with pytest.raises(ApiError):
        parse_bearer("Basic abc")


def test_issuer_with_a_given_key_and_a_full_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from acs_emulator import _tokens

    key = rsa.generate_private_key(65537, 2048)
    issuer = TokenIssuer("r", key=key)
    monkeypatch.setattr(_tokens, "_CACHE_LIMIT", 2)
    tokens = [issuer.issue(skype_id=f"acs:r_{n}", scopes=["chat"], iat=1, exp=2) for n in range(3)]
    assert len(issuer._cache) == 1  # cleared when full, then the newest added
    claims = jwt.decode(tokens[2], key.public_key(), algorithms=["RS256"], options={"verify_exp": False})
    assert claims["skypeid"] == "acs:r_2"
    assert issuer.issue(skype_id="acs:r_0", scopes=["chat"], iat=1, exp=2) == tokens[0]  # deterministic


def test_tokens_are_byte_for_byte_what_pyjwt_encodes_sync_and_async() -> None:
    # The issuer builds the JWS itself (only the RSA operation goes to a signing thread): the result must
    # stay exactly PyJWT's RS256 encoding of the same claims and kid, whichever path signed it.
    key = rsa.generate_private_key(65537, 2048)
    issuer = TokenIssuer("res", key=key)
    claims = {
        "skypeid": "acs:res_1",
        "scp": 1792,
        "csi": "1000",
        "exp": 5000,
        "acsScope": "chat,voip",
        "resourceId": "res",
        "resourceLocation": "unitedstates",
        "iat": 1000,
    }
    expected = jwt.encode(claims, key, algorithm="RS256", headers={"kid": issuer.kid})
    assert issuer.issue(skype_id="acs:res_1", scopes=["chat", "voip"], iat=1000, exp=5000) == expected
    other = TokenIssuer("res", key=key)  # no cache to answer from
    signed = asyncio.run(other.issue_async(skype_id="acs:res_1", scopes=["chat", "voip"], iat=1000, exp=5000))
    assert signed == expected
    assert jwt.get_unverified_header(signed) == {"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}


def test_an_unexpected_exception_is_a_logged_400(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("secret-looking detail")

    with Emulator() as emu:
        assert emu._issuer is not None
        monkeypatch.setattr(emu._issuer, "issue_async", broken)
        with caplog.at_level(logging.ERROR, logger="acs_emulator"):
            reply = send(
                emu.port,
                "POST",
                f"/identities?api-version={VERSION}",
                {"createTokenWithScopes": ["chat"]},
                key=emu.access_key,
            )
        assert (reply.status, reply.code) == (400, "BadRequest")
        assert emu.unexpected_errors == 1
    records = [r for r in caplog.records if r.name == "acs_emulator"]
    assert [r.getMessage() for r in records] == ["Unexpected RuntimeError while handling POST /identities"]


def test_a_database_that_cannot_be_opened_fails_start(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "x.db"
    emu = Emulator(database=path)
    with pytest.raises(StorageError, match="its folder does not exist") as raised:
        emu.start()
    assert str(path) in str(raised.value)
    with pytest.raises(RuntimeError):
        emu.endpoint  # noqa: B018


def test_a_failure_after_opening_the_database_closes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []
    original = _server.StoreWorker.close

    def tracking_close(self: _server.StoreWorker) -> None:
        closed.append(True)
        original(self)

    def failing_issuer(*args: object, **kwargs: object) -> TokenIssuer:
        raise MemoryError

    monkeypatch.setattr(_server.StoreWorker, "close", tracking_close)
    monkeypatch.setattr(_server, "TokenIssuer", failing_issuer)
    with pytest.raises(MemoryError):
        Emulator().start()
    assert closed == [True]


# --- exchange tokens are read by PyJWT (signature not verified) ---------------------------------

_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
_CLAIMS = {"tid": _TENANT, "oid": "0b3f2b39-3c21-4f3c-9a4f-6f0b1b2c3d4e", "exp": NOW + 3600, "n": "~~~???>>>"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(header: bytes, payload: bytes) -> str:
    return ".".join([_b64url(header), _b64url(payload), _b64url(b"signature-bytes!")])


_HEADER = json.dumps({"alg": "HS256", "typ": "JWT"}).encode()
_PAYLOAD = json.dumps(_CLAIMS).encode()
_STANDARD_B64 = base64.b64encode(_PAYLOAD).decode().rstrip("=")
assert "+" in _STANDARD_B64 or "/" in _STANDARD_B64  # so the case below really is outside base64url

EXCHANGE_TOKENS = {
    "plain": _segments(_HEADER, _PAYLOAD),
    # Refused by PyJWT's header rules, as by the service's .NET reader.
    "header kid not a string": _segments(b'{"alg":"HS256","kid":5}', _PAYLOAD),
    "header b64 false": _segments(b'{"alg":"HS256","b64":false}', _PAYLOAD),
    "padded segments": ".".join(
        s + "=" * (-len(s) % 4) for s in (_b64url(_HEADER), _b64url(_PAYLOAD), _b64url(b"sig"))
    ),
    "standard base64 payload": ".".join([_b64url(_HEADER), _STANDARD_B64, _b64url(b"sig")]),
    "four segments": _segments(_HEADER, _PAYLOAD) + ".more",
    "header not an object": _segments(b"[1]", _PAYLOAD),
    "payload not an object": _segments(_HEADER, b'"text"'),
    "payload nested too deeply": _segments(_HEADER, b"[" * 5000 + b"]" * 5000),
    "opaque": "opaque-token",
}


def _pyjwt_reads(token: str) -> dict[str, Any] | None:
    try:
        jwt.get_unverified_header(token)
        claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except (jwt.InvalidTokenError, ValueError, RecursionError):
        return None
    return claims


READ = {"plain", "padded segments"}


@pytest.mark.parametrize("name", EXCHANGE_TOKENS.keys())
def test_exchange_tokens_are_accepted_exactly_when_pyjwt_reads_them(name: str) -> None:
    token = EXCHANGE_TOKENS[name]
    expected = _pyjwt_reads(token)
    assert (expected is not None) == (name in READ)
    if expected is None:
        with pytest.raises(ApiError) as raised:
            unverified_claims(token, "Entra ID")
        assert (raised.value.status, raised.value.code) == (401, "InvalidAccessToken")
        assert raised.value.message == "Provided access token is not valid."
        assert raised.value.innererror == {
            "code": "InvalidAccessToken",
            "message": "The Entra ID token is not a valid JWT.",
        }
    else:
        assert unverified_claims(token, "Entra ID") == expected == _CLAIMS


def test_the_emulator_imports_no_private_library_module() -> None:
    """The verifier is the independent check of the library's signer: the emulator uses public API only."""
    import acs_emulator

    package = Path(acs_emulator.__file__).parent
    identity_modules = [
        "__init__",
        "_app",
        "_auth",
        "_cli",
        "_errors",
        "_server",
        "_store",
        "_timestamps",
        "_tls",
        "_tokens",
        "_validation",
        "_versions",
    ]
    offenders = [
        f"{path.name}: {line.strip()}"
        for path in (package / f"{name}.py" for name in identity_modules)
        for line in path.read_text(encoding="utf-8").splitlines()
        if re.match(r"\s*(from|import)\s+azure\.communication\.common(\.aio)?\._", line)
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("exp", "expected"),
    [(NOW + 1, NOW + 1), (10**400, math.inf), (float("inf"), math.inf), (None, None)],
    ids=["soon", "beyond-float-range", "infinity", "absent"],
)
def test_token_expiry_reads_far_future_values_without_overflowing(exp: Any, expected: float | None) -> None:
    claims = {} if exp is None else {"exp": exp}
    assert token_expiry(claims, "Teams", NOW) == expected


@pytest.mark.parametrize(
    ("exp", "message"),
    [
        (-(10**400), "The Teams token has expired."),
        (NOW, "The Teams token has expired."),
        (float("nan"), "The Teams token's exp claim is not a number."),
        ("soon", "The Teams token's exp claim is not a number."),
        (True, "The Teams token's exp claim is not a number."),
    ],
    ids=["beyond-float-range-past", "now", "nan", "text", "bool"],
)
def test_token_expiry_refuses_past_and_non_numbers_with_a_401(exp: Any, message: str) -> None:
    with pytest.raises(ApiError) as raised:
        token_expiry({"exp": exp}, "Teams", NOW)
    assert (raised.value.status, raised.value.code) == (401, "InvalidAccessToken")
    assert raised.value.innererror == {"code": "InvalidAccessToken", "message": message}

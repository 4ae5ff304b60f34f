"""Tokens: RS256 with a published JWKS, the service's claims, lifetimes, short tokens and revocation."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator

import jwt
import pytest

from acs_emulator import Emulator
from acs_emulator._timestamps import format_service_time
from azure.communication.common._timestamps import parse_timestamp
from emulator_support import JWKS, PREVIEW, VERSION, FakeClock, entra_jwt, path_id, send

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OBJECT = "0b3f2b39-3c21-4f3c-9a4f-6f0b1b2c3d4e"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked(clock: FakeClock) -> Iterator[Emulator]:
    """An emulator on a fake clock (requests must be signed with that clock's time)."""
    with Emulator(_clock=clock) as emu:
        yield emu


@pytest.fixture
def short(clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(allow_short_tokens=True, _clock=clock) as emu:
        yield emu


def _create(emu: Emulator, clock: FakeClock, body: dict[str, object]) -> dict[str, object]:
    reply = send(emu.port, "POST", f"/identities?api-version={VERSION}", body, key=emu.access_key, now=clock())
    assert reply.status == 201, reply.body
    return reply.json()  # type: ignore[no-any-return]


def test_jwks_validates_an_issued_token(emulator: Emulator) -> None:
    reply = send(
        emulator.port,
        "POST",
        f"/identities?api-version={VERSION}",
        {"createTokenWithScopes": ["chat"]},
        key=emulator.access_key,
    )
    token = reply.json()["accessToken"]["token"]
    # PyJWT fetches the JWKS over HTTP, picks the key by kid and checks the RS256 signature and expiry.
    signing_key = jwt.PyJWKClient(emulator.jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"])
    assert claims["skypeid"] == reply.json()["identity"]["id"][2:]
    assert jwt.get_unverified_header(token)["kid"] == signing_key.key_id
    # Another emulator's key does not validate it.
    with Emulator() as other:
        other_key = jwt.PyJWKClient(other.jwks_url).get_jwk_set().keys[0]
        with pytest.raises(jwt.InvalidSignatureError):
            jwt.decode(token, other_key.key, algorithms=["RS256"])


def test_jwks_document_shape(emulator: Emulator) -> None:
    reply = send(emulator.port, "GET", JWKS, unsigned=True)
    assert reply.status == 200
    (key,) = reply.json()["keys"]
    assert {key["kty"], key["alg"], key["use"]} == {"RSA", "RS256", "sig"}
    assert set(key) == {"kty", "n", "e", "kid", "alg", "use"}
    assert emulator.jwks_url == f"{emulator.endpoint}/.well-known/jwks.json"


def test_token_claims_and_expiry_follow_the_clock(clocked: Emulator, clock: FakeClock) -> None:
    created = _create(clocked, clock, {"createTokenWithScopes": ["chat", "voip"], "expiresInMinutes": 90})
    raw_id = created["identity"]["id"]  # type: ignore[index]
    access = created["accessToken"]  # type: ignore[index]
    header = jwt.get_unverified_header(access["token"])
    claims = jwt.decode(access["token"], options={"verify_signature": False})
    iat = int(clock())
    assert header["alg"] == "RS256"
    assert header["kid"]
    assert claims == {
        "skypeid": raw_id[2:],
        "scp": 1792,
        "csi": str(iat),
        "iat": iat,
        "exp": iat + 90 * 60,
        "acsScope": "chat,voip",
        "resourceId": clocked.resource_id,
        "resourceLocation": "unitedstates",
    }
    assert access["expiresOn"] == format_service_time(iat + 90 * 60)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00", access["expiresOn"])
    assert raw_id.startswith(f"8:acs:{clocked.resource_id}_")

    issued = send(
        clocked.port,
        "POST",
        f"/identities/{path_id(raw_id)}/:issueAccessToken?api-version={VERSION}",
        {"scopes": ["voip"]},
        key=clocked.access_key,
        now=clock(),
    ).json()
    assert parse_timestamp(issued["expiresOn"]) == iat + 24 * 3600  # the default lifetime
    fetched = send(
        clocked.port, "GET", f"/identities/{path_id(raw_id)}?api-version={PREVIEW}", key=clocked.access_key, now=clock()
    ).json()
    assert fetched["lastTokenIssuedAt"] == format_service_time(clock())


def test_identical_requests_in_one_second_share_a_token(clocked: Emulator, clock: FakeClock) -> None:
    raw_id = _create(clocked, clock, {})["identity"]["id"]  # type: ignore[index]
    target = f"/identities/{path_id(raw_id)}/:issueAccessToken?api-version={VERSION}"

    def issue() -> str:
        reply = send(clocked.port, "POST", target, {"scopes": ["chat"]}, key=clocked.access_key, now=clock())
        return str(reply.json()["token"])

    first, second = issue(), issue()
    clock.advance(1)
    third = issue()
    assert first == second
    assert third != first
    assert jwt.decode(third, options={"verify_signature": False})["iat"] == int(clock())


def test_the_server_clock_decides_staleness(clocked: Emulator, clock: FakeClock) -> None:
    signed_at = clock()
    clock.advance(15 * 60 - 1)
    ok = send(clocked.port, "POST", f"/identities?api-version={VERSION}", {}, key=clocked.access_key, now=signed_at)
    assert ok.status == 201
    clock.advance(2)
    stale = send(clocked.port, "POST", f"/identities?api-version={VERSION}", {}, key=clocked.access_key, now=signed_at)
    assert (stale.status, stale.code) == (401, "Denied")


def test_short_tokens_only_with_the_switch(short: Emulator, clock: FakeClock) -> None:
    seconds = _create(short, clock, {"createTokenWithScopes": ["chat"], "expiresInSeconds": 5})
    claims = jwt.decode(seconds["accessToken"]["token"], options={"verify_signature": False})  # type: ignore[index]
    assert claims["exp"] - claims["iat"] == 5
    minutes = _create(short, clock, {"createTokenWithScopes": ["chat"], "expiresInMinutes": 1})
    claims = jwt.decode(minutes["accessToken"]["token"], options={"verify_signature": False})  # type: ignore[index]
    assert claims["exp"] - claims["iat"] == 60
    for body, rule in [
        ({"createTokenWithScopes": ["chat"], "expiresInSeconds": 0}, "within the [1, 86400] interval"),
        ({"createTokenWithScopes": ["chat"], "expiresInSeconds": 86401}, "within the [1, 86400] interval"),
        ({"createTokenWithScopes": ["chat"], "expiresInSeconds": 5, "expiresInMinutes": 60}, "not both"),
        ({"createTokenWithScopes": ["chat"], "expiresInSeconds": "5"}, "integer"),
        ({"createTokenWithScopes": ["chat"], "expiresInMinutes": 0}, "within the [1, 1440] interval"),
    ]:
        reply = send(short.port, "POST", f"/identities?api-version={VERSION}", body, key=short.access_key, now=clock())
        assert reply.status == 400
        assert rule in reply.json()["error"]["message"]


def test_revocation_applies_to_tokens_issued_until_then(clocked: Emulator, clock: FakeClock) -> None:
    created = _create(clocked, clock, {"createTokenWithScopes": ["chat"]})
    raw_id = created["identity"]["id"]  # type: ignore[index]
    before = created["accessToken"]["token"]  # type: ignore[index]
    assert not clocked.is_token_revoked(before)
    clock.advance(5)
    revoke = f"/identities/{path_id(raw_id)}/:revokeAccessTokens?api-version={VERSION}"
    assert send(clocked.port, "POST", revoke, key=clocked.access_key, now=clock()).status == 204
    assert clocked.is_token_revoked(before)
    clock.advance(1)
    after = send(
        clocked.port,
        "POST",
        f"/identities/{path_id(raw_id)}/:issueAccessToken?api-version={VERSION}",
        {"scopes": ["chat"]},
        key=clocked.access_key,
        now=clock(),
    ).json()["token"]
    assert not clocked.is_token_revoked(after)
    with pytest.raises(ValueError, match="not issued by this emulator"):
        clocked.is_token_revoked(entra_jwt(skypeid="acs:x"))


def test_teams_exchange_lifetime(clocked: Emulator, clock: FakeClock) -> None:
    def exchange(**claims: object) -> dict[str, str]:
        token = entra_jwt(appid="app", oid="oid", **claims)
        reply = send(
            clocked.port,
            "POST",
            f"/teamsUser/:exchangeAccessToken?api-version={VERSION}",
            {"token": token, "appId": "app", "userId": "oid"},
            key=clocked.access_key,
            now=clock(),
        )
        assert reply.status == 200, reply.body
        return reply.json()  # type: ignore[no-any-return]

    now = int(clock())
    assert parse_timestamp(exchange(exp=now + 600)["expiresOn"]) == now + 600
    assert parse_timestamp(exchange(exp=now + 48 * 3600)["expiresOn"]) == now + 24 * 3600  # capped
    assert parse_timestamp(exchange()["expiresOn"]) == now + 3600  # no exp: one hour
    teams = exchange(exp=now + 600)["token"]
    assert jwt.decode(teams, options={"verify_signature": False})["scp"] == 1024
    assert not clocked.is_token_revoked(teams)  # exchanged Teams tokens have no stored identity


def test_entra_exchange_ids_are_stable_per_user_and_tenant(clocked: Emulator, clock: FakeClock) -> None:
    def exchange(route: str, version: str, tid: str, oid: str) -> dict[str, object]:
        token = entra_jwt(tid=tid, oid=oid, exp=int(clock()) + 600)
        reply = send(
            clocked.port,
            "POST",
            f"/access/{route}/:exchangeAccessToken?api-version={version}",
            b"",
            unsigned=True,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert reply.status == 200, reply.body
        return reply.json()  # type: ignore[no-any-return]

    first = exchange("entra", PREVIEW, TENANT, OBJECT)
    again = exchange("entra", PREVIEW, TENANT, OBJECT.upper())
    other_tenant = exchange("entra", PREVIEW, OBJECT, OBJECT)
    assert first["identity"] == again["identity"]
    assert first["identity"] != other_tenant["identity"]
    expires = parse_timestamp(first["accessToken"]["expiresOn"])  # type: ignore[index]
    assert expires == int(clock()) + 600
    extension = exchange("teamsExtension", "2025-06-30", TENANT, OBJECT)
    assert extension["identity"] == {"id": f"8:acs:{clocked.resource_id}_{TENANT}_{OBJECT}"}
    # Entra users are stored identities; Teams extension users are not.
    stored = {row.id for row in clocked._identity_rows()}
    assert first["identity"]["id"] in stored  # type: ignore[index]
    assert extension["identity"]["id"] not in stored  # type: ignore[index]


def _unsigned_jwt(header: dict[str, object], claims: dict[str, object]) -> str:
    def b64url(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{b64url(header)}.{b64url(claims)}.c2lnbmF0dXJl"


def test_exchanges_read_tokens_with_pyjwt_and_cap_far_future_expiries(clocked: Emulator, clock: FakeClock) -> None:
    """Exchange tokens are read with PyJWT (signature not verified): a non-string ``kid``, which PyJWT
    refuses, is the service's 401; an ``exp`` beyond float range (once a 500, an unexpected OverflowError)
    is a token capped at 24 hours."""
    now = int(clock())
    kid_not_a_string = _unsigned_jwt({"alg": "HS256", "kid": 5}, {"tid": TENANT, "oid": OBJECT, "exp": now + 600})
    huge_exp = _unsigned_jwt({"alg": "HS256"}, {"tid": TENANT, "oid": OBJECT, "exp": 10**400})
    replies = {}
    for name, token in (("kid", kid_not_a_string), ("huge", huge_exp)):
        replies[name] = send(
            clocked.port,
            "POST",
            f"/access/entra/:exchangeAccessToken?api-version={PREVIEW}",
            b"",
            unsigned=True,
            headers={"Authorization": f"Bearer {token}"},
        )
    assert (replies["kid"].status, replies["kid"].code) == (401, "InvalidAccessToken"), replies["kid"].body
    assert replies["huge"].status == 200, replies["huge"].body
    assert parse_timestamp(replies["huge"].json()["accessToken"]["expiresOn"]) == now + 24 * 3600
    teams = send(
        clocked.port,
        "POST",
        f"/teamsUser/:exchangeAccessToken?api-version={VERSION}",
        {
            "token": _unsigned_jwt({"alg": "HS256", "kid": "k"}, {"appid": "app", "oid": "oid"}),
            "appId": "app",
            "userId": "oid",
        },
        key=clocked.access_key,
        now=clock(),
    )
    assert teams.status == 200, teams.body
    assert clocked.unexpected_errors == 0


def test_is_token_revoked_needs_a_running_emulator() -> None:
    emu = Emulator()
    with pytest.raises(RuntimeError, match="not running"):
        emu.is_token_revoked("x")


def test_tokens_expire_in_real_time_too(short: Emulator) -> None:
    # The real clock path (no fake): a token's exp is in the future by its lifetime.
    del short
    with Emulator(allow_short_tokens=True) as emu:
        reply = send(
            emu.port,
            "POST",
            f"/identities?api-version={VERSION}",
            {"createTokenWithScopes": ["voip"], "expiresInSeconds": 30},
            key=emu.access_key,
        )
        claims = jwt.decode(reply.json()["accessToken"]["token"], options={"verify_signature": False})
        assert 25 <= claims["exp"] - time.time() <= 31

"""Bad input of every kind gets the right 4xx JSON error and leaves the database unchanged.

Requests go through http.client so that the exact target, headers and body bytes are under the test's
control, signed with the library's signing core (or deliberately not).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from acs_emulator import MAX_BODY_SIZE, Emulator
from azure.communication.common._signing import format_date
from emulator_support import PREVIEW, VERSION, Reply, entra_jwt, path_id, send

WRONG_KEY = "d3Jvbmcta2V5LXdyb25nLWtleQ=="
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OBJECT = "0b3f2b39-3c21-4f3c-9a4f-6f0b1b2c3d4e"


@dataclass(frozen=True)
class Case:
    """One bad request: how to send it and what must come back."""

    name: str
    method: str
    target: str  # "{id}" is replaced by an existing identity's escaped id
    body: Any = b""
    status: int = 400
    code: str = "ValidationError"
    options: dict[str, Any] = field(default_factory=dict)


CREATE = f"/identities?api-version={VERSION}"
ISSUE = f"/identities/{{id}}/:issueAccessToken?api-version={VERSION}"
TEAMS = f"/teamsUser/:exchangeAccessToken?api-version={VERSION}"
ENTRA = f"/access/entra/:exchangeAccessToken?api-version={PREVIEW}"
EXTENSION = "/access/teamsExtension/:exchangeAccessToken?api-version=2025-06-30"
UNKNOWN_ID = path_id("8:acs:00000000-0000-0000-0000-000000000000_unknown")


def _later(seconds: float) -> dict[str, Any]:
    # Only the offset: the date is formatted when the request is sent, not at collection time.
    return {"date_offset": seconds}


def _bearer(token: str) -> dict[str, Any]:
    return {"unsigned": True, "headers": {"Authorization": f"Bearer {token}"}}


def _fresh() -> int:
    return int(time.time()) + 3600


CASES = [
    # -- authentication ---------------------------------------------------------------------------
    Case("no Authorization", "POST", CREATE, {}, 401, "Denied", {"drop": ["Authorization"]}),
    Case("no x-ms-date", "POST", CREATE, {}, 401, "Denied", {"drop": ["x-ms-date"]}),
    Case("no content hash", "POST", CREATE, {}, 401, "Denied", {"drop": ["x-ms-content-sha256"]}),
    Case("nothing signed", "POST", CREATE, {}, 401, "Denied", {"unsigned": True}),
    Case(
        "Bearer instead of HMAC",
        "POST",
        CREATE,
        {},
        401,
        "Denied",
        {"headers": {"Authorization": "Bearer abc"}},
    ),
    Case(
        "no Signature",
        "POST",
        CREATE,
        {},
        401,
        "Denied",
        {"headers": {"Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"}},
    ),
    Case(
        "other SignedHeaders",
        "POST",
        CREATE,
        {},
        401,
        "Denied",
        {"headers": {"Authorization": "HMAC-SHA256 SignedHeaders=host&Signature=abc="}},
    ),
    Case(
        "tampered signature",
        "POST",
        CREATE,
        {},
        401,
        "Denied",
        {
            "headers": {
                "Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256"
                "&Signature=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            }
        },
    ),
    Case(
        "non-ASCII signature",
        "POST",
        CREATE,
        {},
        401,
        "Denied",
        {"headers": {"Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=é"}},
    ),
    Case(
        "tampered body",
        "POST",
        CREATE,
        {"createTokenWithScopes": ["chat"]},
        401,
        "Denied",
        {"signed_body": b"{}"},
    ),
    Case(
        "hash of tampered body, signature of the original",
        "POST",
        CREATE,
        {"createTokenWithScopes": ["chat"]},
        401,
        "Denied",
        {"headers": {"x-ms-content-sha256": "RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="}},
    ),
    Case("stale date", "POST", CREATE, {}, 401, "Denied", _later(-16 * 60)),
    Case("future date", "POST", CREATE, {}, 401, "Denied", _later(16 * 60)),
    Case("garbage date", "POST", CREATE, {}, 401, "Denied", {"date": "yesterday-ish"}),
    Case("wrong key", "POST", CREATE, {}, 401, "Denied", {"key": WRONG_KEY}),
    Case("other host signed", "POST", CREATE, {}, 401, "Denied", {"signed_host": "evil.example"}),
    Case(
        "other target signed",
        "POST",
        "/identities?api-version=2023-10-01&x=1",
        {},
        401,
        "Denied",
        {"signed_target": CREATE},
    ),
    # -- api-version ------------------------------------------------------------------------------
    Case("no api-version", "POST", "/identities", {}, 400, "MissingApiVersionParameter"),
    Case("unknown api-version", "POST", "/identities?api-version=2099-01-01", {}, 400, "UnsupportedApiVersion"),
    Case(
        "api-version twice",
        "POST",
        f"/identities?api-version={VERSION}&api-version={VERSION}",
        {},
        400,
        "InvalidApiVersionParameter",
    ),
    # -- create bodies ----------------------------------------------------------------------------
    Case("malformed JSON", "POST", CREATE, b"{not json", code="BadRequest"),
    Case("array body", "POST", CREATE, b"[]", code="BadRequest"),
    Case("NaN", "POST", CREATE, b'{"expiresInMinutes": NaN}', code="BadRequest"),
    Case("invalid UTF-8", "POST", CREATE, b'{"customId": "\xff\xfe"}', code="BadRequest"),
    Case("UTF-16 body", "POST", CREATE, '{"customId": "u16"}'.encode("utf-16"), code="BadRequest"),
    Case("UTF-32 body", "POST", CREATE, '{"customId": "u32"}'.encode("utf-32-le"), code="BadRequest"),
    Case("JSON bomb (deep nesting)", "POST", CREATE, b"[" * 200_000 + b"]" * 200_000, code="BadRequest"),
    Case("deep object", "POST", CREATE, b'{"a":' * 100_000 + b"1" + b"}" * 100_000, code="BadRequest"),
    Case("huge integer", "POST", CREATE, b'{"expiresInMinutes": ' + b"9" * 5000 + b"}", code="BadRequest"),
    Case("scopes not a list", "POST", CREATE, {"createTokenWithScopes": "chat"}),
    Case("unknown scope", "POST", CREATE, {"createTokenWithScopes": ["chat", "admin"]}),
    Case("scope not a string", "POST", CREATE, {"createTokenWithScopes": [1]}),
    Case("59 minutes", "POST", CREATE, {"createTokenWithScopes": ["chat"], "expiresInMinutes": 59}),
    Case("1441 minutes", "POST", CREATE, {"createTokenWithScopes": ["chat"], "expiresInMinutes": 1441}),
    Case("minutes as text", "POST", CREATE, {"createTokenWithScopes": ["chat"], "expiresInMinutes": "60"}),
    Case("fractional minutes", "POST", CREATE, {"createTokenWithScopes": ["chat"], "expiresInMinutes": 60.5}),
    Case("boolean minutes", "POST", CREATE, {"createTokenWithScopes": ["chat"], "expiresInMinutes": True}),
    Case("seconds without the switch", "POST", CREATE, {"createTokenWithScopes": ["chat"], "expiresInSeconds": 5}),
    Case("blank customId", "POST", f"/identities?api-version={PREVIEW}", {"customId": "  "}),
    Case("numeric customId", "POST", f"/identities?api-version={PREVIEW}", {"customId": 7}),
    Case("over-long customId", "POST", f"/identities?api-version={PREVIEW}", {"customId": "x" * 600}),
    # -- issue bodies -----------------------------------------------------------------------------
    Case("issue without body", "POST", ISSUE, b"", code="BadRequest"),
    Case("issue without scopes", "POST", ISSUE, {"expiresInMinutes": 60}),
    Case("issue with empty scopes", "POST", ISSUE, {"scopes": []}),
    Case("issue with null scopes", "POST", ISSUE, {"scopes": None}),
    # -- unknown and strange ids ------------------------------------------------------------------
    Case(
        "issue for unknown id",
        "POST",
        f"/identities/{UNKNOWN_ID}/:issueAccessToken?api-version={VERSION}",
        {"scopes": ["chat"]},
        404,
        "IdentityNotFound",
    ),
    Case("get unknown id", "GET", f"/identities/{UNKNOWN_ID}?api-version={PREVIEW}", b"", 404, "IdentityNotFound"),
    Case(
        "delete unknown id", "DELETE", f"/identities/{UNKNOWN_ID}?api-version={VERSION}", b"", 404, "IdentityNotFound"
    ),
    Case(
        "revoke unknown id",
        "POST",
        f"/identities/{UNKNOWN_ID}/:revokeAccessTokens?api-version={VERSION}",
        b"",
        404,
        "IdentityNotFound",
    ),
    Case(
        "dot-dot id", "DELETE", f"/identities/..%2F..%2Fidentities?api-version={VERSION}", b"", 400, "ValidationError"
    ),
    Case("dot-dot segments", "DELETE", f"/identities/../identities/x?api-version={VERSION}", b"", 404, "NotFound"),
    Case("quoted id", "DELETE", f"/identities/%228:acs:x%22?api-version={VERSION}", b"", 400, "ValidationError"),
    Case("quote in id", "DELETE", f"/identities/8:acs:x'y?api-version={VERSION}", b"", 400, "ValidationError"),
    Case("NUL in id", "DELETE", f"/identities/8:acs:x%00y?api-version={VERSION}", b"", 400, "ValidationError"),
    Case("slash in id", "DELETE", f"/identities/8:acs:x%2Fy?api-version={VERSION}", b"", 400, "ValidationError"),
    Case(
        "very long id", "DELETE", f"/identities/8:acs:{'a' * 4000}?api-version={VERSION}", b"", 400, "ValidationError"
    ),
    Case(
        "very long well-formed-looking id",
        "DELETE",
        f"/identities/8:acs:{'a' * 400}?api-version={VERSION}",
        b"",
        404,
        "IdentityNotFound",
    ),
    Case(
        "percent-encoded unicode id",
        "DELETE",
        f"/identities/8%3Aacs%3A%C3%A9?api-version={VERSION}",
        b"",
        404,
        "IdentityNotFound",
    ),
    Case(
        "bidi control in id",
        "DELETE",
        f"/identities/8%3Aacs%3A%E2%80%AE?api-version={VERSION}",
        b"",
        400,
        "ValidationError",
    ),
    Case("not an ACS id", "DELETE", f"/identities/8%3Aorgid%3Aabc?api-version={VERSION}", b"", 400, "ValidationError"),
    # -- routes and size --------------------------------------------------------------------------
    Case("unknown route", "POST", f"/nothing?api-version={VERSION}", {}, 404, "NotFound"),
    Case("wrong method", "PUT", CREATE, {}, 405, "MethodNotAllowed"),
    Case("huge body", "POST", CREATE, b" " * (MAX_BODY_SIZE + 1), 413, "RequestEntityTooLarge"),
    # -- Teams exchange ---------------------------------------------------------------------------
    # The service reads the token first: a missing or bad one is a 401 before any other body check.
    Case("teams without token", "POST", TEAMS, {"appId": "a", "userId": "u"}, 401, "InvalidAccessToken"),
    Case("teams bad token, numeric appId", "POST", TEAMS, {"token": "x.y.z", "appId": 1}, 401, "InvalidAccessToken"),
    Case(
        "teams with numeric appId",
        "POST",
        TEAMS,
        {"token": entra_jwt(appid="a", oid="u", exp=_fresh()), "appId": 1, "userId": "u"},
    ),
    Case(
        "teams token not a JWT",
        "POST",
        TEAMS,
        {"token": "opaque", "appId": "a", "userId": "u"},
        401,
        "InvalidAccessToken",
    ),
    Case(
        "teams token expired",
        "POST",
        TEAMS,
        {"token": entra_jwt(appid="a", oid="u", exp=1_000_000), "appId": "a", "userId": "u"},
        401,
        "InvalidAccessToken",
    ),
    Case(
        "teams token with text exp",
        "POST",
        TEAMS,
        {"token": entra_jwt(appid="a", oid="u", exp="soon"), "appId": "a", "userId": "u"},
        401,
        "InvalidAccessToken",
    ),
    Case(
        "teams appId mismatch",
        "POST",
        TEAMS,
        {"token": entra_jwt(appid="a", oid="u", exp=_fresh()), "appId": "b", "userId": "u"},
        400,
        "ValidationError",
    ),
    Case(
        "teams userId mismatch",
        "POST",
        TEAMS,
        {"token": entra_jwt(appid="a", oid="u", exp=_fresh()), "appId": "a", "userId": "v"},
        400,
        "ValidationError",
    ),
    # -- Entra exchanges --------------------------------------------------------------------------
    Case("entra without bearer", "POST", ENTRA, {}, 401, "Denied", {"unsigned": True}),
    Case("entra with HMAC instead of bearer", "POST", ENTRA, {}, 401, "Denied"),
    Case("entra bearer without token", "POST", ENTRA, {}, 401, "Denied", _bearer(" ")),
    Case("entra bearer not a JWT", "POST", ENTRA, {}, 401, "InvalidAccessToken", _bearer("opaque-token")),
    Case(
        "entra token without oid",
        "POST",
        ENTRA,
        {},
        401,
        "InvalidAccessToken",
        _bearer(entra_jwt(tid=TENANT, exp=_fresh())),
    ),
    Case(
        "entra tid not a GUID",
        "POST",
        EXTENSION,
        {},
        401,
        "InvalidAccessToken",
        _bearer(entra_jwt(tid="x_y", oid=OBJECT, exp=_fresh())),
    ),
    Case(
        "entra token expired",
        "POST",
        ENTRA,
        {},
        401,
        "InvalidAccessToken",
        _bearer(entra_jwt(tid=TENANT, oid=OBJECT, exp=1_000_000)),
    ),
    Case(
        "entra old api-version",
        "POST",
        f"/access/entra/:exchangeAccessToken?api-version={VERSION}",
        {},
        400,
        "UnsupportedApiVersion",
        _bearer(entra_jwt(tid=TENANT, oid=OBJECT, exp=_fresh())),
    ),
    Case(
        "entra body not an object",
        "POST",
        ENTRA,
        b"[1]",
        400,
        "BadRequest",
        _bearer(entra_jwt(tid=TENANT, oid=OBJECT, exp=_fresh())),
    ),
]


@pytest.fixture(scope="module")
def seeded() -> Iterator[tuple[Emulator, str]]:
    """An emulator holding two identities (one with a custom id and a token)."""
    with Emulator() as emu:
        created = send(emu.port, "POST", CREATE, {}, key=emu.access_key)
        assert created.status == 201
        send(
            emu.port,
            "POST",
            f"/identities?api-version={PREVIEW}",
            {"customId": "bob", "createTokenWithScopes": ["chat"]},
            key=emu.access_key,
        )
        yield emu, created.json()["identity"]["id"]
        assert emu.unexpected_errors == 0


def _send_case(emu: Emulator, raw_id: str, case: Case) -> Reply:
    options = {"key": emu.access_key, **case.options}
    if "date_offset" in options:
        options["date"] = format_date(time.time() + options.pop("date_offset"))
    target = case.target.replace("{id}", path_id(raw_id))
    return send(emu.port, case.method, target, case.body, **options)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_request_is_a_4xx_json_error_and_changes_nothing(seeded: tuple[Emulator, str], case: Case) -> None:
    emu, raw_id = seeded
    before = emu._identity_rows()
    reply = _send_case(emu, raw_id, case)
    assert (reply.status, reply.code) == (case.status, case.code), reply.body[:300]
    assert reply.headers["Content-Type"].startswith("application/json")
    assert emu._identity_rows() == before
    if case.status == 401:
        # The expected signature and the key never leave the server.
        assert emu.access_key.encode() not in reply.body
        assert b"Signature=" not in reply.body
    # The emulator still serves a valid request afterwards.
    ok = send(emu.port, "GET", f"/identities/{path_id(raw_id)}?api-version={PREVIEW}", key=emu.access_key)
    assert ok.status == 200
    assert ok.json()["id"] == raw_id


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 20_000 + b"\r\n\r\n",
        b"POST /identities HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["bad-request-line", "long-target", "long-header", "two-content-lengths"],
)
def test_http_parser_errors_are_json_too(seeded: tuple[Emulator, str], raw: bytes) -> None:
    emu, _ = seeded
    before = emu._identity_rows()
    with socket.create_connection(("127.0.0.1", emu.port), timeout=10) as conn:
        conn.sendall(raw)
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert 400 <= status < 500
    assert b"application/json" in head.lower()
    payload = json.loads(body)
    assert set(payload["error"]) == {"code", "message"}
    assert emu._identity_rows() == before


def test_method_not_allowed_names_the_allowed_methods(seeded: tuple[Emulator, str]) -> None:
    emu, _ = seeded
    reply = send(emu.port, "PUT", CREATE, {}, key=emu.access_key)
    assert reply.status == 405
    assert "POST" in reply.headers["Allow"]


def test_a_replayed_request_inside_the_window_is_served(seeded: tuple[Emulator, str]) -> None:
    # There is no nonce (as in the service): the same signed request twice is a legitimate retry.
    emu, raw_id = seeded
    date = format_date(time.time())
    target = f"/identities/{path_id(raw_id)}/:issueAccessToken?api-version={VERSION}"
    body = {"scopes": ["chat"]}
    first = send(emu.port, "POST", target, body, key=emu.access_key, date=date)
    second = send(emu.port, "POST", target, body, key=emu.access_key, date=date)
    assert first.status == second.status == 200

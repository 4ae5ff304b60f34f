"""Explained 401s: for each common HMAC mistake, the error says which check failed, and ``innererror`` holds the
``stringToSign``, ``contentHash`` and ``host`` the emulator computed, which equal what this test builds
independently (plain ``hmac``/``hashlib``, nothing from the library) from the bytes it sent. Nothing secret
is in the response: not the key, not the signature the emulator expected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate

import pytest

from acs_emulator import Emulator
from acs_emulator._auth import verify_hmac
from acs_emulator._errors import ApiError

VERSION = "2023-10-01"
CREATE = f"/identities?api-version={VERSION}"


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def string_to_sign(method: str, target: str, date: str, host: str, body: bytes) -> str:
    return f"{method}\n{target}\n{date};{host};{b64_sha256(body)}"


def signature(key: str, text: str) -> str:
    digest = hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Mistake:
    """What the client signed, and how what it sent differs."""

    name: str
    check: str  # words the error message must contain
    verdict: str
    signed_body: bytes = b"{}"
    sent_body: bytes = b"{}"
    signed_target: str = CREATE
    signed_host: str | None = None  # None: the host that is sent
    date_offset: float = 0.0
    date_header: str = "x-ms-date"
    drop: tuple[str, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)


MISTAKES = [
    Mistake(
        "body re-serialised after hashing",
        "does not match the request body",
        "hmac: content hash",
        signed_body=b'{"createTokenWithScopes":["chat"]}',
        sent_body=b'{"createTokenWithScopes": ["chat"]}',
    ),
    Mistake(
        "Date instead of x-ms-date",
        "A Date header was sent",
        "hmac: missing header x-ms-date",
        date_header="Date",
    ),
    Mistake("clock 20 minutes behind", "behind the server time", "hmac: date", date_offset=-20 * 60),
    Mistake("clock 20 minutes ahead", "ahead of the server time", "hmac: date", date_offset=20 * 60),
    Mistake("non-default port not signed", "signature is not valid", "hmac: signature", signed_host="127.0.0.1"),
    Mistake(
        "proxy rewrote the path",
        "signature is not valid",
        "hmac: signature",
        signed_target=f"/acs/identities?api-version={VERSION}",
    ),
    Mistake(
        "content hash header missing",
        "Missing required header(s): x-ms-content-sha256",
        "hmac: missing header x-ms-content-sha256",
        drop=("x-ms-content-sha256",),
    ),
]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def _send(emu: Emulator, mistake: Mistake) -> tuple[int, dict[str, str], bytes, str]:
    host = f"127.0.0.1:{emu.port}"
    date = formatdate(time.time() + mistake.date_offset, usegmt=True)
    signed = string_to_sign("POST", mistake.signed_target, date, mistake.signed_host or host, mistake.signed_body)
    headers = {
        "Host": host,
        "Content-Type": "application/json",
        mistake.date_header: date,
        "x-ms-content-sha256": b64_sha256(mistake.signed_body),
        "Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="
        + signature(emu.access_key, signed),
        "Content-Length": str(len(mistake.sent_body)),
        **mistake.extra,
    }
    for name in mistake.drop:
        headers.pop(name)
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=30)
    try:
        conn.putrequest("POST", CREATE, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.endheaders(mistake.sent_body)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read(), date
    finally:
        conn.close()


def test_a_request_signed_independently_is_accepted(emu: Emulator) -> None:
    status, _, body, _ = _send(emu, Mistake("none", "", "hmac: ok"))
    assert status == 201, body


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_the_401_explains_the_mistake_with_what_the_emulator_computed(emu: Emulator, mistake: Mistake) -> None:
    before = emu._identity_rows()
    status, headers, raw, date = _send(emu, mistake)
    assert status == 401, raw
    error = json.loads(raw)["error"]
    assert error["code"] == "Denied"
    assert mistake.check in error["message"]
    inner = error["innererror"]
    host = f"127.0.0.1:{emu.port}"
    # What the emulator received: the target actually sent, the date sent (in whichever header), the Host
    # sent, and the hash of the bytes that arrived.
    expected = string_to_sign("POST", CREATE, date, host, mistake.sent_body)
    assert inner["stringToSign"] == expected
    assert inner["contentHash"] == b64_sha256(mistake.sent_body)
    assert inner["host"] == host
    assert {"code", "message"} <= set(inner) <= {"code", "message", "stringToSign", "contentHash", "host"}
    # Nothing secret: neither the key nor the signature the emulator expected for what it received.
    text = raw.decode("utf-8")
    assert emu.access_key not in text
    assert base64.b64decode(emu.access_key).hex() not in text
    assert signature(emu.access_key, expected) not in text
    assert "Signature=" not in text
    assert headers["Content-Type"].startswith("application/json")
    assert emu._identity_rows() == before


@pytest.mark.parametrize("mistake", MISTAKES, ids=[m.name for m in MISTAKES])
def test_the_verdict_names_the_failed_check(mistake: Mistake) -> None:
    """``ApiError.verdict`` becomes ``request["auth"]``, which the request log shows."""
    key = base64.b64encode(b"k" * 32).decode()
    now = 1_800_000_000.0
    host = "h:8443"
    date = formatdate(now + mistake.date_offset, usegmt=True)
    # The port mistake signs the host without its port.
    signed_host = host if mistake.signed_host is None else host.partition(":")[0]
    signed = string_to_sign("POST", mistake.signed_target, date, signed_host, mistake.signed_body)
    headers = {
        "Host": host,
        mistake.date_header: date,
        "x-ms-content-sha256": b64_sha256(mistake.signed_body),
        "Authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature="
        + signature(key, signed),
    }
    for name in mistake.drop:
        headers.pop(name)
    with pytest.raises(ApiError) as raised:
        verify_hmac(
            method="POST",
            raw_target=CREATE,
            headers=headers,
            body=mistake.sent_body,
            key=base64.b64decode(key),
            now=now,
        )
    assert raised.value.verdict == mistake.verdict
    assert raised.value.status == 401


def test_the_request_log_shows_each_verdict(emu: Emulator) -> None:
    """``request["auth"]`` reaches the control plane's request log: ``hmac: ok``, the failed check, ``none``."""
    import urllib.request

    _send(emu, Mistake("none", "", "hmac: ok"))
    for mistake in MISTAKES[:3]:
        _send(emu, mistake)
    with urllib.request.urlopen(f"{emu.endpoint}/.well-known/jwks.json") as reply:
        assert reply.status == 200
    with urllib.request.urlopen(f"{emu.endpoint}/_emulator/requests?limit=5") as reply:
        entries = json.loads(reply.read())["requests"]
    verdicts = [entry["auth"] for entry in entries[-5:]]
    assert verdicts == ["hmac: ok", *(m.verdict for m in MISTAKES[:3]), "none"]

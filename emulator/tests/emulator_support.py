"""Helpers for the emulator tests: a raw signed HTTP client (exact bytes on the wire) and a fake clock."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from azure.communication.common._signing import content_hash, decode_access_key, format_date, sign

JWKS = "/.well-known/jwks.json"
VERSION = "2023-10-01"
PREVIEW = "2025-03-02-preview"


class FakeClock:
    """A ``Callable[[], float]`` clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.25) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Reply:
    """One HTTP response."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def code(self) -> str:
        """The ``error.code`` of a JSON error response."""
        payload = self.json()
        assert set(payload) == {"error"}, payload
        assert {"code", "message"} <= set(payload["error"]) <= {"code", "message", "target", "innererror"}, payload
        return str(payload["error"]["code"])


def send(
    port: int,
    method: str,
    target: str,
    body: bytes | str | dict[str, Any] = b"",
    *,
    key: str | None = None,
    now: float | None = None,
    date: str | None = None,
    signed_body: bytes | None = None,
    signed_target: str | None = None,
    host: str | None = None,
    signed_host: str | None = None,
    headers: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
    unsigned: bool = False,
) -> Reply:
    """Send one request with http.client, signed with ``_signing`` over exactly ``target`` and ``body``.

    Args:
        port: the emulator's port.
        method: the HTTP method.
        target: the request target as sent (path and query, already percent-encoded).
        body: bytes, text or a dict (sent as JSON).
        key: the access key to sign with (None with ``unsigned``).
        now: the signing time (default: the real clock).
        date: an ``x-ms-date`` value to sign and send instead of ``now``'s.
        signed_body: sign these bytes instead of the body that is sent (tampering).
        signed_target: sign this target instead of the one that is sent (tampering).
        host: the ``Host`` header sent (default ``127.0.0.1:PORT``).
        signed_host: the host that is signed (default: the one sent).
        headers: extra headers (they replace the signed ones with the same name).
        drop: header names to leave out.
        unsigned: send no signature headers at all.
    """
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    host = host or f"127.0.0.1:{port}"
    sent: dict[str, str] = {"Host": host, "Content-Type": "application/json"}
    if not unsigned:
        assert key is not None
        sent.update(
            sign(
                method=method,
                path_and_query=signed_target or target,
                host=signed_host or host,
                body_hash=content_hash(body if signed_body is None else signed_body),
                key=decode_access_key(key),
                date=date or format_date(time.time() if now is None else now),
            )
        )
    sent.update(headers or {})
    for name in drop:
        sent.pop(name, None)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in sent.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def entra_jwt(**claims: Any) -> str:
    """An unsigned-looking Entra ID / Teams JWT with the given claims (HS256 with a dummy key)."""
    return jwt.encode(claims, "emulator-test-signing-key-32-bytes!", algorithm="HS256")


def path_id(raw_id: str) -> str:
    """A raw id as the official client puts it in a path (every reserved character escaped)."""
    from urllib.parse import quote

    return quote(raw_id, safe="")


def read_banner(process: subprocess.Popen[str]) -> str:
    """The start-up banner of an ``acs-emulator`` process, up to its ``Press Ctrl+C`` line."""
    assert process.stdout is not None
    banner = ""
    for line in process.stdout:
        banner += line
        if line.startswith("Press Ctrl+C"):
            break
    return banner

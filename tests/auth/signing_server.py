"""A real HTTP/1.1 server on 127.0.0.1 that verifies HMAC signatures from the raw bytes it receives.

It reads the request line, headers and body straight off the socket (no framework in between that could
normalise the target), recomputes the signature with the standard library (never the library's own
``_signing``, so a bug there cannot verify itself) from the raw request target, the received ``Host``
header and the received body bytes, and answers 200 (valid) or 401 (invalid) with a JSON report of
what it saw. Scripted answers (e.g. 503 with ``Retry-After: 0``) can be queued to exercise retries.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Seen:
    """One request as received, and whether its signature verified."""

    method: str
    target: str
    host: str
    headers: dict[str, str]
    body: bytes
    valid: bool
    status: int


class SigningServer:
    """The verifying server, run on its own event loop in a background thread."""

    def __init__(self, access_key: str) -> None:
        self.accepted_keys = [base64.b64decode(access_key)]
        self.seen: list[Seen] = []
        self.scripted: deque[tuple[int, dict[str, str]]] = deque()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="signing-server", daemon=True)
        self.port = 0

    def __enter__(self) -> SigningServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = future.result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self, access_key: str | None = None) -> None:
        self.seen.clear()
        self.scripted.clear()
        if access_key is not None:
            self.accepted_keys = [base64.b64decode(access_key)]

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        line = await reader.readline()
        if not line:
            return False
        method, target, _version = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        headers: dict[str, str] = {}
        while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await self._read_body(reader, headers)
        valid = self._verify(method, target, headers, body)
        if self.scripted:
            status, extra = self.scripted.popleft()
        else:
            status, extra = (200 if valid else 401), {}
        self.seen.append(Seen(method, target, headers.get("host", ""), headers, body, valid, status))
        report = json.dumps(
            {"valid": valid, "target": target, "host": headers.get("host"), "length": len(body)}
        ).encode()
        head = [f"HTTP/1.1 {status} X", "Content-Type: application/json", f"Content-Length: {len(report)}"]
        head += [f"{name}: {value}" for name, value in extra.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + report)
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    @staticmethod
    async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            return b"".join(chunks)
        return await reader.readexactly(int(headers.get("content-length", "0")))

    def _verify(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bool:
        # Computed here with the stdlib from the published scheme, not with the library's ``_signing``:
        # a bug in the signing core must not be able to verify itself.
        body_hash = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        if headers.get("x-ms-content-sha256") != body_hash:
            return False
        date, host = headers.get("x-ms-date", ""), headers.get("host", "")
        to_sign = f"{method.upper()}\n{target}\n{date};{host};{body_hash}".encode()
        received = headers.get("authorization")
        for key in self.accepted_keys:
            signature = base64.b64encode(hmac.new(key, to_sign, hashlib.sha256).digest()).decode("ascii")
            expected = f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
            if received == expected:
                return True
        return False

    def last(self) -> Seen:
        return self.seen[-1]


def report(payload: bytes | str) -> dict[str, Any]:
    """Parse the server's JSON answer."""
    result: dict[str, Any] = json.loads(payload)
    return result

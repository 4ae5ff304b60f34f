"""Raw HTTP/1.1 over a socket, for requests that client libraries would normalise or refuse to send.

Requests are built as bytes (request line, headers, body exactly as given) and signed with the library's
own signing core when a case needs a valid (or deliberately broken) signature.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from azure.communication.common._signing import content_hash, decode_access_key, format_date, sign


@dataclass
class RawResponse:
    """What came back on the socket: ``status`` None when the server closed without answering."""

    status: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    raw: bytes = b""

    def json(self) -> Any:
        return json.loads(self.body)


def signed_headers(
    access_key: str,
    method: str,
    target: str,
    host: str,
    body: bytes = b"",
    *,
    date: str | None = None,
) -> dict[str, str]:
    """The three signing headers for a request exactly as it will be sent."""
    return sign(
        method=method,
        path_and_query=target,
        host=host,
        body_hash=content_hash(body),
        key=decode_access_key(access_key),
        date=date if date is not None else format_date(time.time()),
    )


def build_request(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | dict[str, str],
    body: bytes = b"",
    *,
    content_length: int | None = None,
    version: str = "HTTP/1.1",
) -> bytes:
    """Serialise a request; ``Content-Length`` is the body's length unless given (or already a header)."""
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    names = {name.lower() for name, _ in items}
    if "content-length" not in names and "transfer-encoding" not in names:
        items.append(("Content-Length", str(len(body) if content_length is None else content_length)))
    if "connection" not in names:
        items.append(("Connection", "close"))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
    return head.encode("latin-1", "surrogateescape") + body


def send_raw(port: int, data: bytes, *, timeout: float = 10.0, shut_write: bool = False) -> RawResponse:
    """Send ``data`` to 127.0.0.1:``port`` and read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if shut_write:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered (and closed) before reading everything; read what it said
        chunks: list[bytes] = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return parse_response(b"".join(chunks))


def parse_response(raw: bytes) -> RawResponse:
    """Parse one HTTP/1.1 response (Content-Length or read-to-close bodies; chunked is decoded)."""
    if not raw:
        return RawResponse(None, raw=raw)
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(rest)
    elif "content-length" in headers:
        body = rest[: int(headers["content-length"])]
    else:
        body = rest
    return RawResponse(status, headers, body, raw)


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)

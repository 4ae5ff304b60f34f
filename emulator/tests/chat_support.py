"""Helpers of the Chat tests: raw HTTP(S) requests with Bearer tokens, signed Identity calls, the spec oracle.

``ChatSpec`` validates a response against the vendored Chat OpenAPI document of its api-version: the
schema the document declares for the operation and status (the error schema for statuses it does not
declare), with every ``$ref`` resolved through the vendored Common documents.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from acs_emulator import Emulator
from azure.communication.common._signing import content_hash, decode_access_key, format_date, sign

SPECS = Path(__file__).resolve().parent / "specs"
CHAT_VERSIONS = ("2024-03-07", "2025-03-15")
IDENTITY_VERSION = "2023-10-01"


@dataclass(frozen=True)
class Reply:
    """One HTTP response."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        """The ``error`` object of a JSON error response."""
        payload = self.json()
        assert set(payload) == {"error"}, payload
        return dict(payload["error"])


def _connection(endpoint: str, ca_bundle: str | None) -> http.client.HTTPConnection:
    parts = urlsplit(endpoint)
    assert parts.hostname is not None
    assert parts.port is not None
    if parts.scheme == "https":
        context = ssl.create_default_context(cafile=ca_bundle)
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=30, context=context)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)


def request(
    emu: Emulator,
    method: str,
    target: str,
    body: bytes | str | dict[str, Any] | list[Any] | None = None,
    *,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """Send one request to ``emu`` (HTTP or HTTPS) with ``Authorization: Bearer <token>`` when given."""
    if body is None:
        raw = b""
    elif isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode("utf-8")
    else:
        raw = json.dumps(body).encode("utf-8")
    sent = {"Content-Type": "application/json", "Content-Length": str(len(raw))}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent.update(headers or {})
    conn = _connection(emu.endpoint, emu.ca_bundle)
    try:
        conn.request(method, target, body=raw, headers=sent)
        response = conn.getresponse()
        return Reply(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


def signed(
    emu: Emulator, method: str, target: str, body: dict[str, Any] | None = None, *, now: float | None = None
) -> Reply:
    """An HMAC-signed request (the Identity API's authentication) to ``emu``, signed at ``now``."""
    raw = b"" if body is None else json.dumps(body).encode("utf-8")
    host = urlsplit(emu.endpoint).netloc
    headers = sign(
        method=method,
        path_and_query=target,
        host=host,
        body_hash=content_hash(raw),
        key=decode_access_key(emu.access_key),
        date=format_date(time.time() if now is None else now),
    )
    return request(emu, method, target, raw, headers=headers)


def create_user(emu: Emulator, *, now: float | None = None) -> str:
    """A new identity's raw id."""
    reply = signed(emu, "POST", f"/identities?api-version={IDENTITY_VERSION}", {}, now=now)
    assert reply.status == 201, reply.body
    return str(reply.json()["identity"]["id"])


def issue_token(
    emu: Emulator,
    user: str,
    scopes: tuple[str, ...] = ("chat",),
    seconds: int | None = None,
    *,
    now: float | None = None,
) -> str:
    """A user access token for ``user`` (``seconds`` needs an emulator with ``allow_short_tokens``)."""
    body: dict[str, Any] = {"scopes": list(scopes)}
    if seconds is not None:
        body["expiresInSeconds"] = seconds
    target = f"/identities/{quote(user, safe='')}/:issueAccessToken?api-version={IDENTITY_VERSION}"
    reply = signed(emu, "POST", target, body, now=now)
    assert reply.status == 200, reply.body
    return str(reply.json()["token"])


def revoke(emu: Emulator, user: str, *, now: float | None = None) -> None:
    """Revoke every token of ``user`` issued so far."""
    target = f"/identities/{quote(user, safe='')}/:revokeAccessTokens?api-version={IDENTITY_VERSION}"
    reply = signed(emu, "POST", target, now=now)
    assert reply.status == 204, reply.body


def delete_user(emu: Emulator, user: str, *, now: float | None = None) -> None:
    """Delete the identity ``user``."""
    reply = signed(emu, "DELETE", f"/identities/{quote(user, safe='')}?api-version={IDENTITY_VERSION}", now=now)
    assert reply.status == 204, reply.body


def thread_path(thread_id: str, suffix: str = "") -> str:
    """``/chat/threads/{id}{suffix}`` with the id escaped as the official client escapes it."""
    return f"/chat/threads/{quote(thread_id, safe='')}{suffix}"


def with_version(target: str, version: str) -> str:
    """``target`` with ``api-version`` appended."""
    return f"{target}{'&' if '?' in target else '?'}api-version={version}"


def identifier(raw_id: str) -> dict[str, Any]:
    """A ``CommunicationIdentifierModel`` as the official client sends it."""
    return {"rawId": raw_id, "communicationUser": {"id": raw_id}}


def _pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@dataclass
class ChatSpec:
    """The vendored Chat document of one api-version, as a response validator.

    Attributes:
        version: the api-version.
        checked: ``(operationId, status)`` pairs validated so far.
    """

    version: str
    checked: set[tuple[str, str]] = field(default_factory=set)

    def __post_init__(self) -> None:
        path = SPECS / "Chat" / "stable" / self.version / "communicationserviceschat.json"
        self._uri = path.as_uri()
        self._document = json.loads(path.read_text("utf-8"))

        def retrieve(uri: str) -> Resource[Any]:
            file = Path(urlsplit(uri).path)
            return Resource.from_contents(json.loads(file.read_text("utf-8")), default_specification=DRAFT4)

        self._registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]
        self.operations: dict[str, tuple[str, str]] = {
            op["operationId"]: (route, method)
            for route, ops in self._document["paths"].items()
            for method, op in ops.items()
            if method != "parameters"
        }

    def declared(self, operation: str) -> set[str]:
        """The statuses the document declares for ``operation``."""
        route, method = self.operations[operation]
        return set(self._document["paths"][route][method]["responses"])

    def validate(self, operation: str, reply: Reply) -> None:
        """Assert that ``reply`` is what the document allows for ``operation`` (body and ``Location``)."""
        route, method = self.operations[operation]
        status = str(reply.status)
        responses = self._document["paths"][route][method]["responses"]
        if status in responses:
            pointer = _pointer("paths", route, method, "responses", status, "schema")
            schema = responses[status].get("schema")
        else:
            assert reply.status >= 400, f"{operation} answered an undeclared {status}"
            pointer, schema = "definitions/CommunicationErrorResponse", {}
        if schema is None:
            assert reply.body == b"", f"{operation} {status} must have no body"
        else:
            validator = Draft4Validator({"$ref": f"{self._uri}#/{pointer}"}, registry=self._registry)
            errors = sorted(validator.iter_errors(reply.json()), key=str)
            assert not errors, f"{operation} {status}: {errors[0].message} at {list(errors[0].absolute_path)}"
        for header in responses.get(status, {}).get("headers", {}):
            assert header in reply.headers, f"{operation} {status} lacks the {header} header"
        self.checked.add((operation, status))

"""The control plane under ``/_emulator/``: health, the request log, state, reset and the chaos rules.

Routes (JSON; errors as ``{"error": {"code", "message"}}``):

- ``GET /_emulator/health``: ``{"status": "ok", "version", "resourceId"}``.
- ``GET /_emulator/requests[?since=ID&limit=N]``: ``{"requests": [{"id", "time", "method", "path", "status",
  "auth", "duration", "injected", "explanation"?}]}``, oldest first; ``explanation`` (for an error answer:
  the error's ``code``, ``message`` and, for a 401, ``innererror``) says why it failed.
- ``GET /_emulator/identities``: every identity with the decoded claims of its recently issued tokens.
- ``GET /_emulator/chat/threads``: the chat threads with their participants and messages.
- ``POST /_emulator/reset``: 204; deletes identities, tokens and chat data, empties the request log and puts the
  chaos rules back to the start-up ones; keeps the resource id, the access key and the token-signing key.
- ``GET``/``PUT /_emulator/chaos``: ``{"rules": [...]}`` (see :mod:`._chaos`).

Control-plane requests are not logged and not subject to chaos rules (nor is the JWKS). While the emulator is
bound to a loopback address they need no authentication; bound elsewhere they are HMAC-signed like the data
plane. Two browser guards hold either way: a state-changing request whose ``Origin`` names another site is
refused (so a web page cannot reset or poison the emulator), and, unauthenticated, a ``Host`` that is not
``localhost`` or an IP address is refused (a DNS-rebinding guard).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import jwt
from aiohttp import web
from aiohttp.typedefs import Handler

from ._auth import verify_hmac
from ._chaos import ChaosEngine, parse_rules, shorthand_rules
from ._errors import ApiError, error_body
from ._version import VERSION

if TYPE_CHECKING:
    from ._app import ServiceSettings
    from ._store import IdentityStore, StoreWorker
    from ._tokens import TokenIssuer

__all__ = ["CONTROL_PREFIX", "ControlPlane", "RequestLog", "TokenLog", "is_loopback_host"]

#: Where the control plane lives; nothing of the service's API starts with an underscore.
CONTROL_PREFIX: Final = "/_emulator"
#: Requests kept in the log: a few minutes of a busy test session, a few hundred kilobytes of memory.
REQUEST_LOG_SIZE: Final = 1000
#: Tokens whose claims are remembered for the inspector (the newest ones; each identity shows its own).
TOKEN_LOG_SIZE: Final = 500


def is_loopback_host(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine (``localhost``, 127/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload).encode("utf-8"), content_type="application/json")


class _InjectedResponse(web.Response):
    """An answer made by a chaos rule (the request log marks it ``injected``)."""


class RequestLog:
    """The most recent data-plane requests, in a bounded ring (thread-safe).

    Args:
        limit: how many entries are kept; older ones are dropped.
    """

    def __init__(self, limit: int = REQUEST_LOG_SIZE) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._next_id = 1
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        """Append one entry (its ``time`` in POSIX seconds), giving it the next ``id`` (ids survive :meth:`clear`)."""
        with self._lock:
            entry["id"] = self._next_id
            self._next_id += 1
            self._entries.append(entry)

    def entries(self, since: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """The entries with an id above ``since``, oldest first; with ``limit``, only the newest ``limit``."""
        with self._lock:
            selected = [entry for entry in self._entries if entry["id"] > since]
        if limit is not None:
            selected = selected[max(0, len(selected) - limit) :]
        # Times are kept as POSIX seconds and formatted here, off the request path.
        return [{**entry, "time": _timestamp(entry["time"])} for entry in selected]

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()


class TokenLog:
    """The most recently issued tokens, for showing their claims (never the tokens) in the inspector.

    Recording is one append on the issuing path; the claims are decoded only when someone looks.

    Args:
        limit: how many tokens are remembered.
    """

    def __init__(self, limit: int = TOKEN_LOG_SIZE) -> None:
        self._tokens: deque[str] = deque(maxlen=limit)

    def record(self, token: str) -> None:
        """Remember one issued token (the :class:`TokenIssuer` callback)."""
        self._tokens.append(token)

    def claims(self) -> list[dict[str, Any]]:
        """The decoded claims of the remembered tokens, oldest first."""
        decoded = []
        for token in list(self._tokens):
            try:
                # The emulator signed these itself moments ago: reading the claims needs no verification.
                decoded.append(jwt.decode(token, options={"verify_signature": False}))
            except jwt.InvalidTokenError:  # pragma: no cover - the issuer only records JWTs it made
                continue
        return decoded

    def clear(self) -> None:
        """Forget every token."""
        self._tokens.clear()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _rows(db: sqlite3.Connection, table: str) -> list[dict[str, Any]]:
    """A table's rows as JSON-ready dicts: camelCase keys, ``*_on``/``*_time`` seconds as timestamps."""
    cursor = db.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names come from sqlite_master
    names = [str(column[0]) for column in cursor.description]
    rows = []
    for row in cursor.fetchall():
        item: dict[str, Any] = {}
        for name, value in zip(names, row, strict=True):
            if isinstance(value, bytes):
                continue
            if isinstance(value, (int, float)) and name.endswith(("_on", "_time")):
                value = _timestamp(value)
            item[_camel(name)] = value
        rows.append(item)
    return rows


def read_chat(db: sqlite3.Connection) -> list[dict[str, Any]]:
    """The chat threads of a store, each with its ``participants`` and ``messages``.

    The Chat service's tables are read by their shape (``chat_threads`` rows with an ``id``; participant and
    message rows with a ``thread_id``), so this shows whatever columns they have; an emulator without Chat
    tables has no threads.
    """
    tables = {
        str(row[0]) for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'chat%'")
    }
    if "chat_threads" not in tables:
        return []
    threads = _rows(db, "chat_threads")
    related: dict[str, dict[Any, list[dict[str, Any]]]] = {}
    for name in ("participants", "messages"):
        grouped: dict[Any, list[dict[str, Any]]] = {}
        if f"chat_{name}" in tables:
            for row in _rows(db, f"chat_{name}"):
                grouped.setdefault(row.pop("threadId", None), []).append(row)
        related[name] = grouped
    for thread in threads:
        key = thread.get("id")
        thread["participants"] = related["participants"].get(key, [])
        thread["messages"] = sorted(related["messages"].get(key, []), key=lambda message: message.get("seq", 0))
    return threads


class ControlPlane:
    """The ``/_emulator/`` routes and the two middlewares that feed them (request log, chaos rules).

    Args:
        settings: the service settings (access key, resource id, the fault-injection shorthand).
        store: the database worker.
        issuer: the token issuer; its ``on_issue`` callback is set to record issued tokens.
        clock: the POSIX clock (a seam for tests).
        rng: the random source of the chaos rules' ``probability``.
        open_access: serve without authentication (only when bound to loopback).
        exempt: data-plane paths that chaos rules never touch (the JWKS).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        store: StoreWorker,
        issuer: TokenIssuer,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        open_access: bool,
        exempt: Collection[str] = (),
    ) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._open_access = open_access
        self._exempt = frozenset(exempt)
        self.requests = RequestLog()
        self.tokens = TokenLog()
        issuer.on_issue = self.tokens.record
        self.chaos = ChaosEngine(rng, shorthand_rules(settings.latency, settings.fail_rate, settings.retry_after))

    @property
    def open_access(self) -> bool:
        """Whether control-plane requests need no signature."""
        return self._open_access

    @property
    def resource_id(self) -> str:
        """The emulated resource's GUID."""
        return self._settings.resource_id

    # -- middlewares -------------------------------------------------------------------------------

    @staticmethod
    def is_control_path(path: str) -> bool:
        """Whether a request path belongs to the control plane."""
        return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")

    def log_middleware(self) -> Any:
        """The outermost middleware: records each data-plane request's outcome in :attr:`requests`."""

        @web.middleware
        async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
            path = request.path
            if self.is_control_path(path):
                return await handler(request)
            started = time.perf_counter()
            response = await handler(request)
            entry: dict[str, Any] = {
                "time": self._clock(),
                "method": request.method,
                "path": path,
                "status": response.status,
                "auth": request.get("auth"),
                "duration": round(time.perf_counter() - started, 6),
                "injected": isinstance(response, _InjectedResponse),
            }
            if response.status >= 400 and isinstance(response, web.Response):
                explanation = _explanation(response.body)
                if explanation is not None:
                    entry["explanation"] = explanation
            self.requests.add(entry)
            return response

        return request_log

    def chaos_middleware(self) -> Any:
        """Applies the chaos rules before the request reaches authentication and the handlers."""

        @web.middleware
        async def chaos(request: web.Request, handler: Handler) -> web.StreamResponse:
            path = request.path
            if path in self._exempt or self.is_control_path(path):
                return await handler(request)
            fault = self.chaos.decide(request.method, path)
            if fault is None:
                return await handler(request)
            if fault.latency > 0:
                await asyncio.sleep(fault.latency)
            if fault.status is None:
                return await handler(request)
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            return _InjectedResponse(
                status=fault.status,
                body=error_body(fault.code, fault.message),
                content_type="application/json",
                headers=headers,
            )

        return chaos

    # -- routes ------------------------------------------------------------------------------------

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Register the control-plane routes (and the inspector's) on the application's router."""
        from ._inspector import Inspector

        prefix = CONTROL_PREFIX
        router.add_get(f"{prefix}/health", self.health)
        router.add_get(f"{prefix}/requests", self.list_requests)
        router.add_get(f"{prefix}/identities", self.list_identities)
        router.add_get(f"{prefix}/chat/threads", self.list_chat_threads)
        router.add_post(f"{prefix}/reset", self.reset)
        router.add_get(f"{prefix}/chaos", self.get_chaos)
        router.add_put(f"{prefix}/chaos", self.put_chaos)
        Inspector(self).add_routes(router)

    async def authorize(self, request: web.Request) -> bytes:
        """Check a control-plane request (browser guards, then the signature when bound beyond loopback).

        Returns:
            The request body.

        Raises:
            ApiError: 403 for a cross-site or rebinding request, 401 for a bad signature.
        """
        body = await request.read()
        origin = request.headers.get("Origin")
        if request.method not in ("GET", "HEAD") and origin is not None and urlsplit(origin).netloc != request.host:
            raise ApiError(403, "Forbidden", "Cross-origin requests to the control plane are refused.")
        if self._open_access:
            host = urlsplit(f"//{request.host}").hostname or ""
            if not (is_loopback_host(host) or host.endswith(".localhost") or _is_ip(host)):
                raise ApiError(
                    403,
                    "Forbidden",
                    "The control plane answers requests addressed to localhost or an IP address only.",
                )
            return body
        verify_hmac(
            method=request.method,
            raw_target=request.raw_path,
            headers=request.headers,
            body=body,
            key=self._settings.key,
            now=self._clock(),
        )
        return body

    async def health(self, request: web.Request) -> web.Response:
        """``GET /_emulator/health``."""
        await self.authorize(request)
        return _json({"status": "ok", "version": VERSION, "resourceId": self.resource_id})

    async def list_requests(self, request: web.Request) -> web.Response:
        """``GET /_emulator/requests``: the request log, oldest first (``since``: after that id)."""
        await self.authorize(request)
        since = _query_int(request, "since", 0)
        limit = _query_int(request, "limit", REQUEST_LOG_SIZE)
        return _json({"requests": self.requests.entries(since=since, limit=limit)})

    async def identities(self) -> list[dict[str, Any]]:
        """Every stored identity with its recently issued tokens' claims and remaining life."""
        rows = await self._store.call(lambda store: store.rows())
        now = self._clock()
        tokens: dict[str, list[dict[str, Any]]] = {}
        for claims in self.tokens.claims():
            tokens.setdefault(f"8:{claims.get('skypeid', '')}", []).append(claims)
        result = []
        for row in sorted(rows, key=lambda record: (record.created_at, record.id)):
            entry: dict[str, Any] = {
                "id": row.id,
                "customId": row.custom_id,
                "createdAt": _timestamp(row.created_at),
                "lastTokenIssuedAt": None if row.last_token_issued_at is None else _timestamp(row.last_token_issued_at),
                "revokedAt": None if row.revoked_at is None else _timestamp(row.revoked_at),
                "tokens": [],
            }
            for claims in tokens.get(row.id, []):
                iat, exp = int(claims.get("iat", 0)), int(claims.get("exp", 0))
                entry["tokens"].append(
                    {
                        "scopes": [scope for scope in str(claims.get("acsScope", "")).split(",") if scope],
                        "issuedAt": _timestamp(iat),
                        "expiresOn": _timestamp(exp),
                        "remainingSeconds": max(0, int(exp - now)),
                        "revoked": row.revoked_at is not None and iat <= row.revoked_at,
                        "claims": claims,
                    }
                )
            result.append(entry)
        return result

    async def list_identities(self, request: web.Request) -> web.Response:
        """``GET /_emulator/identities``."""
        await self.authorize(request)
        return _json({"identities": await self.identities()})

    async def chat_threads(self) -> list[dict[str, Any]]:
        """The chat threads (none until the Chat service has stored some)."""
        # The store's connection is private to its worker thread; reading it there is the only safe place.
        return await self._store.call(lambda store: read_chat(_connection(store)))

    async def list_chat_threads(self, request: web.Request) -> web.Response:
        """``GET /_emulator/chat/threads``."""
        await self.authorize(request)
        return _json({"threads": await self.chat_threads()})

    async def reset(self, request: web.Request) -> web.Response:
        """``POST /_emulator/reset``: 204, back to a fresh emulator with the same resource id and keys."""
        await self.authorize(request)
        await self._store.call(lambda store: store.reset())
        self.requests.clear()
        self.tokens.clear()
        self.chaos.restore()
        return web.Response(status=204)

    async def get_chaos(self, request: web.Request) -> web.Response:
        """``GET /_emulator/chaos``: the rules, each ``times`` being what is left of it."""
        await self.authorize(request)
        return _json(self.chaos.to_json())

    async def put_chaos(self, request: web.Request) -> web.Response:
        """``PUT /_emulator/chaos``: replace the rules (``{"rules": []}`` clears them); answers the new set."""
        body = await self.authorize(request)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "InvalidChaosRule", 'The body must be JSON: {"rules": [...]}.') from None
        self.chaos.replace(parse_rules(payload))
        return _json(self.chaos.to_json())


def _connection(store: IdentityStore) -> sqlite3.Connection:
    return store._db


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _query_int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(400, "BadRequest", f"The {name} query parameter must be a whole number >= 0.")
    return int(raw)


def _explanation(body: bytes | Any) -> dict[str, Any] | None:
    if not isinstance(body, (bytes, bytearray)):
        return None
    try:
        error = json.loads(body).get("error")
    except (UnicodeDecodeError, ValueError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    explanation = {name: error[name] for name in ("code", "message", "innererror") if name in error}
    return explanation or None

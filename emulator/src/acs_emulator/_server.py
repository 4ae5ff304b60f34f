"""The in-process runner: :class:`Emulator` serves the app from a daemon thread or on the current loop."""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import math
import os
import random
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, TypeVar

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from ._app import ACCESS_LOG_FORMAT, DEFAULT_BODY_TIMEOUT, JWKS_PATH, IdentityService, ServiceSettings
from ._auth import decode_key
from ._control import CONTROL_PREFIX, is_loopback_host
from ._errors import HTTP_ERROR_CODES, error_body
from ._store import IdentityRecord, StoreWorker
from ._tls import LocalAuthority
from ._tokens import TokenIssuer

__all__ = ["Emulator"]

_E = TypeVar("_E", bound="Emulator")

access_logger = logging.getLogger("acs_emulator.access")
logger = logging.getLogger("acs_emulator")

#: How long a stopping server waits for in-flight requests before cancelling them.
_SHUTDOWN_TIMEOUT: Final = 2.0
#: A new connection must deliver its request line and headers within this many seconds.
DEFAULT_HEADER_TIMEOUT: Final = 10.0
#: An idle keep-alive connection is closed after this many seconds.
DEFAULT_KEEPALIVE_TIMEOUT: Final = 15.0
#: The environment variable that turns on ``loose`` (any api-version accepted).
LOOSE_ENV: Final = "ACS_EMULATOR_LOOSE"


#: asyncio accepts up to this many connections per loop pass.
_ACCEPT_BURST: Final = 32
#: The kernel's queue of connections waiting to be accepted.
_LISTEN_BACKLOG: Final = 512


def _default_max_connections() -> int:
    """Stay below the process's descriptor limit, so ``accept()`` never fails with EMFILE.

    asyncio accepts a burst per loop pass and a connection over the cap is closed about three passes after
    it was accepted (transport task, ``connection_made``, ``connection_lost``), so the peak is the cap plus
    four bursts; the rest is headroom for the database, the CA files and the loop's own descriptors.
    """
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - Windows
        return 1024
    if soft == resource.RLIM_INFINITY:  # pragma: no cover - unusual limits
        return 4096
    return max(8, min(4096, soft - 4 * _ACCEPT_BURST - 64))


class _JsonErrorRequestHandler(RequestHandler):
    """Answers requests that fail in aiohttp's HTTP parser (before the app runs) with a JSON error.

    It also bounds what a connection may hold: its first request's headers must arrive within the
    header timeout (a silent or trickling socket is closed), and past the connection cap the oldest
    connection that has not sent a byte yet makes room for the new one.
    """

    _limits: tuple[float, int] = (DEFAULT_HEADER_TIMEOUT, 1024)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._spoke = False
        super().connection_made(transport)
        header_timeout, max_connections = self._limits
        self._header_deadline: asyncio.TimerHandle | None = self._loop.call_later(header_timeout, self._header_timeout)
        manager = self._manager
        if manager is not None and len(manager.connections) > max_connections:
            # A dropped connection stays listed until its task ends: skip those already closing.
            silent = [
                h
                for h in manager.connections
                if isinstance(h, _JsonErrorRequestHandler) and not h._spoke and h.transport is not None
            ]
            victim = silent[0] if silent and silent[0] is not self else self
            logger.info("Connection limit (%d) reached: closing a silent connection", max_connections)
            victim._drop()

    def data_received(self, data: bytes) -> None:
        self._spoke = True
        super().data_received(data)
        # A complete first request stops the header clock; keep-alive idling is aiohttp's timeout.
        if self._request_count and self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None
        super().connection_lost(exc)

    def _header_timeout(self) -> None:
        self._header_deadline = None
        if not self._request_count:
            logger.debug("Closing a connection that sent no complete request in time")
            self._drop()

    def _drop(self) -> None:
        self.force_close()
        if self.transport is not None:
            self.transport.close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        # The exception's text can quote the raw request (headers included): log its type only.
        logger.info("Rejected a malformed request (%d, %s)", status, type(exc).__name__ if exc else "-")
        if request.writer.output_size > 0:  # pragma: no cover - responses here are never streamed
            raise ConnectionError("A response was already started; it cannot become an error.")
        response = web.Response(
            status=status,
            body=error_body(
                HTTP_ERROR_CODES.get(status, "BadRequest"),
                f"The request could not be processed as HTTP ({status}).",
            ),
            content_type="application/json",
        )
        response.force_close()
        return response


class _JsonErrorServer(Server):
    limits: tuple[float, int] = (DEFAULT_HEADER_TIMEOUT, 1024)

    def __call__(self) -> RequestHandler:
        handler = _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)
        handler._limits = self.limits
        return handler


class _AppRunner(web.AppRunner):
    """An ``AppRunner`` whose connections answer HTTP parser errors in the service's JSON shape."""

    def __init__(self, app: web.Application, *, limits: tuple[float, int], **kwargs: object) -> None:
        super().__init__(app, **kwargs)  # type: ignore[arg-type]
        self._limits = limits

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        # aiohttp has no hook for the handler class; the subclass only overrides the factory call.
        server.__class__ = _JsonErrorServer
        assert isinstance(server, _JsonErrorServer)
        server.limits = self._limits
        return server


class _Site(web.SockSite):
    """A ``SockSite`` whose TLS handshakes must finish within the header timeout.

    A silent TLS socket never reaches ``connection_made`` (the handshake comes first), so the header
    timeout and the connection cap cannot see it; asyncio's own handshake timeout (60 s) would let it
    hold a descriptor for a minute.
    """

    def __init__(self, *args: Any, handshake_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        if self._ssl_context is None:
            await super().start()
            return
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            sock=self._sock,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self._handshake_timeout,
        )


def _host_for_url(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    return f"[{address}]" if address.version == 6 else host


def _bind(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name != "nt":  # pragma: no branch - Windows' SO_REUSEADDR allows port stealing
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class Emulator:
    """A local Azure Communication Services Identity service, for offline development and tests.

    ``start()`` serves it from a daemon thread with its own event loop; ``async with`` serves it on the
    current loop instead. Tokens are RS256 JWTs signed with a key generated once per ``Emulator`` and
    published at :attr:`jwks_url`.

    Args:
        access_key: the base64 access key clients sign with; generated (32 random bytes) when None.
        host: the address to bind (loopback by default).
        port: the port to bind; 0 picks a free one.
        database: None for an in-memory database, or a SQLite file path (WAL mode) that keeps users,
            custom ids and revocation times across restarts.
        allow_short_tokens: accept ``expiresInMinutes`` from 1 and ``expiresInSeconds`` (1..86400) in
            token requests, for demos and tests of token refresh. Never what the service does.
        latency: seconds added before every request is handled. With ``fail_rate`` and ``retry_after``, a
            shorthand for one chaos rule (``GET /_emulator/chaos`` shows it; ``POST /_emulator/reset``
            restores it).
        fail_rate: the fraction of requests answered 503 with ``Retry-After`` (that rule's probability).
        retry_after: the ``Retry-After`` seconds of injected 503s.
        resource_id: the resource GUID in ids and tokens; generated when None (or, with a database
            file, the one stored in it).
        fault_seed: seeds the fault-injection random source, for reproducible runs.
        https: serve TLS with a certificate from a local CA made for the run (see :attr:`ca_bundle`).
        loose: accept any api-version (an unknown one serves every operation, each with its newest
            behaviour); None reads ``ACS_EMULATOR_LOOSE`` (``1``/``true``/``yes`` turn it on).
        header_timeout: seconds a new connection has to send its first request's headers.
        body_timeout: seconds a request body has to arrive once its headers have (then 408).
        keepalive_timeout: seconds an idle keep-alive connection stays open.
        max_connections: open connections at most (default: half the descriptor limit); past it the
            oldest silent connection is closed.

    Raises:
        ValueError: an argument is out of range (the access key is never quoted).
    """

    def __init__(
        self,
        access_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        database: str | os.PathLike[str] | None = None,
        allow_short_tokens: bool = False,
        latency: float = 0.0,
        fail_rate: float = 0.0,
        retry_after: int = 1,
        resource_id: str | None = None,
        *,
        fault_seed: int | None = None,
        https: bool = False,
        loose: bool | None = None,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
        max_connections: int | None = None,
        _clock: Callable[[], float] | None = None,
        _busy_timeout: float = 5.0,
    ) -> None:
        #: Whether the key was generated here (the CLI banner shows only a generated key).
        self.key_generated = access_key is None
        if access_key is None:
            access_key = base64.b64encode(secrets.token_bytes(32)).decode("ascii")
        self._key = decode_key(access_key)
        self._access_key = access_key.strip()
        for name, value in (
            ("header_timeout", header_timeout),
            ("body_timeout", body_timeout),
            ("keepalive_timeout", keepalive_timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds > 0.")
        if max_connections is None:
            max_connections = _default_max_connections()
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError("max_connections must be a whole number >= 1.")
        if loose is None:
            loose = os.environ.get(LOOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
        self._loose = bool(loose)
        self._header_timeout = float(header_timeout)
        self._body_timeout = float(body_timeout)
        self._keepalive_timeout = float(keepalive_timeout)
        self._max_connections = max_connections
        self._busy_timeout = _busy_timeout
        if not isinstance(host, str) or not host:
            raise ValueError("host must be a non-empty string.")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError("port must be an integer from 0 to 65535.")
        if not (isinstance(latency, (int, float)) and math.isfinite(latency) and latency >= 0):
            raise ValueError("latency must be a finite number of seconds >= 0.")
        if not (isinstance(fail_rate, (int, float)) and 0.0 <= fail_rate <= 1.0):
            raise ValueError("fail_rate must be a fraction from 0 to 1.")
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            raise ValueError("retry_after must be a whole number of seconds >= 0.")
        self._explicit_resource_id = resource_id is not None
        try:
            self._resource_id = str(uuid.UUID(resource_id)) if resource_id else str(uuid.uuid4())
        except ValueError:
            raise ValueError("resource_id must be a GUID.") from None
        self._host = host
        self._requested_port = port
        self._database = database
        self._allow_short_tokens = bool(allow_short_tokens)
        self._latency = float(latency)
        self._fail_rate = float(fail_rate)
        self._retry_after = retry_after
        self._rng = random.Random(fault_seed)
        self._clock = _clock if _clock is not None else time.time
        self._issuer: TokenIssuer | None = None
        self._service: IdentityService | None = None
        self._store: StoreWorker | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_mode = False
        self._lock = threading.Lock()
        self._https = bool(https)
        self._authority: LocalAuthority | None = None

    # -- public properties -------------------------------------------------------------------------

    def __repr__(self) -> str:
        where = self.endpoint if self._port is not None else "not started"
        database = "in-memory" if self._database is None else os.fspath(self._database)
        return f"Emulator({where}, database={database!r})"

    @property
    def access_key(self) -> str:
        """The base64 access key that clients sign requests with."""
        return self._access_key

    @property
    def endpoint(self) -> str:
        """``http://HOST:PORT`` (``https://`` with ``https=True``) of the running emulator (no trailing slash).

        Raises:
            RuntimeError: the emulator is not running.
        """
        if self._port is None:
            raise RuntimeError("The emulator is not running; call start() first.")
        scheme = "https" if self._https else "http"
        return f"{scheme}://{_host_for_url(self._host)}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        self.endpoint  # noqa: B018 - raises when not running
        assert self._port is not None
        return self._port

    @property
    def connection_string(self) -> str:
        """``endpoint=http://HOST:PORT/;accesskey=<key>`` (it holds the key: do not log it)."""
        return f"endpoint={self.endpoint}/;accesskey={self._access_key}"

    @property
    def ca_bundle(self) -> str | None:
        """The PEM file of the local CA that signed the HTTPS certificate, or None without ``https``.

        Pass it to clients as ``connection_verify=`` (azure-core), ``verify=`` (requests, httpx).

        Raises:
            RuntimeError: an HTTPS emulator that is not running (its CA is made at start).
        """
        if not self._https:
            return None
        if self._authority is None:
            raise RuntimeError("The emulator is not running; call start() first.")
        return self._authority.ca_bundle

    @property
    def jwks_url(self) -> str:
        """The JWKS document of the token-signing key: :attr:`endpoint` + ``/.well-known/jwks.json``."""
        return self.endpoint + JWKS_PATH

    @property
    def control_url(self) -> str:
        """The control plane: :attr:`endpoint` + ``/_emulator`` (``/health``, ``/requests``, ``/chaos`` ...)."""
        return self.endpoint + CONTROL_PREFIX

    @property
    def inspector_url(self) -> str:
        """The web inspector: :attr:`endpoint` + ``/_emulator/ui/``."""
        return self.endpoint + CONTROL_PREFIX + "/ui/"

    @property
    def resource_id(self) -> str:
        """The resource GUID in ids and tokens (after ``start()`` with a database: the stored one)."""
        return self._resource_id

    @property
    def unexpected_errors(self) -> int:
        """Requests that hit an unexpected exception (answered 400 and logged); should stay 0."""
        return 0 if self._service is None else self._service.unexpected_errors

    # -- test and backend helpers ------------------------------------------------------------------

    def _require_store(self) -> StoreWorker:
        if self._store is None:
            raise RuntimeError("The emulator is not running; call start() first.")
        return self._store

    def _identity_rows(self) -> list[IdentityRecord]:
        """Every stored identity, ordered by id (test-only: compare snapshots before/after)."""
        return self._require_store().call_sync(lambda store: store.rows())

    def is_token_revoked(self, token: str) -> bool:
        """Whether a token this emulator issued was revoked (or its identity deleted).

        Revocation has one-second granularity: a token whose ``iat`` second is not after the
        revocation time counts as revoked. Exchanged Teams tokens are never revoked.

        Raises:
            ValueError: the token was not issued by this emulator run.
            RuntimeError: the emulator is not running.
        """
        if self._issuer is None:
            raise RuntimeError("The emulator is not running; call start() first.")
        claims = self._issuer.verify(token)
        raw_id = f"8:{claims.get('skypeid', '')}"
        if not raw_id.startswith("8:acs:") or raw_id.count("_") > 1:
            return False
        record = self._require_store().call_sync(lambda store: store.get(raw_id))
        if record is None:
            return True
        return record.revoked_at is not None and int(claims["iat"]) <= record.revoked_at

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def loose(self) -> bool:
        """Whether any api-version is accepted (``loose=True`` or ``ACS_EMULATOR_LOOSE=1``)."""
        return self._loose

    def _open(self) -> IdentityService:
        store = StoreWorker(self._database, busy_timeout=self._busy_timeout)
        try:
            resource_id = store.call_sync(
                lambda s: s.resource_id(self._resource_id, override=self._explicit_resource_id)
            )
            if self._issuer is None or self._issuer.resource_id != resource_id:
                self._issuer = TokenIssuer(resource_id)
        except BaseException:
            store.close()
            raise
        self._resource_id = resource_id
        self._store = store
        settings = ServiceSettings(
            key=self._key,
            resource_id=resource_id,
            allow_short_tokens=self._allow_short_tokens,
            latency=self._latency,
            fail_rate=self._fail_rate,
            retry_after=self._retry_after,
            loose=self._loose,
            body_timeout=self._body_timeout,
        )
        self._service = IdentityService(settings, store, self._issuer, clock=self._clock, rng=self._rng)
        return self._service

    async def _serve(self, service: IdentityService) -> None:
        runner = _AppRunner(
            service.application(control_open=is_loopback_host(self._host)),
            access_log=access_logger,
            access_log_format=ACCESS_LOG_FORMAT,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
            keepalive_timeout=self._keepalive_timeout,
            # After an early answer (408, 413) aiohttp drains the unread body for this long: keep it short,
            # or a slow sender holds its connection well past the body timeout.
            lingering_time=min(1.0, self._body_timeout),
            limits=(self._header_timeout, self._max_connections),
        )
        await runner.setup()
        try:
            sock = _bind(self._host, self._requested_port)
            context = None
            if self._https:
                if self._authority is None:
                    self._authority = LocalAuthority(self._host, self._database)
                context = self._authority.server_context()
            site = _Site(
                runner, sock, ssl_context=context, backlog=_ACCEPT_BURST, handshake_timeout=self._header_timeout
            )
            await site.start()
            # asyncio uses its backlog both for listen() and for the accept burst; the kernel's queue of
            # pending connections can be longer than the burst, so clients are not made to retry a SYN.
            sock.listen(_LISTEN_BACKLOG)
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]

    async def _shutdown(self) -> None:
        runner, self._runner = self._runner, None
        assert runner is not None
        await runner.cleanup()

    def _close_store(self) -> None:
        store, self._store = self._store, None
        self._port = None
        authority, self._authority = self._authority, None
        if authority is not None:
            authority.close()
        assert store is not None
        store.close()

    def start(self: _E) -> _E:
        """Serve from a daemon thread with its own event loop; return ``self`` once it accepts requests.

        Raises:
            RuntimeError: it is already running.
            OSError: the address cannot be bound.
            StorageError: the database file cannot be used (its one-line message names the path and why).
            ValueError: with ``https``, the CA files beside the database cannot be read.
        """
        with self._lock:
            if self._store is not None:
                raise RuntimeError("The emulator is already running.")
            service = self._open()
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            failure: list[BaseException] = []

            def main() -> None:
                asyncio.set_event_loop(loop)
                try:
                    loop.run_until_complete(self._serve(service))
                except BaseException as exc:
                    failure.append(exc)
                    ready.set()
                    loop.close()
                    return
                ready.set()
                try:
                    loop.run_forever()
                    loop.run_until_complete(self._shutdown())
                finally:
                    loop.close()

            thread = threading.Thread(target=main, name="acs-identity-emulator", daemon=True)
            thread.start()
            ready.wait()
            if failure:
                thread.join()
                self._close_store()
                raise failure[0]
            self._thread, self._loop = thread, loop
            return self

    def stop(self) -> None:
        """Stop serving, finish in-flight requests (up to 2 s) and close the database. Idempotent.

        Raises:
            RuntimeError: called on the emulator's own thread, or for an emulator started with
                ``async with`` (leave the block instead).
        """
        with self._lock:
            if self._async_mode:
                raise RuntimeError("This emulator runs on an event loop: leave its 'async with'.")
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            if threading.current_thread() is thread:
                raise RuntimeError("stop() cannot be called from the emulator's own thread.")
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            self._thread = self._loop = None
            self._close_store()

    async def astart(self: _E) -> _E:
        """Serve on the running event loop (what ``async with`` does); return ``self``."""
        if self._store is not None:
            raise RuntimeError("The emulator is already running.")
        loop = asyncio.get_running_loop()
        # Opening the store and generating the RSA key block for a moment: keep that off the loop.
        service = await loop.run_in_executor(None, self._open)
        try:
            await self._serve(service)
        except BaseException:
            await loop.run_in_executor(None, self._close_store)
            raise
        self._async_mode = True
        return self

    async def astop(self) -> None:
        """Stop an emulator started with :meth:`astart` (idempotent)."""
        if not self._async_mode:
            return
        try:
            await self._shutdown()
        finally:
            self._async_mode = False
            await asyncio.get_running_loop().run_in_executor(None, self._close_store)

    def __enter__(self: _E) -> _E:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self: _E) -> _E:
        return await self.astart()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.astop()

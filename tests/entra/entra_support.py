"""Helpers of the Entra exchange tests: a scripted HTTP server, fake Entra credentials, sync/async flavours.

The server is a real ``ThreadingHTTPServer`` on 127.0.0.1 (ephemeral port), shared by the module and reset
before each test; it records every request and answers from a script, or with a fresh ACS token.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import AioHttpTransport, RequestsTransport

from azure.communication.common._entra import EntraTokenExchanger
from azure.communication.common._timestamps import format_timestamp
from azure.communication.common.aio._entra import AsyncEntraTokenExchanger

ENTRA_TOKENS = ("entra-token-secret-1", "entra-token-secret-2")

# How long the ACS tokens the server hands out live (the real service: 24 h).
ACS_TOKEN_LIFETIME = 24 * 3600.0


def assert_hides(obj: object, *secrets: str) -> None:
    """Assert that ``str`` and ``repr`` of ``obj`` (an exception: also its args) contain none of ``secrets``.

    Checked against the secrets a test names rather than the session's registry, whose content depends on
    which other test modules were collected.
    """
    texts = [str(obj), repr(obj)]
    if isinstance(obj, BaseException):
        texts.extend(repr(arg) for arg in obj.args)
    for secret in secrets:
        assert secret
        assert all(secret not in text for text in texts), (
            f"a secret ({len(secret)} chars, starting {secret[:3]!r}) in str/repr of {type(obj).__name__}"
        )


@dataclass(frozen=True)
class Recorded:
    """One request as the server received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Reply:
    """One scripted response."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, **headers: str) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **headers})


@dataclass
class Issued:
    """An ACS token the server handed out by default."""

    token: str
    expires_on: str


class ScriptedServer:
    """Records requests and plays scripted replies; when the script is empty, issues a new ACS token."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.issued: list[Issued] = []
        self._script: deque[Reply] = deque()
        self._counter = itertools.count(1)
        # What "now" is when the server dates the tokens it issues (a test may give it its fake clock).
        self.clock: Callable[[], float] = time.time
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def play(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.issued.clear()
            self._script.clear()
            self.clock = time.time

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_reply(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            if self._script:
                return self._script.popleft()
            issued = Issued(
                f"acs-token-secret-{next(self._counter):04d}",
                format_timestamp(self.clock() + ACS_TOKEN_LIFETIME),
            )
            self.issued.append(issued)
        return Reply.json(
            200,
            {
                "accessToken": {"token": issued.token, "expiresOn": issued.expires_on},
                "identity": {"id": "8:acs:resource_tenant_user"},
            },
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                reply = server._next_reply(recorded)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                # http.server writes to stderr; the test output stays quiet.
                pass

        return Handler


class FakeEntraCredential:
    """A sync Entra ``TokenCredential`` whose token the test sets; records the scopes of each call."""

    def __init__(self, token: str = ENTRA_TOKENS[0]) -> None:
        self.token = token
        self.calls: list[tuple[str, ...]] = []
        self.error: BaseException | None = None
        self.result: Any = None

    def _issue(self, scopes: tuple[str, ...]) -> Any:
        self.calls.append(scopes)
        if self.error is not None:
            raise self.error
        if self.result is not None:
            return self.result
        return AccessToken(self.token, int(time.time()) + 3600)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return self._issue(scopes)  # type: ignore[no-any-return]


class AsyncFakeEntraCredential(FakeEntraCredential):
    """The ``AsyncTokenCredential`` twin of :class:`FakeEntraCredential`."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:  # type: ignore[override]
        return self._issue(scopes)  # type: ignore[no-any-return]


class SleepRecordingRequestsTransport(RequestsTransport):
    """A RequestsTransport whose retry sleeps are recorded instead of slept."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sleeps: list[float] = []

    def sleep(self, duration: float) -> None:
        self.sleeps.append(duration)


class SleepRecordingAioHttpTransport(AioHttpTransport):
    """An AioHttpTransport whose retry sleeps are recorded instead of slept."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sleeps: list[float] = []

    async def sleep(self, duration: float) -> None:
        self.sleeps.append(duration)


@dataclass
class Flavour:
    """Builds and drives an exchanger of one flavour, so one async test body covers both."""

    name: str
    _made: list[Any] = field(default_factory=list)

    @property
    def is_async(self) -> bool:
        return self.name == "async"

    def credential(self, token: str = ENTRA_TOKENS[0]) -> FakeEntraCredential:
        return AsyncFakeEntraCredential(token) if self.is_async else FakeEntraCredential(token)

    def transport(self) -> Any:
        if self.is_async:
            return SleepRecordingAioHttpTransport(use_env_settings=False)
        return SleepRecordingRequestsTransport(use_env_settings=False)

    def exchanger_class(self) -> type[Any]:
        return AsyncEntraTokenExchanger if self.is_async else EntraTokenExchanger

    def make(
        self,
        endpoint: str,
        credential: Any = None,
        scopes: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """An exchanger with a sleep-recording transport (unless ``transport`` is given), closed at teardown."""
        kwargs.setdefault("transport", self.transport())
        kwargs.setdefault("retry_backoff_factor", 0)
        exchanger = self.exchanger_class()(endpoint, credential or self.credential(), scopes, **kwargs)
        self._made.append(exchanger)
        return exchanger

    async def call(self, exchanger: Any) -> AccessTokenInfo:
        if self.is_async:
            return await exchanger()  # type: ignore[no-any-return]
        return exchanger()  # type: ignore[no-any-return]

    async def close(self, exchanger: Any) -> None:
        if self.is_async:
            await exchanger.close()
        else:
            exchanger.close()

    async def close_all(self) -> None:
        for exchanger in self._made:
            await self.close(exchanger)

"""What the demo's scenarios share: the checks they return, the progress events they emit, and their context.

A scenario (``_demo_steps``, ``_demo_chat``) is a function of a :class:`DemoContext` that talks to the service,
emits progress events to ``context.sink`` as things happen, and returns the list of :class:`Check` it made.
It never formats text: ``_demo_render`` turns the events and checks into the transcript.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._common import IDENTITY_API_VERSION, build_pipeline, join_url
from ._demo import CHAT_TOKEN_SECONDS, DEFAULT_REFRESHES, DEFAULT_TASKS, DEFAULT_THREADS, DEFAULT_TOKEN_SECONDS

__all__ = [
    "CHAT_TOKEN_SECONDS",
    "Check",
    "CheckList",
    "DemoContext",
    "DemoFailure",
    "DemoOptions",
    "Event",
    "Field",
    "Note",
    "Paragraph",
    "Sink",
    "Table",
    "Text",
]

# Real tokens: the shortest lifetime the service allows; the demo deletes its users at the end anyway.
REAL_TOKEN_MINUTES: Final = 60


@dataclass(frozen=True)
class Check:
    """One verified statement of the demo.

    Args:
        name: what was verified, as the transcript and the summary show it.
        passed: whether it held.
        detail: what was seen (shown beside the name).
        seconds: how long the check took, for the summary table.
    """

    name: str
    passed: bool
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Note:
    """A progress event worth a timestamp: a request answered, a refresh done.

    Args:
        text: what happened.
        at: the wall-clock time (POSIX seconds) it happened.
        elapsed: seconds since the demo started.
        refresh: whether it reports a token refresh (the renderer marks those).
    """

    text: str
    at: float
    elapsed: float
    refresh: bool = False


@dataclass(frozen=True)
class Field:
    """A ``name: value`` line (the endpoint, the user id)."""

    name: str
    value: str


@dataclass(frozen=True)
class Paragraph:
    """An explanation, wrapped by the renderer."""

    text: str


@dataclass(frozen=True)
class Text:
    """A line shown as given (indented by the renderer), e.g. a line of a JSON sample."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table; a ``bool`` cell is shown as a tick or a cross, and ``failed`` rows are highlighted."""

    headers: tuple[str, ...]
    rows: tuple[tuple[str | bool, ...], ...]
    failed: frozenset[int] = frozenset()


Event = Check | Note | Field | Paragraph | Text | Table
Sink = Callable[[Event], None]


class DemoFailure(Exception):
    """A scenario could not go on (its reason becomes a failed check)."""


@dataclass(frozen=True)
class DemoOptions:
    """The demo's knobs (its command-line options).

    Args:
        token_seconds: lifetime of the short tokens in the refresh steps.
        refreshes: how many background refreshes the threads step waits for.
        threads: concurrent callers in the threads step.
        tasks: concurrent asyncio tasks in the asyncio step.
    """

    token_seconds: int = DEFAULT_TOKEN_SECONDS
    refreshes: int = DEFAULT_REFRESHES
    threads: int = DEFAULT_THREADS
    tasks: int = DEFAULT_TASKS


class CheckList(list[Check]):
    """The checks of one scenario: each one is emitted to the sink as it is made, then returned."""

    def __init__(self, context: DemoContext) -> None:
        super().__init__()
        self._context = context

    def add(self, name: str, passed: bool, started: float, detail: str = "") -> bool:
        """Record a check that began at ``started`` (a ``context.timer()`` value); return ``passed``."""
        check = Check(name, bool(passed), detail, self._context.timer() - started)
        self.append(check)
        self._context.sink(check)
        return check.passed


@dataclass
class DemoContext:
    """What every scenario gets: the endpoint and key, the clocks, the sink, and the state steps hand on.

    Args:
        endpoint_credential: the parsed connection string.
        emulated: whether the endpoint is the in-process emulator (short tokens can be requested).
        sink: where progress events and checks go as they happen.
        options: the demo's knobs.
        clock: wall-clock time (POSIX seconds): token expiries and timestamps.
        timer: a monotonic clock: durations and the demo's elapsed time.
    """

    endpoint_credential: Any
    emulated: bool
    sink: Sink
    options: DemoOptions = dataclasses.field(default_factory=DemoOptions)
    clock: Callable[[], float] = time.time
    timer: Callable[[], float] = time.perf_counter
    user_id: str | None = None
    deleted: bool = False
    started: float = dataclasses.field(init=False)
    _pipeline: Any = dataclasses.field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.started = self.timer()

    @property
    def endpoint(self) -> str:
        """The resource's endpoint, as the connection string gives it."""
        return str(self.endpoint_credential.endpoint)

    @property
    def key_credential(self) -> Any:
        """The ``AzureKeyCredential`` of the connection string (its key is never shown)."""
        return self.endpoint_credential.credential

    # ------------------------------------------------------------------------------------- events

    def checks(self) -> CheckList:
        """A new, empty list of checks bound to this context's sink."""
        return CheckList(self)

    def note(self, text: str, *, refresh: bool = False) -> None:
        """Emit a timestamped progress event."""
        self.sink(Note(text, self.clock(), self.timer() - self.started, refresh))

    def field(self, name: str, value: object) -> None:
        """Emit a ``name: value`` line."""
        self.sink(Field(name, str(value)))

    def paragraph(self, text: str) -> None:
        """Emit an explanation."""
        self.sink(Paragraph(text))

    def text(self, text: str) -> None:
        """Emit a line shown as given."""
        self.sink(Text(text))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str | bool]], failed: Sequence[int] = ()) -> None:
        """Emit a table."""
        self.sink(Table(tuple(headers), tuple(tuple(row) for row in rows), frozenset(failed)))

    # --------------------------------------------------------------------------------------- HTTP

    @property
    def pipeline(self) -> Any:
        """The sync azure-core pipeline signing with the connection string's key (built on first use)."""
        if self._pipeline is None:
            self._pipeline = build_pipeline(self.key_credential)
        return self._pipeline

    def close(self) -> None:
        """Close the pipeline (its connections)."""
        if self._pipeline is not None:
            self._pipeline.__exit__(None, None, None)
            self._pipeline = None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Build an ``HttpRequest`` for ``path`` (resolved against the endpoint) with a JSON body."""
        from azure.core.pipeline.transport import HttpRequest

        request = HttpRequest(method, join_url(self.endpoint, path), headers={"Accept": "application/json"})
        if body is not None:
            request.headers["Content-Type"] = "application/json"
            request.set_bytes_body(json.dumps(body).encode("utf-8"))
        return request

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Send one signed request through the sync pipeline; return status and parsed JSON (or None)."""
        response = self.pipeline.run(self.request(method, path, body)).http_response
        return response.status_code, json_or_none(response.body())

    def token_body(self, seconds: int) -> dict[str, Any]:
        """The body of an issue-token request for a token living ``seconds`` (emulated) or an hour."""
        if self.emulated:
            # The emulator's documented short-token switch (it was started with allow_short_tokens=True).
            return {"scopes": ["chat"], "expiresInSeconds": seconds}
        return {"scopes": ["chat"], "expiresInMinutes": REAL_TOKEN_MINUTES}

    def issue_path(self) -> str:
        """The issue-token path of the demo's user."""
        return f"/identities/{self.user_id}/:issueAccessToken?api-version={IDENTITY_API_VERSION}"

    def token_from(self, status: int, document: Any, seconds: int) -> tuple[Any, float]:
        """Turn an issue-token response into what a refresher returns, and its expiry.

        Emulated: the bare JWT string (the credential reads its ``exp``). Real resource: an ``AccessToken``
        whose ``expires_on`` is ``seconds`` ahead, an assumed lifetime shorter than the real one.
        """
        from azure.core.credentials import AccessToken

        from .._timestamps import parse_timestamp

        if status != 200 or not isinstance(document, dict) or not isinstance(document.get("token"), str):
            raise DemoFailure(f"issue token returned HTTP {status}")
        if self.emulated:
            return document["token"], parse_timestamp(document["expiresOn"])
        expires_on = int(self.clock() + seconds)
        return AccessToken(document["token"], expires_on), float(expires_on)

    def issue_token(self, seconds: int | None = None) -> tuple[Any, float]:
        """Issue a token for the demo's user that lives (or is assumed to live) ``seconds``."""
        lifetime = self.options.token_seconds if seconds is None else seconds
        return self.token_from(*self.call("POST", self.issue_path(), self.token_body(lifetime)), lifetime)


def json_or_none(body: bytes) -> Any:
    """The parsed JSON of a response body, or None when it is empty or not JSON."""
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None

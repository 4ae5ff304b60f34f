"""Shared machinery of the refresher fault tests: a fake clock, a hand-driven scheduler, scripted refreshers
and the sync/async flavours that let one scenario table drive both credentials.

Time is simulated: the fake clock only moves when a test calls ``advance``, and scheduled (proactive)
refreshes run only when the test calls ``run_due``. Nothing here sleeps to wait for a timer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import AccessToken

import azure.communication.common.aio._credential as aio_credential
from azure.communication.common import _credential as sync_credential

T0 = 1_800_000_000.0
# Longest a test waits for another thread or task to reach a point (never a timer: a safety net).
REACH_TIMEOUT = 10.0


class FakeClock:
    """A ``Callable[[], float]`` clock that moves only when told to."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(eq=False)
class _Entry:
    due: float
    owner: weakref.ref[Any]
    callback: Callable[[Any], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """The credential's ``_scheduler`` seam: entries run only when the test pops them."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.entries: list[_Entry] = []
        self.deadlines: list[_Entry] = []
        self.scheduled = 0

    def schedule(
        self,
        due: float,
        owner: Any,
        callback: Callable[[Any], None],
        *,
        wall_due: float | None = None,
        inline: bool = False,
    ) -> _Entry:
        entry = _Entry(due, weakref.ref(owner), callback)
        if inline:
            # A refresh deadline (refresh_timeout): run by pop_deadlines, not counted as a background refresh.
            self.deadlines.append(entry)
            return entry
        self.entries.append(entry)
        self.scheduled += 1
        return entry

    def pop_deadlines(self) -> list[tuple[Any, Callable[[Any], None]]]:
        now = self.clock()
        due = [e for e in self.deadlines if not e.cancelled and e.due <= now]
        self.deadlines = [e for e in self.deadlines if not e.cancelled and e.due > now]
        return [(owner, e.callback) for e in due if (owner := e.owner()) is not None]

    def pop_due(self) -> list[tuple[Any, Callable[[Any], None]]]:
        now = self.clock()
        due = [e for e in self.entries if not e.cancelled and e.due <= now]
        self.entries = [e for e in self.entries if not e.cancelled and e.due > now]
        return [(owner, e.callback) for e in due if (owner := e.owner()) is not None]

    def pending(self) -> int:
        return sum(1 for e in self.entries if not e.cancelled and e.owner() is not None)

    def next_due(self) -> float:
        live = [e.due for e in self.entries if not e.cancelled and e.owner() is not None]
        return min(live, default=math.inf)


@dataclass(frozen=True)
class Issued:
    """A token a refresher returned: when, its text and its true (float) expiry."""

    at: float
    token: str
    expires_on: float

    @property
    def valid(self) -> bool:
        return self.expires_on > self.at


class Hang:
    """Returned by a behaviour: block until the test releases the refresher (then ``after`` decides)."""

    def __init__(self, after: Callable[[RefresherScript, float], Any]) -> None:
        self.after = after


# A behaviour decides what the n-th refresher call (1-based) does at time ``now``: return a value for the
# credential, raise, or return a Hang.
Behaviour = Callable[["RefresherScript", int, float], Any]


@dataclass
class RefresherScript:
    """A scripted token refresher that records every call and every token it hands out."""

    behaviour: Behaviour
    clock: FakeClock
    recover_at: float = math.inf
    calls: list[float] = field(default_factory=list)
    issued: list[Issued] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    hanging: int = 0

    def token(self, lifetime: float) -> AccessToken:
        """A fresh opaque token living ``lifetime`` seconds from now (negative: already expired)."""
        now = self.clock()
        text = f"fault-token-{len(self.issued)}-{secrets.token_urlsafe(12)}"
        self.issued.append(Issued(now, text, now + lifetime))
        self.secrets.append(text)
        return AccessToken(text, now + lifetime)  # type: ignore[arg-type]  # float expiry is allowed

    def _begin(self) -> Any:
        now = self.clock()
        self.calls.append(now)
        if now >= self.recover_at:
            return self.token(3600)
        return self.behaviour(self, len(self.calls), now)

    def __call__(self) -> Any:
        result = self._begin()
        if isinstance(result, Hang):
            self.hanging += 1
            self.started.set()
            assert self.release.wait(REACH_TIMEOUT), "the test never released the hanging refresher"
            self.hanging -= 1
            return result.after(self, self.clock())
        return result

    async def acall(self) -> Any:
        result = self._begin()
        if isinstance(result, Hang):
            self.hanging += 1
            self.started.set()
            await asyncio.to_thread(self.release.wait, REACH_TIMEOUT)
            assert self.release.is_set(), "the test never released the hanging refresher"
            self.hanging -= 1
            return result.after(self, self.clock())
        return result


@dataclass
class Outcome:
    """What one caller saw at time ``at``: a token or an exception."""

    at: float
    token: AccessToken | None = None
    error: BaseException | None = None


class Flavour:
    """One credential flavour (threads or asyncio) behind the same awaitable interface."""

    name = ""

    def credential(self, script: RefresherScript, scheduler: ManualScheduler, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def get_token(self, credential: Any) -> AccessToken:
        raise NotImplementedError

    def start_get_token(self, credential: Any) -> asyncio.Future[AccessToken]:
        """Start a call that may block (a thread, or a task) and return its future."""
        raise NotImplementedError

    async def run_due(self, scheduler: ManualScheduler, *, in_background: bool = False) -> list[Any]:
        raise NotImplementedError

    async def close(self, credential: Any) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        """Release what the flavour started for the test (called after each test)."""


async def settle(rounds: int = 5) -> None:
    """Let ready tasks run (refreshers here finish without real I/O, within a few loop iterations)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class SyncFlavour(Flavour):
    name = "sync"

    def credential(self, script: RefresherScript, scheduler: ManualScheduler, **kwargs: Any) -> Any:
        return sync_credential._create(
            sync_credential.CommunicationTokenCredential,
            token_refresher=script,
            _clock=script.clock,
            _scheduler=scheduler,
            _jitter=lambda: 0.5,
            **{"refresh_timeout": None, **kwargs},
        )

    async def get_token(self, credential: Any) -> AccessToken:
        result: AccessToken = credential.get_token()
        return result

    def __init__(self) -> None:
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def _in_thread(self, call: Callable[[], Any]) -> asyncio.Future[Any]:
        # A dedicated pool: asyncio's default executor has few workers on 2 cores, so with a refresh
        # hanging, some "waiters" would sit in its queue and never call get_token at all.
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="flavour")
        return asyncio.get_running_loop().run_in_executor(self._executor, call)

    def start_get_token(self, credential: Any) -> asyncio.Future[AccessToken]:
        return self._in_thread(credential.get_token)

    async def run_due(self, scheduler: ManualScheduler, *, in_background: bool = False) -> list[Any]:
        due = scheduler.pop_due()

        def run() -> None:
            for owner, callback in due:
                callback(owner)

        if in_background:
            return [self._in_thread(run)]
        run()
        return []

    async def close(self, credential: Any) -> None:
        credential.close()

    def shutdown(self) -> None:
        # Every test releases its hanging refreshers and closes its credential first: the threads end.
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class AsyncFlavour(Flavour):
    name = "async"

    def credential(self, script: RefresherScript, scheduler: ManualScheduler, **kwargs: Any) -> Any:
        return sync_credential._create(
            aio_credential.CommunicationTokenCredential,
            token_refresher=script.acall,
            _clock=script.clock,
            _scheduler=scheduler,
            _jitter=lambda: 0.5,
            # The scenarios that hang a refresher predate refresh_timeout; the timeout ones pass their own.
            **{"refresh_timeout": None, **kwargs},
        )

    async def get_token(self, credential: Any) -> AccessToken:
        result: AccessToken = await credential.get_token()
        return result

    def start_get_token(self, credential: Any) -> asyncio.Future[AccessToken]:
        return asyncio.ensure_future(credential.get_token())

    async def run_due(self, scheduler: ManualScheduler, *, in_background: bool = False) -> list[Any]:
        for owner, callback in scheduler.pop_due():
            callback(owner)
        if not in_background:
            await settle()
        return []

    async def close(self, credential: Any) -> None:
        await credential.close()


FLAVOURS = [SyncFlavour(), AsyncFlavour()]

"""Test doubles for the credential tests: a fake clock, a manual scheduler, JWT builders, sync/aio flavours."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from azure.core.credentials import AccessToken

import azure.communication.common as common
import azure.communication.common.aio as common_aio
from azure.communication.common._credential import _create

EPOCH = 1_800_000_000.0


def b64url(data: bytes, *, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text if pad else text.rstrip("=")


def make_jwt(exp: float | None = None, *, pad: bool = False, **claims: Any) -> str:
    """An unsigned JWT-shaped token with the given ``exp`` (and extra claims)."""
    payload: dict[str, Any] = dict(claims)
    if exp is not None:
        payload["exp"] = exp
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode(), pad=pad)
    body = b64url(json.dumps(payload).encode(), pad=pad)
    return f"{header}.{body}.c2lnbmF0dXJl"


def in_thread(call: Callable[[], Any], timeout: float = 10) -> tuple[bool, Any]:
    """Run ``call`` on a daemon thread; ``(finished, result or exception)``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return (not thread.is_alive(), outcome[0] if outcome else None)


def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll thread state (not a timer: nothing here waits for time to pass) until ``predicate`` holds."""
    deadline = time.monotonic() + 10
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.001)


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, start: float = EPOCH) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, when: float) -> None:
        self.now = when


def seamed(cls: Any) -> Callable[..., Any]:
    """``cls`` (a credential class) as a factory that also takes the private test seams (``_clock``,
    ``_monotonic``, ``_scheduler``, ``_jitter``, ``_exchanger_factory``), which its public signature hides."""

    def make(*args: Any, **kwargs: Any) -> Any:
        return _create(cls, *args, **kwargs)

    make.__name__ = cls.__name__
    return make


#: The two credentials, taking the private seams.
SyncCredential = seamed(common.CommunicationTokenCredential)
AsyncCredential = seamed(common_aio.CommunicationTokenCredential)


class ManualEntry:
    def __init__(
        self, due: float, owner: object, callback: Callable[[Any], None], wall_due: float | None = None
    ) -> None:
        self.due = due
        self.wall_due = wall_due
        self.owner = weakref.ref(owner)
        self.callback = callback
        self.cancelled = False
        self.ran = False

    def cancel(self) -> None:
        self.cancelled = True

    @property
    def live(self) -> bool:
        return not self.cancelled and not self.ran and self.owner() is not None


class ManualScheduler:
    """Records schedules; :meth:`run_due` runs the entries due on the (monotonic) fake clock, earliest first.

    Background refreshes go to :attr:`entries`, refresh deadlines (``inline``) to :attr:`deadlines`.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.entries: list[ManualEntry] = []
        self.deadlines: list[ManualEntry] = []

    def schedule(
        self,
        due: float,
        owner: object,
        callback: Callable[[Any], None],
        *,
        wall_due: float | None = None,
        inline: bool = False,
    ) -> ManualEntry:
        entry = ManualEntry(due, owner, callback, wall_due)
        (self.deadlines if inline else self.entries).append(entry)
        return entry

    def run_deadlines(self) -> int:
        """Run every refresh deadline due now; return how many ran."""
        ran = 0
        for entry in list(self.deadlines):
            if entry.live and entry.due <= self.clock():
                entry.ran = True
                owner = entry.owner()
                assert owner is not None
                entry.callback(owner)
                ran += 1
        return ran

    def live(self, owner: object | None = None) -> list[ManualEntry]:
        return [e for e in self.entries if e.live and (owner is None or e.owner() is owner)]

    def next_due(self, owner: object | None = None) -> float:
        live = self.live(owner)
        assert len(live) == 1, f"expected one live entry, found {len(live)}"
        return live[0].due

    def run_due(self) -> int:
        """Run every entry due now (one pass); return how many ran."""
        ran = 0
        for entry in sorted(self.live(), key=lambda e: e.due):
            if entry.due <= self.clock() and entry.live:
                entry.ran = True
                owner = entry.owner()
                assert owner is not None
                entry.callback(owner)
                ran += 1
        return ran


class Flavor:
    """Runs one scenario against the sync or the asyncio credential."""

    def __init__(self, name: str, clock: FakeClock, scheduler: ManualScheduler) -> None:
        self.name = name
        # "trio" runs the async credential under trio (the scenario tables call it through trio.run).
        self.is_async = name in ("aio", "trio")
        self.cls: Any = AsyncCredential if self.is_async else SyncCredential
        self.clock = clock
        self.scheduler = scheduler

    def __repr__(self) -> str:
        return self.name

    def refresher(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """Wrap a plain function as this flavour's refresher."""
        if not self.is_async:
            return fn

        async def refresh() -> Any:
            return fn()

        return refresh

    def make(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_clock", self.clock)
        kwargs.setdefault("_scheduler", self.scheduler)
        kwargs.setdefault("_jitter", lambda: 0.0)
        if "token_refresher" in kwargs and kwargs["token_refresher"] is not None:
            kwargs["token_refresher"] = self.refresher(kwargs["token_refresher"])
        return self.cls(*args, **kwargs)

    async def get(self, credential: Any) -> AccessToken:
        if self.is_async:
            return await credential.get_token("scope")  # type: ignore[no-any-return]
        return credential.get_token("scope")  # type: ignore[no-any-return]

    async def get_info(self, credential: Any) -> Any:
        if self.is_async:
            return await credential.get_token_info("scope")
        return credential.get_token_info("scope")

    async def close(self, credential: Any) -> None:
        if self.is_async:
            await credential.close()
        else:
            credential.close()

    async def settle(self, credential: Any) -> None:
        """Let a background refresh started by the scheduler finish."""
        if self.name == "trio":
            attempt = credential._state.attempt
            while attempt is not None and attempt.handle is not None:
                await attempt.handle.ended.wait()
                attempt = credential._state.attempt
            return
        await settle_async(credential)

    async def run_due(self, credential: Any) -> int:
        ran = self.scheduler.run_due()
        await self.settle(credential)
        return ran


def refresh_task(credential: Any) -> Any:
    """The task of the async credential's refresh in flight, or ``None``."""
    attempt = credential._state.attempt
    run = None if attempt is None else attempt.handle
    return getattr(run, "task", None)


async def settle_async(credential: Any) -> None:
    """Let the async credential's refresh in flight finish."""
    task = refresh_task(credential)
    while task is not None:
        await asyncio.wait([task])
        # The done-callback that finishes the attempt runs one loop iteration after the task.
        await asyncio.sleep(0)
        task = refresh_task(credential)


def in_flight(credential: Any) -> Any:
    """The credential's attempt in flight, or ``None``."""
    return credential._state.attempt


class Refresher:
    """Counts calls; returns the next planned result (a token, or an exception to raise)."""

    def __init__(self, *results: Any) -> None:
        self.results = list(results)
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, BaseException):
            raise result
        if callable(result):
            return result()
        return result

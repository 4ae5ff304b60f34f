"""Case 4: 10,000 proactive-refresh credentials in one process.

Token: the short JWT of ``_common.make_jwt(realistic=False)`` (``{"alg":"RS256","typ":"JWT"}`` header,
``{"exp": ..., "n": i}`` payload, 16-byte signature; its length is reported), one distinct string per
credential, created inside the measured region (so memory per credential includes its token).

Two modes, each in its own process:

- ``memory``: tracemalloc on, tokens valid for an hour (true idle). Reports Python-heap bytes per credential
  (tracemalloc, current after construction minus before) and the extra threads once they are built.
- ``due``: no tracemalloc; every token expires at the same instant a few seconds ahead, so every credential
  falls due (half-way through the remaining life, the rule for short tokens) at about the same moment.
  Reports RSS per credential (psutil), the extra threads while idle, the peak extra threads while they
  refresh (sampled every millisecond), and whether every credential was refreshed before its token expired
  (refresher calls before expiry, every credential holding the new token afterwards, no call after expiry).

The peers only refresh proactively inside ``with`` (``__enter__`` starts one ``threading.Timer`` per
credential), so they are entered. Floor: a ``__slots__`` object holding the token and its expiry (no
scheduling at all).
"""

from __future__ import annotations

import gc
import threading
import time
import tracemalloc
from functools import partial
from typing import Any

from azure.core.credentials import AccessToken

from _common import describe_exception, emit, make_jwt, peer_module, quick_or_full

CASE = "scale"


class FloorCredential:
    __slots__ = ("_expires_on", "_token")

    def __init__(self, token: str, token_refresher: Any = None, proactive_refresh: bool = False) -> None:
        self._token = token
        self._expires_on = 0.0

    def close(self) -> None:
        return None


def factory(contender: str) -> Any:
    if contender == "ours":
        from azure.communication.common import CommunicationTokenCredential

        return CommunicationTokenCredential
    if contender == "floor":
        return FloorCredential
    cls = peer_module(contender, "user_credential").CommunicationTokenCredential

    def build(token: str, **kwargs: Any) -> Any:
        credential = cls(token, **kwargs)
        credential.__enter__()  # their proactive refresh only runs inside ``with``
        return credential

    return build


def short_token(exp: float, i: int) -> str:
    return make_jwt(exp, extra={"n": i}, realistic=False)


class ThreadSampler:
    """Polls ``threading.active_count()`` every millisecond; keeps the maximum."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, threading.active_count())
            time.sleep(0.001)

    def start(self) -> ThreadSampler:
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


class Refreshers:
    """One refresher per credential (built before the measured region), recording when each was called."""

    def __init__(self, n: int, fresh: AccessToken) -> None:
        self.fresh = fresh
        self.first_call: list[float | None] = [None] * n
        self.calls = 0
        self.duplicates = 0
        self.functions = [partial(self._refresh, i) for i in range(n)]

    def _refresh(self, index: int) -> AccessToken:
        self.calls += 1
        if self.first_call[index] is None:
            self.first_call[index] = time.time()
        else:
            self.duplicates += 1
        return self.fresh


def run_memory(contender: str, n: int) -> dict[str, Any]:
    build = factory(contender)
    exp = int(time.time()) + 3600
    refreshers = Refreshers(n, AccessToken(make_jwt(exp + 3600, realistic=False), exp + 3600))
    gc.collect()
    threads_before = threading.active_count()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    credentials = [
        build(short_token(exp, i), token_refresher=refreshers.functions[i], proactive_refresh=True) for i in range(n)
    ]
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    time.sleep(0.2)  # a lazily started timer thread is counted too
    idle_threads = threading.active_count() - threads_before
    for credential in credentials:
        credential.close()
    return {
        "bytes_per_credential_tracemalloc": (after - before) / n,
        "idle_extra_threads": idle_threads,
        "token_bytes": len(short_token(exp, n - 1)),
        "refresher_calls_while_idle": refreshers.calls,
    }


def run_due(contender: str, n: int, lead: float) -> dict[str, Any]:
    build = factory(contender)
    new_exp = int(time.time()) + 7200
    refreshers = Refreshers(n, AccessToken(make_jwt(new_exp, realistic=False), new_exp))
    gc.collect()
    sampler = ThreadSampler().start()
    time.sleep(0.01)
    threads_before = threading.active_count()
    rss_before = rss()
    start = time.time()
    exp = int(start + lead) + 1  # the same whole-second instant for every token
    credentials = [
        build(short_token(exp, i), token_refresher=refreshers.functions[i], proactive_refresh=True) for i in range(n)
    ]
    built = time.time()
    gc.collect()
    rss_after = rss()
    idle_threads = threading.active_count() - threads_before
    calls_at_idle = refreshers.calls
    while refreshers.calls < n and time.time() < exp + 1.0:
        time.sleep(0.01)
    time.sleep(0.2)
    peak = sampler.stop() - threads_before
    first_calls = list(refreshers.first_call)
    duplicates = refreshers.duplicates
    times = [t for t in first_calls if t is not None]
    before_expiry = sum(1 for t in times if t < exp)
    holding_new = sum(1 for c in credentials if _held_token(contender, c) == refreshers.fresh.token)
    for credential in credentials:
        credential.close()
    return {
        "rss_bytes_per_credential": (rss_after - rss_before) / n,
        "idle_extra_threads_due": idle_threads,
        "refresher_calls_while_building": calls_at_idle,
        "peak_extra_threads": peak,
        "build_s": built - start,
        "expires_in_s": exp - start,
        "refreshed": len(times),
        "refreshed_before_expiry": before_expiry,
        "duplicate_refreshes": duplicates,
        "holding_new_token": holding_new,
        "first_refresh_s": (min(times) - start) if times else None,
        "last_refresh_s": (max(times) - start) if times else None,
        "margin_s": (exp - max(times)) if times else None,
        "token_bytes": len(short_token(exp, n - 1)),
    }


def _held_token(contender: str, credential: Any) -> str:
    """The token a credential hands out now.

    Ours: ``get_token()`` (the new token is fresh, so this never calls the refresher). The peers: their
    ``_token`` attribute, because their ``get_token`` on a token that was not refreshed would refresh it now
    (and, with thousands of timer threads still running, queue behind them for a long time).
    """
    if contender == "ours":
        return str(credential.get_token().token)
    return str(credential._token.token)


def run(contender: str, *, quick: bool, mode: str = "due", n: str = "") -> None:
    count = int(n) if n else quick_or_full(quick, 1000, 10000)
    lead = quick_or_full(quick, 4.0, 10.0)
    try:
        factory(contender)
    except Exception as exc:
        emit({"case": CASE, "contender": contender, "status": f"not available: {describe_exception(exc)}"})
        return
    if contender == "floor" and mode == "due":
        result: dict[str, Any] = {"rss_bytes_per_credential": _floor_rss(count)}
    elif mode == "memory":
        result = run_memory(contender, count)
    else:
        result = run_due(contender, count, lead)
    emit({"case": CASE, "contender": contender, "status": "ok", "mode": mode, "n": count, **result})


def _floor_rss(n: int) -> float:
    exp = int(time.time()) + 3600
    gc.collect()
    before = rss()
    floor = [FloorCredential(short_token(exp, i)) for i in range(n)]
    gc.collect()
    after = rss()
    del floor
    return (after - before) / n

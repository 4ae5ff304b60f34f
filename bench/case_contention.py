"""Case 2: 64 threads call ``get_token`` while the token is expired; the refresher takes 200 ms.

Each run builds a credential holding an expired token, starts 64 threads that wait on one event, then
releases them together. Measured per run:

- refresher calls;
- the CPU burnt by the waiting threads: each thread's own CPU time (``time.thread_time``) inside
  ``get_token``, summed, minus the refresher's own CPU (it sleeps), as seconds and as % of one core over the
  refresh window; for cross-checking, the whole process's CPU over the window (which also counts waking the
  64 threads and their exit);
- the wait of each thread (release -> return).

One contender per process (a spinning peer must not steal the CPU of the others). Floor: a lock-and-event
credential (the first caller refreshes, the others block on an ``Event``): what the wait costs when nothing
spins.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from azure.core.credentials import AccessToken

from _common import (
    describe_exception,
    emit,
    make_jwt,
    median,
    peer_module,
    percentile,
    quick_or_full,
)

CASE = "contention"
THREADS = 64
REFRESH_SECONDS = 0.2


class FloorCredential:
    """The floor: one refresh under a lock, waiters block on an event (nothing spins)."""

    def __init__(self, token: str, token_refresher: Any) -> None:
        self._token = AccessToken(token, 0)
        self._refresher = token_refresher
        self._lock = threading.Lock()
        self._done: threading.Event | None = None

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if time.time() < self._token.expires_on - 120:
            return self._token
        with self._lock:
            if time.time() < self._token.expires_on - 120:
                return self._token
            done = self._done
            owner = done is None
            if owner:
                done = self._done = threading.Event()
        assert done is not None
        if owner:
            self._token = self._refresher()
            self._done = None
            done.set()
        else:
            done.wait()
        return self._token


def credential_class(contender: str) -> Any:
    if contender == "ours":
        from azure.communication.common import CommunicationTokenCredential

        return CommunicationTokenCredential
    if contender == "floor":
        return FloorCredential
    return peer_module(contender, "user_credential").CommunicationTokenCredential


def one_run(cls: Any) -> dict[str, Any]:
    fresh = make_jwt(int(time.time()) + 3600)
    fresh_exp = int(time.time()) + 3600
    calls = 0
    refresher_cpu = 0.0

    def refresher() -> AccessToken:
        nonlocal calls, refresher_cpu
        calls += 1
        start = time.thread_time()
        time.sleep(REFRESH_SECONDS)
        refresher_cpu += time.thread_time() - start
        return AccessToken(fresh, fresh_exp)

    credential = cls(make_jwt(int(time.time()) - 60), token_refresher=refresher)
    go = threading.Event()
    released = [0.0]
    waits: list[float] = []
    tokens: list[str] = []
    errors: list[str] = []
    guard = threading.Lock()

    thread_cpu: list[float] = []

    def caller() -> None:
        go.wait()
        cpu_before = time.thread_time()
        try:
            token = credential.get_token().token
        except Exception as exc:
            with guard:
                errors.append(describe_exception(exc))
            return
        done = time.perf_counter()
        spent = time.thread_time() - cpu_before
        with guard:
            waits.append(done - released[0])
            tokens.append(token)
            thread_cpu.append(spent)

    threads = [threading.Thread(target=caller) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)  # let every thread reach go.wait()
    cpu_start = time.process_time()
    released[0] = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join()
    window = time.perf_counter() - released[0]
    process_cpu = time.process_time() - cpu_start - refresher_cpu
    close = getattr(credential, "close", None)
    if close is not None:
        close()
    return {
        "calls": calls,
        "cpu_s": sum(thread_cpu) - refresher_cpu,
        "process_cpu_s": process_cpu,
        "window_s": window,
        "waits": waits,
        "consistent": len(set(tokens)) == 1 and tokens[0] == fresh if tokens else False,
        "errors": errors,
    }


def run(contender: str, *, quick: bool) -> None:
    try:
        cls = credential_class(contender)
    except Exception as exc:
        emit({"case": CASE, "contender": contender, "status": f"not available: {describe_exception(exc)}"})
        return
    runs = [one_run(cls) for _ in range(quick_or_full(quick, 2, 5))]
    waits = [w for r in runs for w in r["waits"]]
    cpu = [r["cpu_s"] for r in runs]
    process_cpu = [r["process_cpu_s"] for r in runs]
    windows = [r["window_s"] for r in runs]
    emit(
        {
            "case": CASE,
            "contender": contender,
            "status": "ok",
            "runs": len(runs),
            "refresher_calls": [r["calls"] for r in runs],
            "cpu_s": median(cpu),
            "cpu_pct_one_core": 100.0 * median([c / w for c, w in zip(cpu, windows, strict=True)]),
            "process_cpu_s": median(process_cpu),
            "process_cpu_pct_one_core": 100.0 * median([c / w for c, w in zip(process_cpu, windows, strict=True)]),
            "window_s": median(windows),
            "wait_p50_ms": 1000 * percentile(waits, 50),
            "wait_p99_ms": 1000 * percentile(waits, 99),
            "all_same_new_token": all(r["consistent"] for r in runs),
            "errors": sorted({e for r in runs for e in r["errors"]}),
        }
    )

"""Case 3: 1,000 asyncio tasks call ``get_token`` on an expired token; the async refresher takes 100 ms.

Measured per run: refresher calls, wall time from the start of the ``gather`` until every task has its token,
each task's latency, and the process CPU over that time. One contender per process: the peers' async
credential "waits" with ``lock.release(); await lock.acquire()``, and an uncontended ``asyncio.Lock.acquire``
returns without yielding, so a waiter spins on the event loop and the refresher's sleep never completes; the
parent kills it at the timeout and records where it was stuck. Floor: every task awaits one shared future
that a single refresh task completes.
"""

from __future__ import annotations

import asyncio
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

CASE = "async_contention"
TASKS = 1000
REFRESH_SECONDS = 0.1


class FloorCredential:
    """The floor: one refresh task, every caller awaits the same future."""

    def __init__(self, token: str, token_refresher: Any) -> None:
        self._token = AccessToken(token, 0)
        self._refresher = token_refresher
        self._pending: asyncio.Future[AccessToken] | None = None

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if time.time() < self._token.expires_on - 120:
            return self._token
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._refresh())
        return await asyncio.shield(self._pending)

    async def _refresh(self) -> AccessToken:
        self._token = await self._refresher()
        self._pending = None
        return self._token

    async def close(self) -> None:
        return None


def credential_class(contender: str) -> Any:
    if contender == "ours":
        from azure.communication.common.aio import CommunicationTokenCredential

        return CommunicationTokenCredential
    if contender == "floor":
        return FloorCredential
    return peer_module(contender, "user_credential_async").CommunicationTokenCredential


async def one_run(cls: Any) -> dict[str, Any]:
    fresh_exp = int(time.time()) + 3600
    fresh = make_jwt(fresh_exp)
    calls = 0

    async def refresher() -> AccessToken:
        nonlocal calls
        calls += 1
        await asyncio.sleep(REFRESH_SECONDS)
        return AccessToken(fresh, fresh_exp)

    credential = cls(make_jwt(int(time.time()) - 60), token_refresher=refresher)
    latencies: list[float] = []
    start = time.perf_counter()

    async def caller() -> str:
        token = await credential.get_token()
        latencies.append(time.perf_counter() - start)
        return str(token.token)

    cpu_start = time.process_time()
    results = await asyncio.gather(*(caller() for _ in range(TASKS)), return_exceptions=True)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    await credential.close()
    errors = sorted({describe_exception(r) for r in results if isinstance(r, BaseException)})
    tokens = {r for r in results if isinstance(r, str)}
    return {
        "calls": calls,
        "wall_s": wall,
        "cpu_s": cpu,
        "latencies": latencies,
        "consistent": tokens == {fresh},
        "errors": errors,
    }


def run(contender: str, *, quick: bool) -> None:
    try:
        cls = credential_class(contender)
    except Exception as exc:
        emit({"case": CASE, "contender": contender, "status": f"not available: {describe_exception(exc)}"})
        return
    runs = [asyncio.run(one_run(cls)) for _ in range(quick_or_full(quick, 2, 5))]
    latencies = [x for r in runs for x in r["latencies"]]
    emit(
        {
            "case": CASE,
            "contender": contender,
            "status": "ok",
            "runs": len(runs),
            "refresher_calls": [r["calls"] for r in runs],
            "all_done_ms": 1000 * median([r["wall_s"] for r in runs]),
            "all_done_max_ms": 1000 * max(r["wall_s"] for r in runs),
            "cpu_s": median([r["cpu_s"] for r in runs]),
            "latency_p50_ms": 1000 * percentile(latencies, 50),
            "latency_p99_ms": 1000 * percentile(latencies, 99),
            "all_same_new_token": all(r["consistent"] for r in runs),
            "errors": sorted({e for r in runs for e in r["errors"]}),
        }
    )

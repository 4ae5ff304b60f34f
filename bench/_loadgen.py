"""The load generator of case 8, in its own process: 32 asyncio workers with one aiohttp session.

Each worker creates its own identity, then repeats ``POST /identities/{id}/:issueAccessToken`` with
``{"scopes": ["chat"]}``, HMAC-signed per request with the project's signing core (``_signing``), for the
duration after a warm-up. ``--vary-lifetime`` sends a different ``expiresInMinutes`` on every request so the
emulator cannot reuse a token it signed for an identical request (every response costs one RSA signature).
Prints one JSON line: requests, requests/s, latency percentiles, errors by kind, and the CPU used by this
process and by the server (``--server-pid``, read with psutil) over the measured window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from itertools import count
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil
import yarl

from azure.communication.common import _signing

API = "api-version=2023-10-01"


def _cpu(process: psutil.Process | None) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return float(times.user + times.system)


def signed_headers(method: str, target: str, host: str, body: bytes, key: bytes) -> dict[str, str]:
    headers = _signing.sign(
        method=method,
        path_and_query=target,
        host=host,
        body_hash=_signing.content_hash(body),
        key=key,
        date=_signing.format_date(time.time()),
    )
    headers["Content-Type"] = "application/json"
    return headers


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    key = _signing.decode_access_key(args.access_key)
    host = urlsplit(args.endpoint).netloc
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lifetimes = count()
    measuring = False
    stop_at = 0.0
    connector = aiohttp.TCPConnector(limit=args.workers)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(target: str, body: bytes) -> tuple[int, bytes]:
            url = yarl.URL(args.endpoint + target, encoded=True)
            headers = signed_headers("POST", target, host, body, key)
            async with session.post(url, data=body, headers=headers) as response:
                return response.status, await response.read()

        async def worker() -> None:
            status, payload = await post(f"/identities?{API}", b"{}")
            if status != 201:
                errors[f"create {status}"] += 1
                return
            identity = json.loads(payload)["identity"]["id"]
            target = f"/identities/{identity}/:issueAccessToken?{API}"
            while True:
                now = time.perf_counter()
                if now >= stop_at:
                    return
                if args.vary_lifetime:
                    minutes = 60 + next(lifetimes) % 1381
                    body = json.dumps({"scopes": ["chat"], "expiresInMinutes": minutes}).encode()
                else:
                    body = b'{"scopes": ["chat"]}'
                start = time.perf_counter()
                try:
                    status, payload = await post(target, body)
                except Exception as exc:
                    if measuring:
                        errors[type(exc).__name__] += 1
                    continue
                elapsed = time.perf_counter() - start
                if not measuring:
                    continue
                if status != 200:
                    errors[f"HTTP {status}"] += 1
                elif b'"token"' not in payload:
                    errors["no token in body"] += 1
                else:
                    latencies.append(elapsed)

        begin = time.perf_counter()
        stop_at = begin + args.warmup + args.duration
        tasks = [asyncio.ensure_future(worker()) for _ in range(args.workers)]
        await asyncio.sleep(args.warmup)
        measuring = True
        server = psutil.Process(args.server_pid) if args.server_pid else None
        server_cpu_start = _cpu(server)
        cpu_start = time.process_time()
        measured_from = time.perf_counter()
        await asyncio.gather(*tasks)
        measured = time.perf_counter() - measured_from
        cpu = time.process_time() - cpu_start
        server_cpu = _cpu(server) - server_cpu_start
    latencies.sort()

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000

    return {
        "requests": len(latencies),
        "seconds": measured,
        "rps": len(latencies) / measured if measured else 0.0,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "errors": dict(errors),
        "error_count": sum(errors.values()),
        "client_cpu_s": cpu,
        "client_cpu_pct_one_core": 100.0 * cpu / measured if measured else 0.0,
        "server_cpu_s": server_cpu,
        "server_cpu_pct_one_core": 100.0 * server_cpu / measured if measured else 0.0,
        "workers": args.workers,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("access_key")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--vary-lifetime", action="store_true")
    parser.add_argument("--server-pid", type=int, default=0)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Case chat: sending Chat messages, 32 concurrent clients on loopback, every request Bearer-authenticated.

Three processes: this worker (idle while it waits), the server (``case_chat.py serve``: the emulator with an
in-memory or a file database) and the load generator (``case_chat.py load``), which also reads the server's
CPU over the measured window. Each of the 32 clients is its own user with its own thread; it sends
``POST /chat/threads/{id}/messages`` again and again, and fetches a new access token every
``--messages-per-token`` messages, so the emulator keeps verifying fresh RS256 signatures while it serves
(a verified token is cached; ``exp`` and revocation are checked on every request). The server reports how
many signatures it verified.

Contenders:

- ``memory``: the emulator with its in-memory database (the goal: at least 1,000 messages/s, p99 under 100 ms);
- ``file``: the same with ``--database`` on a temporary file (WAL mode), reported beside it.

Run it alone: ``python bench/case_chat.py`` (prints both records).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from _common import describe_exception, emit, quick_or_full  # noqa: E402

CASE = "chat"
ACCESS_KEY = base64.b64encode(bytes(range(32))).decode("ascii")
IDENTITY_API = "api-version=2023-10-01"
CHAT_API = "api-version=2024-03-07"


# -- the server process ------------------------------------------------------------------------------


async def _serve(database: str | None) -> None:
    from acs_emulator import Emulator

    async with Emulator(access_key=ACCESS_KEY, database=database, allow_short_tokens=True) as emulator:
        line = {"endpoint": emulator.endpoint, "access_key": ACCESS_KEY, "pid": os.getpid()}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        service = emulator._service
        checks = 0 if service is None else service.chat.verifier.signature_checks
        sys.stdout.write(json.dumps({"signature_checks": checks, "unexpected_errors": emulator.unexpected_errors}))
        sys.stdout.write("\n")
        sys.stdout.flush()


# -- the load generator process ----------------------------------------------------------------------


def _cpu(process: Any) -> float:
    if process is None:
        return 0.0
    times = process.cpu_times()
    return float(times.user + times.system)


async def _load(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp
    import psutil
    import yarl

    from azure.communication.common import _signing

    key = _signing.decode_access_key(args.access_key)
    host = urlsplit(args.endpoint).netloc
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    tokens_issued = 0
    measuring = False
    stop_at = 0.0

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.workers)) as session:

        async def call(method: str, target: str, body: bytes, token: str | None = None) -> tuple[int, bytes]:
            if token is None:
                headers = _signing.sign(
                    method=method,
                    path_and_query=target,
                    host=host,
                    body_hash=_signing.content_hash(body),
                    key=key,
                    date=_signing.format_date(time.time()),
                )
            else:
                headers = {"Authorization": f"Bearer {token}"}
            headers["Content-Type"] = "application/json"
            url = yarl.URL(args.endpoint + target, encoded=True)
            async with session.request(method, url, data=body, headers=headers) as response:
                return response.status, await response.read()

        async def new_token(user: str, serial: int) -> str:
            nonlocal tokens_issued
            # A different lifetime per request: the emulator cannot hand back a token it already signed.
            body = json.dumps({"scopes": ["chat"], "expiresInMinutes": 60 + serial % 1381}).encode()
            status, payload = await call(
                "POST", f"/identities/{quote(user, safe='')}/:issueAccessToken?{IDENTITY_API}", body
            )
            if status != 200:
                raise RuntimeError(f"issue {status}")
            tokens_issued += 1
            return str(json.loads(payload)["token"])

        async def worker(number: int) -> None:
            status, payload = await call("POST", f"/identities?{IDENTITY_API}", b"{}")
            user = json.loads(payload)["identity"]["id"]
            serial = number * 100_000
            token = await new_token(user, serial)
            status, payload = await call("POST", f"/chat/threads?{CHAT_API}", b'{"topic": "bench"}', token)
            if status != 201:
                errors[f"create thread {status}"] += 1
                return
            thread = quote(json.loads(payload)["chatThread"]["id"], safe="")
            target = f"/chat/threads/{thread}/messages?{CHAT_API}"
            sent = 0
            while True:
                if time.perf_counter() >= stop_at:
                    return
                if sent and sent % args.messages_per_token == 0:
                    serial += 1
                    token = await new_token(user, serial)
                body = json.dumps({"content": f"message {sent} from worker {number}", "senderDisplayName": "Bench"})
                start = time.perf_counter()
                try:
                    status, payload = await call("POST", target, body.encode(), token)
                except Exception as exc:
                    if measuring:
                        errors[type(exc).__name__] += 1
                    continue
                elapsed = time.perf_counter() - start
                sent += 1
                if not measuring:
                    continue
                if status != 201:
                    errors[f"HTTP {status}"] += 1
                elif b'"id"' not in payload:
                    errors["no id in body"] += 1
                else:
                    latencies.append(elapsed)

        stop_at = time.perf_counter() + args.warmup + args.duration
        tasks = [asyncio.ensure_future(worker(n)) for n in range(args.workers)]
        await asyncio.sleep(args.warmup)
        measuring = True
        tokens_at_start = tokens_issued
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
        "messages": len(latencies),
        "seconds": measured,
        "rps": len(latencies) / measured if measured else 0.0,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
        "errors": dict(errors),
        "error_count": sum(errors.values()),
        "tokens_issued_measured": tokens_issued - tokens_at_start,
        "tokens_issued": tokens_issued,
        "client_cpu_pct_one_core": 100.0 * cpu / measured if measured else 0.0,
        "server_cpu_pct_one_core": 100.0 * server_cpu / measured if measured else 0.0,
        "workers": args.workers,
    }


# -- the case ----------------------------------------------------------------------------------------


def run(contender: str, *, quick: bool, profile: str = "") -> None:
    """Run one contender (``memory`` or ``file``) and emit its record."""
    duration = quick_or_full(quick, 2.0, 20.0)
    warmup = quick_or_full(quick, 0.5, 1.0)
    with tempfile.TemporaryDirectory(prefix="acs-chat-bench-") as folder:
        server_cmd = [sys.executable, str(Path(__file__).resolve()), "serve"]
        if contender == "file":
            server_cmd += ["--database", os.path.join(folder, "chat.db")]
        server = subprocess.Popen(
            server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert server.stdout is not None
            assert server.stdin is not None
            line = server.stdout.readline()
            if not line:
                stderr = server.stderr.read() if server.stderr else ""
                last = stderr.strip().splitlines()[-1:] or ["no output"]
                emit({"case": CASE, "contender": contender, "status": f"crashed: {last[0][:80]}"})
                return
            info = json.loads(line)
            load_cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "load",
                info["endpoint"],
                info["access_key"],
                "--duration",
                str(duration),
                "--warmup",
                str(warmup),
                "--server-pid",
                str(info["pid"]),
            ]
            load = subprocess.run(load_cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
            server.stdin.close()
            stats = json.loads(server.stdout.readline() or "{}")
            if load.returncode != 0:
                last = load.stderr.strip().splitlines()[-1:] or ["no output"]
                emit({"case": CASE, "contender": contender, "status": f"load generator crashed: {last[0][:80]}"})
                return
            result: dict[str, Any] = json.loads(load.stdout.strip().splitlines()[-1])
            emit({"case": CASE, "contender": contender, "status": "ok", **result, **stats})
        except Exception as exc:
            emit({"case": CASE, "contender": contender, "status": f"crashed: {describe_exception(exc)}"})
        finally:
            if server.stdin is not None and not server.stdin.closed:
                server.stdin.close()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode")
    serve = sub.add_parser("serve")
    serve.add_argument("--database", default=None)
    load = sub.add_parser("load")
    load.add_argument("endpoint")
    load.add_argument("access_key")
    load.add_argument("--workers", type=int, default=32)
    load.add_argument("--duration", type=float, default=20.0)
    load.add_argument("--warmup", type=float, default=1.0)
    load.add_argument("--messages-per-token", type=int, default=200)
    load.add_argument("--server-pid", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.mode == "serve":
        asyncio.run(_serve(args.database))
    elif args.mode == "load":
        sys.stdout.write(json.dumps(asyncio.run(_load(args))) + "\n")
    else:
        for contender in ("memory", "file"):
            run(contender, quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())

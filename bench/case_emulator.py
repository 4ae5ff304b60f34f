"""Case 8: emulator ``issueAccessToken`` throughput, 32 concurrent signed clients on loopback.

Three processes: this worker (idle while it waits), the server (``_emulator_proc.py``: the emulator with
its in-memory store, or the floor server) and the load generator (``_loadgen.py``), which also reads the
server's CPU over the measured window. Variants:

- ``ours``: each of the 32 clients has its own identity and asks for a ``chat`` token again and again
  (the emulator may reuse a token it signed for an identical request in the same second);
- ``ours_uncached``: the same, with a different ``expiresInMinutes`` on every request, so every response
  costs an RSA-2048 signature;
- ``floor``: a bare aiohttp server on the same route returning a constant body (no HMAC check, no JWT,
  no store).

No peer package has an emulator.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import describe_exception, emit, quick_or_full

CASE = "emulator"
BENCH = Path(__file__).resolve().parent


def rsa_cost(*, quick: bool) -> dict[str, float]:
    """What one RSA-2048 signature costs here, alone (after the load run, with the servers gone).

    CPU per signature on one thread, and signatures per second on two threads at once (``cryptography``
    releases the GIL while it signs): the ceiling the every-response-signed variant would reach if the
    server and the load generator cost nothing.
    """
    import threading

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(65537, 2048)
    message = b"x" * 600
    n = 100 if quick else 400

    def sign(count: int) -> None:
        for _ in range(count):
            key.sign(message, padding.PKCS1v15(), hashes.SHA256())

    sign(10)
    start = time.thread_time()
    sign(n)
    cpu_ms = (time.thread_time() - start) / n * 1000
    threads = [threading.Thread(target=sign, args=(n,)) for _ in range(2)]
    wall = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    two_threads = 2 * n / (time.perf_counter() - wall)
    return {"rsa_sign_cpu_ms": cpu_ms, "rsa_two_threads_per_s": two_threads}


def run(contender: str, *, quick: bool, profile: str = "") -> None:
    duration = quick_or_full(quick, 2.0, 20.0)
    warmup = quick_or_full(quick, 0.5, 1.0)
    kind = "floor" if contender == "floor" else "emulator"
    server_cmd = [sys.executable, str(BENCH / "_emulator_proc.py"), kind]
    if profile:
        server_cmd += ["--profile", profile]
    server = subprocess.Popen(
        server_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            stderr = server.stderr.read() if server.stderr else ""
            last = stderr.strip().splitlines()[-1:] or ["no output"]
            emit({"case": CASE, "contender": contender, "status": f"crashed: {last[0][:80]}"})
            return
        info = json.loads(line)
        load_cmd = [
            sys.executable,
            str(BENCH / "_loadgen.py"),
            info["endpoint"],
            info["access_key"],
            "--duration",
            str(duration),
            "--warmup",
            str(warmup),
            "--server-pid",
            str(info["pid"]),
        ]
        if contender == "ours_uncached":
            load_cmd.append("--vary-lifetime")
        load = subprocess.run(load_cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
        if load.returncode != 0:
            last = load.stderr.strip().splitlines()[-1:] or ["no output"]
            emit({"case": CASE, "contender": contender, "status": f"load generator crashed: {last[0][:80]}"})
            return
        result: dict[str, Any] = json.loads(load.stdout.strip().splitlines()[-1])
        if contender == "ours_uncached":
            result.update(rsa_cost(quick=quick))
        emit({"case": CASE, "contender": contender, "status": "ok", **result})
    except Exception as exc:
        emit({"case": CASE, "contender": contender, "status": f"crashed: {describe_exception(exc)}"})
    finally:
        if server.stdin is not None:
            server.stdin.close()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

"""Profile our side of a case whose goal was missed (``python bench/_profile.py CASE`` runs one by hand).

cProfile for the CPU-bound cases (1, 5, 6, 7), tracemalloc allocation sites for the memory of case 4, and a
cProfile of the emulator's serving process under load for case 8. The output (top rows by own time) goes
into ``BENCHMARKS.md`` under the case.
"""

from __future__ import annotations

import cProfile
import io
import json
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
TOP = 14


def _stats_text(profiler_or_path: cProfile.Profile | str, top: int = TOP) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler_or_path, stream=out)  # type: ignore[arg-type]
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    text = out.getvalue()
    # Keep the table only (drop pstats' preamble of file names and the blank lines).
    body = text[text.find("   ncalls") :] if "   ncalls" in text else text
    return "\n".join(line for line in body.splitlines() if line.strip())


def _profile_calls(fn: Callable[[], object], n: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        fn()
    profiler.disable()
    return _stats_text(profiler)


def profile_hot_path() -> str:
    import case_hot_path
    from _common import make_jwt

    contenders, _ = case_hot_path.build_contenders(make_jwt(int(time.time()) + 3600))
    return _profile_calls(contenders["ours"], 200_000)


def profile_signing() -> str:
    import case_signing

    found, _ = case_signing.policies()
    policy = found["ours"]
    requests = [case_signing.new_request(json_body=case_signing.BODY) for _ in range(20_000)]
    profiler = cProfile.Profile()
    profiler.enable()
    for request in requests:
        policy.on_request(request)
    profiler.disable()
    return _stats_text(profiler)


def profile_identifiers() -> str:
    import case_identifiers
    from azure.communication.common import identifier_from_raw_id, serialize_identifier

    raw_ids = [raw for raw, _ in case_identifiers.load_mix()]
    identifiers = [identifier_from_raw_id(r) for r in raw_ids]

    def both() -> None:
        for raw in raw_ids:
            identifier_from_raw_id(raw)
        for identifier in identifiers:
            serialize_identifier(identifier)

    return _profile_calls(both, 2_000)


def profile_jwt() -> str:
    import case_jwt
    from _common import make_jwt

    _, parse = case_jwt.our_parser()
    token = make_jwt(int(time.time()) + 3600)
    return _profile_calls(lambda: parse(token), 100_000)


def profile_scale() -> str:
    import tracemalloc

    from azure.core.credentials import AccessToken

    import case_scale
    from azure.communication.common import CommunicationTokenCredential

    n = 5000
    exp = int(time.time()) + 3600
    refreshers = case_scale.Refreshers(n, AccessToken("x", exp))
    tracemalloc.start(8)
    snapshot_before = tracemalloc.take_snapshot()
    credentials = [
        CommunicationTokenCredential(
            case_scale.short_token(exp, i), token_refresher=refreshers.functions[i], proactive_refresh=True
        )
        for i in range(n)
    ]
    snapshot_after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    lines = [f"allocation sites still alive after building {n:,} credentials, bytes per credential:"]
    for stat in snapshot_after.compare_to(snapshot_before, "lineno")[:TOP]:
        frame = stat.traceback[0]
        lines.append(f"{stat.size_diff / n:8.0f} B  {Path(frame.filename).name}:{frame.lineno}")
    for credential in credentials:
        credential.close()
    return "\n".join(lines)


def profile_emulator(quick: bool) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = str(Path(tmp) / "emulator.prof")
        server = subprocess.Popen(
            [sys.executable, str(BENCH / "_emulator_proc.py"), "emulator", "--profile", stats_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        assert server.stdin is not None
        info = json.loads(server.stdout.readline())
        subprocess.run(
            [
                sys.executable,
                str(BENCH / "_loadgen.py"),
                info["endpoint"],
                info["access_key"],
                "--duration",
                "3" if quick else "6",
                "--warmup",
                "0.5",
                "--vary-lifetime",
            ],
            capture_output=True,
            check=False,
            timeout=120,
        )
        server.stdin.close()
        server.wait(timeout=60)
        return "emulator process under the uncached load (cProfile slows it down):\n" + _stats_text(stats_path)


PROFILERS: dict[str, Callable[[bool], str]] = {
    "1": lambda quick: profile_hot_path(),
    "4": lambda quick: profile_scale(),
    "5": lambda quick: profile_signing(),
    "6": lambda quick: profile_identifiers(),
    "7": lambda quick: profile_jwt(),
    "8": profile_emulator,
}


def profile_misses(results: dict[str, Any], *, quick: bool) -> dict[str, str]:
    """Profile ours for every case whose goal was missed; each profile runs in a subprocess."""
    from _report import verdicts

    out: dict[str, str] = {}
    for number, (met, _result, _body) in verdicts(results).items():
        if met is not False or number not in PROFILERS:
            continue
        cmd = [sys.executable, str(Path(__file__).resolve()), number]
        if quick:
            cmd.append("--quick")
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, cwd=BENCH)
        except subprocess.TimeoutExpired:
            out[number] = "profiling timed out"
            continue
        out[number] = done.stdout if done.returncode == 0 else f"profiling failed:\n{done.stderr[-2000:]}"
        print(f"profiled case {number}", flush=True)
    return out


def main() -> int:
    sys.path.insert(0, str(BENCH))
    number = sys.argv[1]
    quick = "--quick" in sys.argv
    sys.stdout.write(PROFILERS[number](quick) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

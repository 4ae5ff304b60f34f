"""Benchmarks against the peers and the floor; writes ``BENCHMARKS.md`` (``make bench``).

Usage::

    .venv/bin/python bench/run.py            # full run (about 7 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick    # smoke run (about 1 minute)
    .venv/bin/python bench/run.py --only 1,5 --out /tmp/b.md

Every case runs in worker subprocesses with a timeout (``_runner.py``): a contender that hangs or crashes is
recorded as such. Micro-benchmarks run every contender interleaved in one process, so the ratios come from
one process and one run; cases where a peer spins, hangs or starts thousands of threads run each contender
in its own process. Raw results go to ``bench/results.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import render
from _runner import run_case

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = ["identity", "chat", "callautomation"]


@dataclass
class Job:
    case: str
    contender: str
    expected: list[str]
    timeout: Callable[[bool], float]
    options: dict[str, str] = field(default_factory=dict)


def _fixed(quick_s: float, full_s: float) -> Callable[[bool], float]:
    return lambda quick: quick_s if quick else full_s


def jobs_for(number: int, *, quick: bool = False, peer_due: int = 0) -> list[Job]:
    each = ["ours", *PEERS, "floor"]
    if number == 1:
        names = [*each, "floor_bare"]
        return [Job("hot_path", "all", names, _fixed(90, 240))]
    if number == 2:
        return [Job("contention", c, [c], _fixed(30, 60)) for c in each]
    if number == 3:
        # 10 s: the peers' async credential never finishes; the others take ~0.1 s per run.
        return [Job("async_contention", c, [c], _fixed(4, 10)) for c in each]
    if number == 4:
        jobs = [Job("scale", c, [c], _fixed(40, 120), {"mode": "memory"}) for c in each]
        for c in each:
            options = {"mode": "due"}
            if c in PEERS and peer_due and not quick:
                options["n"] = str(peer_due)
            jobs.append(Job("scale", c, [c], _fixed(40, 120), options))
        return jobs
    if number == 5:
        names = [f"small:{c}" for c in each] + [f"large_bytes:{c}" for c in each]
        return [Job("signing", "all", names, _fixed(120, 400))]
    if number == 6:
        names = [f"parse:{c}" for c in each] + [
            "serialize:ours",
            "serialize:identity",
            "serialize:chat",
            "serialize:callautomation",
            "serialize:callautomation_wire",
            "serialize:floor",
        ]
        return [Job("identifiers", "all", names, _fixed(90, 240))]
    if number == 7:
        return [Job("jwt", "all", each, _fixed(90, 240))]
    if number == 8:
        return [Job("emulator", c, [c], _fixed(60, 100)) for c in ("ours", "ours_uncached", "floor")]
    if number == 9:
        names = [
            "floor:python",
            "floor:azure_core",
            "ours:import",
            "ours:identifiers",
            "ours:full",
            "ours:full_with_aio",
            "ours:cli_id_parse",
            "ours:cli_token_inspect",
        ]
        return [Job("startup", "all", names, _fixed(150, 600))]
    if number == 10:
        return [Job("chat", c, [c], _fixed(60, 100)) for c in ("memory", "file")]
    raise ValueError(f"no case {number}")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    import importlib.metadata as metadata

    names = [
        "azure-communication-common",
        "azure-core",
        "azure-communication-identity",
        "azure-communication-chat",
        "azure-communication-callautomation",
        "aiohttp",
        "PyJWT",
        "cryptography",
    ]
    found: dict[str, str] = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def git_revision() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes" if dirty else "")


def machine() -> dict[str, Any]:
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": affinity,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "versions": versions(),
        "revision": git_revision(),
        "load_before": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke-run sizes (about a minute)")
    parser.add_argument("--only", default="1,2,3,4,5,6,7,8,9,10", help="comma-separated case numbers")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"), help="the Markdown report")
    parser.add_argument("--json", default=str(BENCH / "results.json"), help="the raw results")
    parser.add_argument(
        "--peer-due",
        type=int,
        default=2000,
        help="credentials per peer in case 4's all-due run (0: 10,000 as for ours; the peers start one\n"
        "thread per credential, and at 10,000 they had not finished after 150 s when tried)",
    )
    parser.add_argument(
        "--profile",
        choices=["auto", "yes", "no"],
        default="auto",
        help="profile ours where a goal is missed (auto: in full runs only)",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the Markdown report from the raw results (--json) without running anything",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        saved = json.loads(Path(args.json).read_text(encoding="utf-8"))
        Path(args.out).write_text(render(saved["machine"], saved["results"], saved["profiles"]), encoding="utf-8")
        print(f"wrote {args.out} from {args.json}", flush=True)
        return 0
    numbers = [int(n) for n in args.only.split(",") if n.strip()]
    started = time.monotonic()
    info = machine()
    info["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    info["mode"] = "quick" if args.quick else "full"
    results: dict[str, list[dict[str, Any]]] = {}
    for number in numbers:
        case_started = time.monotonic()
        records: list[dict[str, Any]] = []
        for job in jobs_for(number, quick=args.quick, peer_due=args.peer_due):
            records += run_case(
                job.case,
                job.contender,
                quick=args.quick,
                timeout=job.timeout(args.quick),
                expected=job.expected,
                options=job.options,
            )
        results[str(number)] = records
        print(f"case {number}: {len(records)} rows in {time.monotonic() - case_started:.1f} s", flush=True)
    profiles: dict[str, str] = {}
    if args.profile == "yes" or (args.profile == "auto" and not args.quick):
        from _profile import profile_misses

        profiles = profile_misses(results, quick=args.quick)
    info["load_after"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    info["elapsed_s"] = time.monotonic() - started
    Path(args.json).write_text(
        json.dumps({"machine": info, "results": results, "profiles": profiles}, indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    Path(args.out).write_text(render(info, results, profiles), encoding="utf-8")
    print(f"wrote {args.out} and {args.json} in {info['elapsed_s']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run a case in a worker subprocess with a timeout; turn hangs and crashes into result rows.

A contender that hangs is killed at the timeout and recorded as ``hung after N s`` with the frame it was stuck
in (from ``faulthandler``); one that crashes is recorded as ``crashed: ExceptionType``. Rows already reported
by the worker before the hang or crash are kept.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import RESULT_PREFIX

BENCH_DIR = Path(__file__).resolve().parent
_EXC_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Timeout)\w*)(?::|$)")
_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)')


def _exception_type(stderr: str) -> str:
    for line in reversed(stderr.strip().splitlines()):
        match = _EXC_LINE.match(line.strip())
        if match:
            return match.group(1).rsplit(".", 1)[-1]
    return "unknown error"


def _stuck_frame(stderr: str) -> str | None:
    """The outermost 3 frames inside an azure package of the first thread that has any (else any thread)."""
    threads: list[list[tuple[str, str, str]]] = []
    for line in stderr.splitlines():
        if line.startswith(("Thread 0x", "Current thread 0x")):
            threads.append([])
            continue
        match = _FRAME.match(line)
        if match and threads:
            threads[-1].append((match["file"], match["line"], match["func"]))
    for frames in threads:
        inside = [
            f"{func} ({file.split('/azure/communication/', 1)[1]}:{line})"
            for file, line, func in frames
            if "/azure/communication/" in file
        ]
        if inside:
            return " ← ".join(inside[-3:])
    for frames in threads:
        if frames:
            file, line, func = frames[0]
            return f"{func} ({Path(file).name}:{line})"
    return None


def run_case(
    case: str,
    contender: str,
    *,
    quick: bool,
    timeout: float,
    expected: list[str],
    options: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run ``case`` for ``contender`` and return one record per expected contender.

    Args:
        case: the case module suffix (``hot_path`` for ``case_hot_path.py``).
        contender: what the worker runs (``ours``, a peer name, ``floor`` or ``all``).
        quick: smoke-run sizes.
        timeout: seconds before the worker is killed and the missing contenders recorded as hung.
        expected: contenders the worker should report; any it does not are recorded as hung or crashed.
        options: extra ``key=value`` options for the case.
    """
    cmd = [sys.executable, str(BENCH_DIR / "worker.py"), case, contender]
    if quick:
        cmd.append("--quick")
    cmd += ["--hang-dump", f"{max(1.0, timeout - 1.5):.1f}"]
    for key, value in (options or {}).items():
        cmd += ["--option", f"{key}={value}"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=BENCH_DIR)
    hung = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        proc.kill()
        stdout, stderr = proc.communicate()
    elapsed = time.monotonic() - started
    records: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            records.append(json.loads(line[len(RESULT_PREFIX) :]))
    reported = {r.get("contender") for r in records}
    for name in expected:
        if name in reported:
            continue
        record: dict[str, Any] = {"case": case, "contender": name}
        if hung:
            record["status"] = f"hung after {timeout:.0f} s"
            frame = _stuck_frame(stderr)
            if frame:
                record["stuck_in"] = frame
            elif "Timeout (" not in stderr:
                record["status"] += " (starved: even its stack-dump thread never ran)"
        elif proc.returncode != 0:
            record["status"] = f"crashed: {_exception_type(stderr)}"
        else:
            record["status"] = "no result"
        record["stderr_tail"] = "\n".join(stderr.strip().splitlines()[-6:])
        records.append(record)
    for record in records:
        record.setdefault("wall_s", round(elapsed, 2))
    return records

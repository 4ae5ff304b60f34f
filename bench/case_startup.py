"""Case 9: start-up time, in fresh interpreters, against ``import azure.core.credentials`` in the same run.

Every command is a new ``python`` process, timed wall to wall from the parent (``perf_counter`` around
``subprocess.run``): interpreter start, imports, the work, exit; its CPU time (user + system) is read from the
child's rusage. The full-import ratio is judged on CPU time, as the micro-benchmarks are; the CLI goals are
wall-clock goals. The commands run interleaved, one of each
per round in a rotating order, so a neighbour's burst of load hits them all alike; the figures are medians
over the rounds. Bytecode caches are on (``PYTHONDONTWRITEBYTECODE`` removed, ``PYTHONPYCACHEPREFIX`` pointed
at a temporary directory, one warm-up run of each command), as for an installed package, without writing
``__pycache__`` into the checkout.

Contenders:

- ``floor:python``: ``python -c pass``, the interpreter alone;
- ``floor:azure_core``: ``import azure.core.credentials``, the runtime dependency (the reference);
- ``ours:import``: ``import azure.communication.common`` (names load on first use);
- ``ours:identifiers``: the import plus ``identifier_from_raw_id`` (goal: no azure-core imported);
- ``ours:full``: ``from azure.communication.common import *`` (every name loaded; goal: at most 10% over
  ``floor:azure_core``);
- ``ours:full_with_aio``: the same plus ``azure.communication.common.aio`` (informational: the async
  credential needs asyncio, which ``import azure.core.credentials`` does not load);
- ``ours:cli_id_parse`` and ``ours:cli_token_inspect``: the ``acs-common`` console script's offline commands
  (goal: under 100 ms wall, and no azure-core imported).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit, make_jwt, median, percentile

CASE = "startup"

#: The goals of issue 16 item 4.
FULL_IMPORT_MAX_OVERHEAD = 0.10
CLI_MAX_MS = 100.0

_CORE_LOADED = "import sys, json; print(json.dumps(sorted(m for m in sys.modules if m.startswith('azure.core'))))"


def _console_script() -> list[str]:
    """``acs-common`` as installed beside this interpreter, else the same entry point through ``-c``."""
    script = shutil.which("acs-common", path=str(Path(sys.executable).parent))
    if script is not None:
        return [script]
    return [sys.executable, "-c", "import sys; from azure.communication.common._cli import main; sys.exit(main())"]


def commands() -> dict[str, list[str]]:
    """Each contender's command line."""
    python = sys.executable
    cli = _console_script()
    token = make_jwt(time.time() + 3600)
    return {
        "floor:python": [python, "-c", "pass"],
        "floor:azure_core": [python, "-c", "import azure.core.credentials"],
        "ours:import": [python, "-c", "import azure.communication.common"],
        "ours:identifiers": [
            python,
            "-c",
            "import azure.communication.common as c; c.identifier_from_raw_id('4:+14255550123')",
        ],
        "ours:full": [python, "-c", "from azure.communication.common import *"],
        "ours:full_with_aio": [
            python,
            "-c",
            "from azure.communication.common import *; from azure.communication.common.aio import *",
        ],
        "ours:cli_id_parse": [*cli, "id", "parse", "4:+14255550123"],
        "ours:cli_token_inspect": [*cli, "token", "inspect", token],
    }


# What each goal-bearing contender must not import, checked once in a fresh interpreter.
_MODULE_CHECKS: dict[str, str] = {
    "ours:identifiers": "import azure.communication.common as c; c.identifier_from_raw_id('4:+14255550123')\n",
    "ours:cli_id_parse": (
        "import contextlib, io\nfrom azure.communication.common._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['id', 'parse', '4:+14255550123'])\n"
    ),
    "ours:cli_token_inspect": (
        "import contextlib, io\nfrom azure.communication.common._cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['token', 'inspect', 'a.b.c'])\n"
    ),
}


def _environment(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    env["NO_COLOR"] = "1"
    return env


def _time_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv`` once: its wall time and its CPU time (user + system, from the child's rusage), in ms."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # token inspect exits 0 for a valid token; anything else would time an error path.
    if done.returncode != 0:
        raise RuntimeError(f"{argv[1:]} exited {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed * 1000.0, cpu * 1000.0


def _core_modules(code: str, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code + _CORE_LOADED], env=env, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def measure(rounds: int) -> dict[str, Any]:
    """Time every command ``rounds`` times, interleaved; return per-contender samples and module checks."""
    argvs = commands()
    names = list(argvs)
    with tempfile.TemporaryDirectory(prefix="acs-startup-pycache-") as cache:
        env = _environment(cache)
        for argv in argvs.values():  # warm-up: write the bytecode caches
            _time_once(argv, env)
        samples: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for number in range(rounds):
            shift = number % len(names)
            for name in names[shift:] + names[:shift]:
                wall_ms, cpu_ms = _time_once(argvs[name], env)
                samples[name].append(wall_ms)
                cpu[name].append(cpu_ms)
        modules = {name: _core_modules(code, env) for name, code in _MODULE_CHECKS.items()}
    return {"samples": samples, "cpu": cpu, "core_modules": modules}


def run(contender: str, *, quick: bool) -> None:
    """Emit one record per contender; the goal-bearing ones carry their verdict."""
    rounds = 7 if quick else 31
    measured = measure(rounds)
    samples: dict[str, list[float]] = measured["samples"]
    cpu_samples: dict[str, list[float]] = measured["cpu"]
    core_ms = median(samples["floor:azure_core"])
    core_cpu_ms = median(cpu_samples["floor:azure_core"])
    python_ms = median(samples["floor:python"])
    for name, values in samples.items():
        ms = median(values)
        cpu_ms = median(cpu_samples[name])
        record: dict[str, Any] = {
            "case": CASE,
            "contender": name,
            "status": "ok",
            "ms": round(ms, 1),
            "ms_min": round(min(values), 1),
            "ms_p90": round(percentile(values, 90), 1),
            "cpu_ms": round(cpu_ms, 1),
            "rounds": len(values),
            "over_python_ms": round(ms - python_ms, 1),
            "vs_azure_core": round(ms / core_ms, 3),
            "cpu_vs_azure_core": round(cpu_ms / core_cpu_ms, 3),
        }
        if name in measured["core_modules"]:
            loaded = measured["core_modules"][name]
            record["azure_core_modules"] = len(loaded)
        if name == "ours:identifiers":
            record["goal"] = "imports no azure-core"
            record["goal_met"] = record["azure_core_modules"] == 0
        elif name == "ours:full":
            record["goal"] = f"at most {FULL_IMPORT_MAX_OVERHEAD:.0%} over import azure.core.credentials"
            # Judged on CPU time, as the micro-benchmarks are: on a shared machine the wall time of a 100 ms
            # process also counts the time it waited for a core, which moves the ratio by several per cent
            # between runs. Both ratios are recorded.
            record["overhead"] = round(cpu_ms / core_cpu_ms - 1.0, 3)
            record["wall_overhead"] = round(ms / core_ms - 1.0, 3)
            record["goal_met"] = cpu_ms <= core_cpu_ms * (1.0 + FULL_IMPORT_MAX_OVERHEAD)
        elif name.startswith("ours:cli_"):
            record["goal"] = f"under {CLI_MAX_MS:.0f} ms wall, no azure-core"
            record["goal_met"] = ms < CLI_MAX_MS and record["azure_core_modules"] == 0
        emit(record)


if __name__ == "__main__":  # ``python bench/case_startup.py [--quick]``: a readable table without run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        run("all", quick="--quick" in sys.argv)
    for line in buffer.getvalue().splitlines():
        row = json.loads(line.split(" ", 1)[1])
        verdict = "" if "goal_met" not in row else ("  goal met" if row["goal_met"] else "  GOAL MISSED")
        print(
            f"{row['contender']:24} {row['ms']:7.1f} ms wall, {row['cpu_ms']:7.1f} ms CPU "
            f"(x{row['vs_azure_core']:.2f} / x{row['cpu_vs_azure_core']:.3f} of azure-core){verdict}"
        )

"""Run one benchmark case for one contender (or ``all``) in this process; called by ``_runner.py``.

Usage: ``python bench/worker.py CASE CONTENDER [--quick] [--hang-dump SECONDS]``. Results are printed as
``RESULT {json}`` lines. With ``--hang-dump`` the stacks of every thread are written to stderr shortly before
the parent's timeout, so a hang is reported with the function it is stuck in.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import threading
import time
import traceback


def _dump_stacks_after(seconds: float) -> None:
    """Print every thread's stack to stderr (faulthandler's layout) if the worker is still running.

    A Python thread rather than ``faulthandler.dump_traceback_later``: faulthandler walks the frames of a
    thread that is running without holding the GIL, which crashed 3.11 on a spinning peer (SIGSEGV).
    """
    time.sleep(seconds)
    lines = [f"Timeout ({seconds:.1f} s)!"]
    for ident, frame in sys._current_frames().items():
        if ident == threading.get_ident():
            continue
        lines.append(f"Thread 0x{ident:016x} (most recent call first):")
        for summary in reversed(traceback.extract_stack(frame)):
            lines.append(f'  File "{summary.filename}", line {summary.lineno} in {summary.name}')
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("contender")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--hang-dump", type=float, default=0.0)
    parser.add_argument("--option", action="append", default=[])
    args = parser.parse_args()
    if args.hang_dump > 0:
        threading.Thread(target=_dump_stacks_after, args=(args.hang_dump,), daemon=True).start()
    module = importlib.import_module(f"case_{args.case}")
    options = dict(item.split("=", 1) for item in args.option)
    code = 0
    try:
        module.run(args.contender, quick=args.quick, **options)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # Leftover threads (a peer's timer threads, a spinning waiter) must not keep the worker alive.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())

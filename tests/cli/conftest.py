"""Fixtures for the CLI tests: a shared in-process emulator, a clean environment, and the demo's runs."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cli_support import CONNECTION_STRING_ENV, DEFAULT_DEMO, RESOURCE_DEMO, SHORT_DEMO, Run, cli_env


@pytest.fixture(scope="package")
def emulator() -> Iterator[Any]:
    """One in-process emulator (short tokens allowed) for the CLI tests."""
    from acs_emulator import Emulator

    with Emulator(allow_short_tokens=True) as running:
        yield running


@pytest.fixture(scope="package")
def demo_runs(emulator: Any) -> dict[tuple[str, ...], Run]:
    """The three demo examples, keyed by their arguments (``RESOURCE_DEMO`` reads the emulator's string)."""
    from azure.communication.common._cli import main

    # Two as subprocesses (the default one is what ``make demo`` runs), while the third runs in-process, so
    # that the real-resource path counts in the coverage figures; together they take about as long as one.
    processes = {
        args: subprocess.Popen(
            [sys.executable, "-m", "azure.communication.common", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        for args in (DEFAULT_DEMO, SHORT_DEMO)
    }
    outputs: dict[tuple[str, ...], tuple[str, str]] = {}

    def communicate(args: tuple[str, ...]) -> None:
        # A generous bound on a run that takes about 20 s: it only ends a hung demo.
        outputs[args] = processes[args].communicate(timeout=120)

    readers = [threading.Thread(target=communicate, args=(args,)) for args in processes]
    runs: dict[tuple[str, ...], Run] = {}
    try:
        for reader in readers:
            reader.start()
        out, err = io.StringIO(), io.StringIO()
        with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            patch.delenv(CONNECTION_STRING_ENV, raising=False)
            patch.setattr(sys, "stdin", io.StringIO(emulator.connection_string + "\n"))
            code = main(list(RESOURCE_DEMO))
        runs[RESOURCE_DEMO] = Run(code, out.getvalue(), err.getvalue())
        for reader in readers:
            reader.join()
        for args, process in processes.items():
            runs[args] = Run(process.returncode, *outputs[args])
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return runs


@pytest.fixture(autouse=True)
def _no_connection_string_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process tests must not pick up a developer's real connection string.
    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)

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

    # The default run as a subprocess (the one ``make demo`` makes); the other two in-process, one after the
    # other (they share sys.stdout), while the subprocess runs: so both the emulated and the real-resource
    # paths count in the coverage figures.
    process = subprocess.Popen(
        [sys.executable, "-m", "azure.communication.common", *DEFAULT_DEMO],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    outputs: list[tuple[str, str]] = []
    # A generous bound on a run that takes about 20 s: it only ends a hung demo.
    reader = threading.Thread(target=lambda: outputs.append(process.communicate(timeout=120)))
    runs: dict[tuple[str, ...], Run] = {}
    try:
        reader.start()
        for args, stdin in ((SHORT_DEMO, ""), (RESOURCE_DEMO, emulator.connection_string + "\n")):
            out, err = io.StringIO(), io.StringIO()
            with (
                pytest.MonkeyPatch.context() as patch,
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
            ):
                patch.delenv(CONNECTION_STRING_ENV, raising=False)
                patch.setattr(sys, "stdin", io.StringIO(stdin))
                code = main(list(args))
            runs[args] = Run(code, out.getvalue(), err.getvalue())
        reader.join()
        runs[DEFAULT_DEMO] = Run(process.returncode, *outputs[0])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return runs


@pytest.fixture(autouse=True)
def _no_connection_string_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process tests must not pick up a developer's real connection string.
    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)

"""Every ``--help`` example runs, and exits 0.

The examples of the top level, of every subcommand and of ``acs-common emulator`` are read from the parsers'
epilogs (``cli_examples``) and run in-process through ``main([...])``, against the package's emulator, with the
variables, files, stdin and environment the examples imply (``$TOKEN`` is a user access token, ``$ID`` a user,
``key.txt`` an access key...). The demo's three examples are run once per package (``demo_runs``), two of
them as subprocesses. The one liberty taken: an emulator example's port becomes 0 (a free
port), since a fixed one may be taken on a shared machine.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from cli_examples import Example, epilogs, examples_in, expand, parse_example
from cli_support import CONNECTION_STRING_ENV, Run

from azure.communication.common._cli import build_parser, main

API = "api-version=2023-10-01"
# The subcommands that cannot run without a connection string: their examples imply the environment variable.
NEEDS_CONNECTION_STRING = {"request", "sign"}
# What the CLI reads from the environment: the only names an ``export`` example may set.
ENVIRONMENT = {CONNECTION_STRING_ENV}
ACCESS_KEY = base64.b64encode(b"the key of an example's emulator").decode("ascii")


def _collect() -> list[Example]:
    from acs_emulator._cli import build_parser as emulator_parser

    sources = epilogs(build_parser())
    # ``acs-common emulator`` forwards to the emulator's own parser, which names itself after acs-common.
    sources.append(("acs-common emulator", emulator_parser("acs-common emulator").epilog or ""))
    examples: dict[str, Example] = {}
    for source, epilog in sources:
        for line in examples_in(epilog):
            examples.setdefault(line, parse_example(source, line))
    return list(examples.values())


EXAMPLES = _collect()


def test_every_command_shows_examples() -> None:
    commands = {example.argv[0] for example in EXAMPLES if example.argv}
    assert commands == {"demo", "emulator", "token", "id", "request", "sign"}
    assert len(EXAMPLES) >= 25


class _Banner(io.StringIO):
    """The emulator's stdout: tells when the start-up banner (with its connection string) has been written."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if "connection string:" in self.getvalue():
            self.ready.set()
        return written


def _serve_once(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Run an emulator example in-process and stop it with Ctrl+C once its banner is out, as a user would."""
    banner = _Banner()
    monkeypatch.setattr(sys, "stdout", banner)
    finished = threading.Event()

    def interrupt() -> None:
        # The banner is printed after the emulator's signal handlers are installed, so SIGINT reaches them.
        # Without a banner the interrupt still comes, later: the example then fails (exit 130), it never hangs.
        banner.ready.wait(30)
        if not finished.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=interrupt)
    watcher.start()
    try:
        code = main(argv)
    finally:
        finished.set()
        banner.ready.set()
        watcher.join()
    return code, banner.getvalue()


def _free_port(argv: tuple[str, ...]) -> list[str]:
    args = list(argv)
    if "--port" in args:
        args[args.index("--port") + 1] = "0"
    else:
        args += ["--port", "0"]
    return args


@pytest.fixture
def example_env(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The variables the examples use, and the files they read, in a fresh working directory."""
    from azure.communication.identity import CommunicationIdentityClient
    from azure.core.credentials import AzureKeyCredential

    client = CommunicationIdentityClient(emulator.endpoint.rstrip("/"), AzureKeyCredential(emulator.access_key))
    user, token = client.create_user_and_token(["chat"])
    variables = {"ID": user.properties["id"], "TOKEN": token.token}
    files = {
        "token.txt": token.token + "\n",
        "connection-string.txt": emulator.connection_string + "\n",
        "secret.txt": emulator.connection_string + "\n",
        "key.txt": ACCESS_KEY + "\n",
        "body.json": "{}",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    return variables


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_help_example_runs(
    example: Example,
    example_env: dict[str, str],
    demo_runs: dict[tuple[str, ...], Run],
    emulator: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if example.export is not None:
        name, _ = example.export
        assert name in ENVIRONMENT, f"{example.line!r} sets a variable the CLI does not read"
        return
    argv = [expand(arg, example_env) for arg in example.argv]
    stdin = example.stdin_text or ""
    if example.stdin_from_clipboard:
        stdin = example_env["TOKEN"]
    if example.stdin_file is not None:
        stdin = Path(example.stdin_file).read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    if argv[0] in NEEDS_CONNECTION_STRING:
        monkeypatch.setenv(CONNECTION_STRING_ENV, emulator.connection_string)

    if argv[0] == "demo":
        assert tuple(argv) in demo_runs, f"add {example.line!r} to the demo runs in conftest.py"
        run = demo_runs[tuple(argv)]
        assert run.code == 0, run.out + run.err
        assert "checks passed" in run.out
        return
    if argv[0] == "emulator":
        code, out = _serve_once(_free_port(tuple(argv)), monkeypatch)
        assert code == 0, capsys.readouterr().err
        assert "connection string:" in out
        assert "stopped" in out
        return
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 0, f"{example.line!r} exited {code}: {err}"
    assert (out + err).strip(), f"{example.line!r} printed nothing"
    if example.jq_field is not None:
        assert example.jq_field in json.loads(out)

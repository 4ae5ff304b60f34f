"""The command line: ``python -m acs_emulator`` and ``run_cli`` in-process."""

from __future__ import annotations

import argparse
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from acs_emulator import (
    ACCESS_KEY_ENV,
    DEFAULT_PORT,
    add_cli_arguments,
    run_cli,
)
from acs_emulator._cli import _resolve_access_key
from emulator_support import VERSION, read_banner, send

KEY = "Y2xpLXRlc3Qta2V5LWZvci10aGUtZW11bGF0b3I="
ENDPOINT_LINE = re.compile(r"^endpoint: +(https?://127\.0\.0\.1:(\d+))$", re.MULTILINE)
CONNECTION_LINE = re.compile(r"^connection string: +(.+)$", re.MULTILINE)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults() -> None:
    args = _parse()
    assert (args.host, args.port, args.access_key, args.database) == ("127.0.0.1", DEFAULT_PORT, None, None)
    assert (args.allow_short_tokens, args.latency, args.fail_rate, args.log_level) == (False, 0.0, 0.0, "info")
    args = _parse("--port", "0", "--fail-rate", "0.25", "--latency", "0.5", "--allow-short-tokens")
    assert (args.port, args.fail_rate, args.latency, args.allow_short_tokens) == (0, 0.25, 0.5, True)


def test_module_runs_until_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, ACCESS_KEY_ENV: KEY, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "acs_emulator",
            "--port",
            "0",
            "--database",
            str(tmp_path / "cli.db"),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = read_banner(process)
        match = ENDPOINT_LINE.search(banner)
        assert match, banner
        endpoint, port = match.group(1), int(match.group(2))
        # The key came from the environment: the user kept it off the screen, so the banner masks it.
        connection = CONNECTION_LINE.search(banner)
        assert connection, banner
        assert connection.group(1).startswith(f"endpoint={endpoint}/;accesskey={KEY[:4]}...")
        assert KEY not in banner
        assert re.search(rf"^JWKS: +{endpoint}/\.well-known/jwks\.json$", banner, re.MULTILINE)
        assert re.search(rf"^inspector: +{endpoint}/_emulator/ui/$", banner, re.MULTILINE)
        assert re.search(rf"^control plane: +{endpoint}/_emulator/$", banner, re.MULTILINE)
        assert "CA bundle" not in banner
        reply = send(port, "POST", f"/identities?api-version={VERSION}", {}, key=KEY)
        assert reply.status == 201
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped" in out
    assert KEY not in err


class _Banner(io.StringIO):
    """A stdout that tells a waiting thread when the start-up banner is complete."""

    def __init__(self) -> None:
        super().__init__()
        self.ready = threading.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if "Press Ctrl+C" in self.getvalue():
            self.ready.set()
        return written


def test_run_cli_in_process_reads_the_key_from_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    banner = _Banner()
    monkeypatch.setattr(sys, "stdout", banner)
    monkeypatch.setattr(sys, "stdin", io.StringIO(KEY + "\n"))
    outcome: list[object] = []

    def client() -> None:
        try:
            if not banner.ready.wait(20):
                outcome.append("no banner")
                return
            match = ENDPOINT_LINE.search(banner.getvalue())
            assert match
            outcome.append(send(int(match.group(2)), "POST", f"/identities?api-version={VERSION}", {}, key=KEY).status)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            # The handler is installed before the banner is printed, so this cannot kill the test run.
            if banner.ready.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=client)
    helper.start()
    code = run_cli(_parse("--port", "0", "--access-key", "-", "--log-level", "debug"))
    helper.join()
    assert code == 0
    assert outcome == [201]
    assert KEY not in banner.getvalue()  # read from stdin: masked in the banner
    assert "accesskey=Y2xp...I= (masked)" in banner.getvalue()
    assert "stopped" in banner.getvalue()


def test_run_cli_rejects_a_bad_key(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(_parse("--port", "0", "--access-key", "not base64!"))
    captured = capsys.readouterr()
    assert code == 2
    assert "not valid base64" in captured.err
    assert "not base64!" not in captured.err
    assert captured.out == ""


@pytest.mark.parametrize("option", [("--fail-rate", "1.5"), ("--latency", "-1"), ("--resource-id", "nope")])
def test_run_cli_rejects_bad_options(option: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(_parse("--port", "0", *option)) == 2
    assert capsys.readouterr().err.startswith("acs-emulator: error: ")


def test_run_cli_reports_a_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = run_cli(_parse("--port", str(port), "--access-key", KEY))
    captured = capsys.readouterr()
    assert code == 1
    assert f"cannot serve on 127.0.0.1:{port}" in captured.err
    assert KEY not in captured.out + captured.err


def test_access_key_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ACCESS_KEY_ENV, KEY)
    assert _resolve_access_key(None, io.StringIO()) == KEY
    assert _resolve_access_key("b3RoZXI=", io.StringIO()) == "b3RoZXI="
    assert _resolve_access_key("-", io.StringIO("  c3RkaW4=  \n")) == "c3RkaW4="
    monkeypatch.delenv(ACCESS_KEY_ENV)
    assert _resolve_access_key(None, io.StringIO()) is None

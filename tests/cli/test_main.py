"""The ``acs-common`` entry point: help everywhere, exit codes, one-line errors, the emulator command."""

from __future__ import annotations

import argparse
import io
import re
import runpy
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from cli_support import assert_one_line_error, cli_env, run_cli

import azure.communication.common._cli as cli
from azure.communication.common import __version__
from azure.communication.common._cli import build_parser, main


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "acs-common demo"),
        (["demo"], "--token-seconds"),
        (["token"], 'acs-common token inspect "$TOKEN"'),
        (["token", "inspect"], "Verdicts: valid, expires soon"),
        (["id"], "acs-common id parse 4:+14255550123"),
        (["id", "parse"], "parsing never fails"),
        (["id", "wire"], "acs-common id wire '{"),
        (["request"], "acs-common request POST '/identities?api-version=2023-10-01'"),
        (["sign"], "acs-common sign POST"),
        (["emulator"], "acs-common emulator --port 0"),
    ],
)
def test_every_command_has_help_with_examples(
    capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    code, out, err = run_main(capsys, *args, "--help")
    assert code == 0, err
    assert "examples:" in out
    assert fragment in out
    assert err == ""


@pytest.mark.parametrize("args", [[], ["request"], ["sign"], ["demo"]])
def test_help_says_secrets_can_come_from_stdin_or_environment(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    _, out, _ = run_main(capsys, *args, "--help")
    assert "AZURE_COMMUNICATION_CONNECTION_STRING" in out
    assert "'-' to read it from stdin" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "--version")
    assert code == 0
    assert out.strip() == f"acs-common {__version__}"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["acs-common: error:", "COMMAND"]),
        (["nope"], ["invalid choice: 'nope'"]),
        (["id", "parse", "x", "--bogus"], ["acs-common id parse: error: unrecognized arguments: --bogus"]),
        (["demo", "--token-seconds", "1"], ["acs-common demo: error:", "expected 4 to 300, got 1"]),
        (["demo", "--refreshes", "two"], ["expected an integer, got 'two'"]),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], fragments: list[str]
) -> None:
    code, out, err = run_main(capsys, *args)
    assert code == 2
    assert out == ""
    assert_one_line_error(err, *fragments)


def _handler_raising(exc: BaseException) -> Any:
    def handler(args: argparse.Namespace, out: Any) -> int:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("exc", "code", "message"),
    [
        (RuntimeError("boom\nsecond line"), 1, "acs-common: error: unexpected RuntimeError: boom"),
        (RuntimeError(), 1, "acs-common: error: unexpected RuntimeError"),
        (KeyboardInterrupt(), 130, "acs-common: error: interrupted"),
        (BrokenPipeError(), 1, ""),
    ],
)
def test_unexpected_failures_never_show_a_traceback(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    exc: BaseException,
    code: int,
    message: str,
) -> None:
    from azure.communication.common._cli import _ids

    monkeypatch.setattr(_ids, "run_parse", _handler_raising(exc))
    got, _, err = run_main(capsys, "id", "parse", "x")
    assert got == code
    assert err.strip() == message


def test_emulator_arguments_are_passed_through(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from acs_emulator import _cli as emulator

    seen: list[argparse.Namespace] = []

    def fake_run_cli(args: argparse.Namespace) -> int:
        seen.append(args)
        return 3

    monkeypatch.setattr(emulator, "run_cli", fake_run_cli)
    code, _, _ = run_main(capsys, "--no-color", "emulator", "--port", "0", "--allow-short-tokens")
    assert code == 3
    assert seen[0].port == 0
    assert seen[0].allow_short_tokens is True


def test_emulator_bad_option_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "emulator", "--bogus")
    assert code == 2
    assert_one_line_error(err, "acs-common emulator: error:", "--bogus")


@pytest.mark.parametrize("args", [["emulator", "--help"], ["demo"]])
def test_missing_emulator_extra_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, "acs_emulator", None)
    monkeypatch.setitem(sys.modules, "acs_emulator._cli", None)
    code, _, err = run_main(capsys, *args)
    assert code == 1
    assert_one_line_error(err, "acs-emulator", "pip install 'azure-communication-common[emulator]'")


def test_parser_lists_every_command() -> None:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(actions[0].choices) == ["demo", "emulator", "id", "request", "sign", "token"]


def test_python_dash_m_runs_the_same_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["python -m azure.communication.common", "id", "parse", "4:+1555", "--json"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("azure.communication.common", run_name="__main__")
    assert exit_info.value.code == 0
    assert '"kind": "phone_number"' in capsys.readouterr().out


def test_main_reads_sys_argv_by_default(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["acs-common", "id", "parse", "28:orgid:x"])
    assert cli.main() == 0
    assert "microsoft_teams_app" in capsys.readouterr().out


def test_subprocess_help_version_and_no_colour_without_tty() -> None:
    helped = run_cli("--help")
    assert helped.returncode == 0
    assert "usage: acs-common" in helped.stdout
    assert "\x1b[" not in helped.stdout
    version = run_cli("--version")
    assert version.stdout.strip() == f"acs-common {__version__}"


def test_subprocess_usage_error_has_no_traceback() -> None:
    result = run_cli("request", "GET")
    assert result.returncode == 2
    assert_one_line_error(result.stderr, "acs-common request: error:", "URL")


def test_subprocess_emulator_serves_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "azure.communication.common", "emulator", "--port", "0", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        assert process.stdout is not None
        lines = []
        deadline = time.monotonic() + 20
        connection_string = None
        while time.monotonic() < deadline and connection_string is None:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"endpoint=http://127\.0\.0\.1:\d+/?;accesskey=\S+", line)
            connection_string = found.group(0) if found else None
        assert connection_string is not None, lines
        created = run_cli(
            "request",
            "POST",
            "/identities?api-version=2023-10-01",
            "-d",
            "{}",
            "-c",
            "-",
            stdin=connection_string,
        )
        assert created.returncode == 0, created.stderr
        assert created.stderr.strip() == "HTTP 201 Created"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("args", "no_color_env", "coloured"),
    [
        (["id", "parse", "4:+1555"], None, True),
        (["id", "parse", "4:+1555"], "1", False),
        (["--no-color", "id", "parse", "4:+1555"], None, False),
    ],
)
def test_colour_on_a_terminal_unless_disabled(
    monkeypatch: pytest.MonkeyPatch, args: list[str], no_color_env: str | None, coloured: bool
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stdout", terminal)
    if no_color_env is not None:
        monkeypatch.setenv("NO_COLOR", no_color_env)
    assert main(args) == 0
    assert ("\x1b[1mphone_number\x1b[0m" in terminal.getvalue()) is coloured
    assert "phone_number" in terminal.getvalue()

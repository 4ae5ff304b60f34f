"""One error rule for every command, in one table.

The rule (``acs-common --help``): an error is one line on stderr, ``PROG SUBCOMMAND: error: MESSAGE``, no
traceback. A usage error (the command line itself is wrong: unknown option, bad value, missing argument,
malformed or non-http(s) URL) exits 2, names the (sub)command whose line is wrong and points to its ``--help``.
A failure (the input the command read is invalid, or the request failed) exits 1.
"""

from __future__ import annotations

import io
import re

import pytest
from cli_support import CONNECTION_STRING_ENV, FAKE_CONNECTION_STRING, FAKE_KEY

from azure.communication.common._cli import main

USAGE, FAILURE = 2, 1

# (arguments, stdin, connection string in the environment, exit code, the (sub)command named, fragment)
CASES = [
    # the top level
    ([], "", None, USAGE, "acs-common", "required: COMMAND"),
    (["nope"], "", None, USAGE, "acs-common", "invalid choice: 'nope'"),
    (["--bogus", "id", "parse", "x"], "", None, USAGE, "acs-common", "unrecognized arguments: --bogus"),
    (["--bogus", "emulator"], "", None, USAGE, "acs-common", "unrecognized arguments: --bogus"),
    # demo
    (["demo", "--bogus"], "", None, USAGE, "acs-common demo", "unrecognized arguments: --bogus"),
    (["demo", "--token-seconds", "1"], "", None, USAGE, "acs-common demo", "expected 4 to 300, got 1"),
    (["demo", "--refreshes", "two"], "", None, USAGE, "acs-common demo", "expected an integer, got 'two'"),
    (["demo", "-c"], "", None, USAGE, "acs-common demo", "expected one argument"),
    (["demo", "-c", "-"], "", None, USAGE, "acs-common demo", "nothing was read from stdin"),
    (["demo", "-c", "endpoint=x"], "", None, FAILURE, "acs-common demo", "nvalid connection string"),
    # token inspect
    (["token"], "", None, USAGE, "acs-common token", "required: COMMAND"),
    (["token", "--bogus", "inspect", "x"], "", None, USAGE, "acs-common token", "unrecognized arguments: --bogus"),
    (["token", "inspect", "x", "--bogus"], "", None, USAGE, "acs-common token inspect", "unrecognized arguments"),
    (["token", "inspect"], "  \n", None, USAGE, "acs-common token inspect", "no token given"),
    # id parse / id wire
    (["id"], "", None, USAGE, "acs-common id", "required: COMMAND"),
    (["id", "--bogus", "parse", "x"], "", None, USAGE, "acs-common id", "unrecognized arguments: --bogus"),
    (["id", "parse", "x", "--bogus"], "", None, USAGE, "acs-common id parse", "unrecognized arguments: --bogus"),
    (["id", "parse"], "", None, USAGE, "acs-common id parse", "required: RAW_ID"),
    (["id", "wire", "{}", "--bogus"], "", None, USAGE, "acs-common id wire", "unrecognized arguments: --bogus"),
    (["id", "wire", "-"], "", None, USAGE, "acs-common id wire", "no wire model given"),
    (["id", "wire", "[1]"], "", None, FAILURE, "acs-common id wire", "must be a JSON object"),
    (["id", "wire", "@/nonexistent/model.json"], "", None, FAILURE, "acs-common id wire", "cannot read"),
    # request and sign share their arguments
    (["request", "GET"], "", None, USAGE, "acs-common request", "required: URL"),
    (["request", "GET", "/x", "--bogus"], "", None, USAGE, "acs-common request", "unrecognized arguments: --bogus"),
    (["request", "GET", "/x"], "", None, USAGE, "acs-common request", "no connection string"),
    (["request", "GET", "ftp://x"], "", "fake", USAGE, "acs-common request", "invalid URL 'ftp://x': only http"),
    (["request", "GET", "http://"], "", "fake", USAGE, "acs-common request", "invalid URL 'http://': no host"),
    (["request", "GET", "http://[::1/x"], "", "fake", USAGE, "acs-common request", "invalid URL 'http://[::1/x'"),
    (["request", "P@ST", "/x"], "", "fake", USAGE, "acs-common request", "METHOD must be an HTTP method"),
    (["request", "GET", "/x", "-H", "NoColon"], "", "fake", USAGE, "acs-common request", "--header expects"),
    # A URL in the connection string is input the command reads, not its command line: exit 1.
    (
        ["request", "GET", "/x", "-c", f"endpoint=http://;accesskey={FAKE_KEY}"],
        "",
        None,
        FAILURE,
        "acs-common request",
        "nvalid connection string: 'endpoint'",
    ),
    (
        ["request", "GET", "/x", "-c", f"endpoint=ftp://x;accesskey={FAKE_KEY}"],
        "",
        None,
        FAILURE,
        "acs-common request",
        "nvalid connection string: 'endpoint'",
    ),
    (["sign", "GET", "/x", "--bogus"], "", "fake", USAGE, "acs-common sign", "unrecognized arguments: --bogus"),
    (["sign", "GET", "ftp://x"], "", "fake", USAGE, "acs-common sign", "invalid URL 'ftp://x': only http"),
    (["sign", "GET", "http://"], "", "fake", USAGE, "acs-common sign", "invalid URL 'http://': no host"),
    (["sign", "GET", "http://x.example:99999/"], "", "fake", USAGE, "acs-common sign", "Port out of range"),
    (["sign", "GET", "/x", "-c", "-", "-d", "@-"], "", None, USAGE, "acs-common sign", "stdin can hold either"),
    (["sign", "GET", "/x"], "", "endpoint=https://x.example/", FAILURE, "acs-common sign", "accesskey"),
    (["sign", "GET", "/x", "-d", "@/nonexistent/body"], "", "fake", FAILURE, "acs-common sign", "cannot read"),
    # emulator: its own parser, named as acs-common names it
    (["emulator", "--bogus"], "", None, USAGE, "acs-common emulator", "unrecognized arguments: --bogus"),
    (["emulator", "--port", "x"], "", None, USAGE, "acs-common emulator", "invalid int value: 'x'"),
    (["emulator", "--log-level", "loud"], "", None, USAGE, "acs-common emulator", "invalid choice: 'loud'"),
    (["emulator", "--port", "0", "--fail-rate", "3"], "", None, USAGE, "acs-common emulator", "fail"),
]


@pytest.mark.parametrize(
    ("args", "stdin", "environment", "code", "prog", "fragment"),
    CASES,
    ids=[" ".join(case[0]) or "(nothing)" for case in CASES],
)
def test_every_error_follows_the_rule(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    stdin: str,
    environment: str | None,
    code: int,
    prog: str,
    fragment: str,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    if environment is not None:
        monkeypatch.setenv(CONNECTION_STRING_ENV, FAKE_CONNECTION_STRING if environment == "fake" else environment)
    got = main(args)
    out, err = capsys.readouterr()
    assert got == code, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    # Exactly this (sub)command is named: not a parent, not a child.
    assert re.match(rf"{re.escape(prog)}: error: ", lines[0]), lines[0]
    assert fragment in lines[0]
    hint = f"(see '{prog} --help')"
    assert lines[0].endswith(hint) is (code == USAGE), lines[0]
    assert FAKE_KEY not in err

"""Helpers for the CLI tests: run ``acs-common`` as a subprocess, build unsigned JWTs, check errors."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

CONNECTION_STRING_ENV = "AZURE_COMMUNICATION_CONNECTION_STRING"

# A syntactically valid connection string for commands that sign without sending (nothing listens there).
FAKE_KEY = base64.b64encode(b"a test key that is 32 bytes long").decode("ascii")
FAKE_CONNECTION_STRING = f"endpoint=https://contoso.communication.azure.com/;accesskey={FAKE_KEY}"


# The demo's examples (``acs-common demo --help``), each run once for the whole package (the ``demo_runs``
# fixture): the demo tests read their transcripts and the help-examples test their exit codes. Two run as
# subprocesses while the third runs in-process: the demo mostly waits for tokens to age.
DEFAULT_DEMO = ("demo",)
SHORT_DEMO = ("demo", "--token-seconds", "4", "--refreshes", "3")
RESOURCE_DEMO = ("demo", "-c", "-")


@dataclass(frozen=True)
class Run:
    """One finished CLI run."""

    code: int
    out: str
    err: str


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    """An unsigned JWT shaped like an ACS token (``token inspect`` never verifies signatures)."""
    head = header if header is not None else {"alg": "RS256", "kid": "test-kid", "typ": "JWT"}
    return ".".join(
        [
            b64url(json.dumps(head).encode()),
            b64url(json.dumps(claims).encode()),
            b64url(b"not-a-real-signature"),
        ]
    )


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CONNECTION_STRING_ENV, "NO_COLOR")}
    env.update(extra)
    return env


def run_cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m azure.communication.common ARGS`` and capture text output."""
    return subprocess.run(
        [sys.executable, "-m", "azure.communication.common", *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        env=env if env is not None else cli_env(),
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(stderr: str, *fragments: str) -> None:
    """stderr is exactly one line, with no traceback, containing each fragment."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0], stderr

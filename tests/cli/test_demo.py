"""``acs-common demo`` end to end: the project's main job must keep working."""

from __future__ import annotations

import io
import logging
import re
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from cli_support import CONNECTION_STRING_ENV, FAKE_KEY, assert_one_line_error, run_cli

from azure.communication.common._cli import main
from azure.communication.common._cli._demo import Check, Demo
from azure.communication.common._cli._output import Output

STEP_TITLES = [
    "Step 1 · Connection string and HMAC-signed requests",
    "Step 2 · CommunicationTokenCredential: proactive refresh (threads)",
    "Step 3 · The same with asyncio (AsyncPipeline + AioHttpTransport)",
    "Step 4 · Communication identifiers and the wire model",
    "Step 5 · Revocation and deletion",
    "Summary",
]


def summary_rows(out: str) -> list[tuple[str, str, str]]:
    """(step, check, mark) rows of the summary table."""
    table = out.split("\nSummary\n", 1)[1]
    rows = re.findall(r"^  (\d)\s{2,}(.+?)\s{2,}([✓✗])\s", table, flags=re.MULTILINE)
    return [(step, name.strip(), mark) for step, name, mark in rows]


def assert_full_walkthrough(out: str, refreshes: int, threads: int = 32, tasks: int = 1000) -> None:
    positions = [out.index(title) for title in STEP_TITLES]
    assert positions == sorted(positions)
    for number in range(1, refreshes + 1):
        assert re.search(rf"↻ refresh #{number} on thread '[^']+': previous token had \d+\.\d s left", out), out
    rows = summary_rows(out)
    assert {step for step, _, _ in rows} == {"1", "2", "3", "4", "5"}
    assert all(mark == "✓" for _, _, mark in rows), rows
    assert re.search(rf"All {len(rows)} checks passed in \d+\.\d s\.", out)
    assert f"{threads} concurrent callers on an expired token -> 1 refresher call" in out
    assert f"{tasks} concurrent tasks on an expired token -> 1 refresher call" in out
    assert "refresher calls: 1; distinct tokens returned: 1" in out
    assert "issuing a token for the deleted user -> 404" in out
    # The key is never printed; the connection string only ever appears masked.
    assert re.findall(r"accesskey=\S+", out) == ["accesskey=<hidden>"]


def test_make_demo_subprocess_exits_0_with_the_full_walkthrough() -> None:
    # The demo's own default token lifetime: shorter ones leave too little slack for scheduling jitter on a
    # loaded machine before "refreshed before expiry" is checked.
    result = run_cli("demo", "--token-seconds", "8", "--refreshes", "2", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert re.search(r"Started the ACS Identity emulator in-process at http://127\.0\.0\.1:\d+", out)
    assert "short-token switch" in out
    assert_full_walkthrough(out, refreshes=2)
    assert "\x1b[" not in out  # not a terminal: no colour


def test_demo_with_connection_string_takes_the_real_resource_path(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emulator: Any
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(emulator.connection_string))
    library_logger = logging.getLogger("azure.communication.common")
    handlers, level = list(library_logger.handlers), library_logger.level
    # One refresh here (two in the subprocess test above) keeps the suite's time down at 8 s tokens.
    args = ["-c", "-", "--token-seconds", "8", "--refreshes", "1", "--threads", "16", "--tasks", "200"]
    code = main(["demo", *args, "--verbose"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    # --verbose shows the library's debug log on stderr for the run, then puts the logger back.
    assert "[DEBUG azure.communication.common]" in err
    assert (library_logger.handlers, library_logger.level) == (handlers, level)
    assert f"Running against the resource at {emulator.endpoint}" in out
    assert "Started the ACS Identity emulator" not in out
    assert "Real tokens live at least an hour." in out
    assert "AccessToken with expires_on 8 s ahead" in out
    assert_full_walkthrough(out, refreshes=1, threads=16, tasks=200)
    assert emulator.access_key not in out + err


def test_demo_reads_the_environment_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emulator: Any
) -> None:
    # A wrong key: the first request is refused, the demo stops early and says why on one line.
    monkeypatch.setenv(CONNECTION_STRING_ENV, f"endpoint={emulator.endpoint};accesskey={FAKE_KEY}")
    code = main(["demo"])
    out, err = capsys.readouterr()
    assert code == 1
    assert f"Running against the resource at {emulator.endpoint}" in out
    assert "✗ user created through the HMAC policy (HTTP 401)" in out
    assert "Step 2" not in out
    assert summary_rows(out)[-1] == ("1", "step 1 completed", "✗")
    assert "checks failed in" in out
    assert_one_line_error(err, "acs-common demo: error: demo failed:", "first: step 1: user created through")


def test_demo_failure_in_a_later_step_is_recorded_and_the_rest_runs(emulator: Any) -> None:
    from azure.communication.common._connection_string import parse_connection_string

    stream = io.StringIO()
    demo = Demo(Output(stream), parse_connection_string(emulator.connection_string), emulated=True)

    def broken() -> None:
        raise ValueError("no\nmore")

    demo.step2 = broken  # type: ignore[method-assign]
    demo.step3 = broken  # type: ignore[method-assign]
    demo.step5 = broken  # type: ignore[method-assign]
    with demo.pipeline:
        try:
            demo.run_steps()
        finally:
            demo.cleanup()
    assert demo.summary() is False
    failed = [c for c in demo.checks if not c.ok]
    assert [(c.step, c.name, c.detail) for c in failed] == [
        (2, "step 2 completed", "ValueError: no"),
        (3, "step 3 completed", "ValueError: no"),
        (5, "step 5 completed", "ValueError: no"),
    ]
    assert any(c.step == 4 and c.ok for c in demo.checks)  # step 4 still ran
    assert "(cleanup: deleted the demo user" in stream.getvalue()
    assert "3 of" in stream.getvalue()


def test_summary_with_no_checks_is_a_failure() -> None:
    from azure.communication.common._connection_string import parse_connection_string

    demo = Demo(
        Output(io.StringIO()),
        parse_connection_string(f"endpoint=http://127.0.0.1:9/;accesskey={FAKE_KEY}"),
        emulated=False,
    )
    with demo.pipeline:
        assert demo.summary() is False
    assert Check(1, "x", True, 0.0).detail == ""


def test_demo_without_connection_string_runs_and_stops_its_own_emulator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_steps(self: Demo) -> None:
        seen.update(endpoint=self.endpoint, emulated=self.emulated, body=self.token_body(5))
        self.step = 1
        self.check("the fake step ran", True, time.perf_counter())

    monkeypatch.setattr(Demo, "run_steps", fake_steps)
    code = main(["demo"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert seen["emulated"] is True
    assert seen["body"] == {"scopes": ["chat"], "expiresInSeconds": 5}
    assert f"Started the ACS Identity emulator in-process at {seen['endpoint'].rstrip('/')}" in out
    assert "All 1 checks passed" in out
    port = urlsplit(seen["endpoint"]).port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_check_details_and_times_are_formatted_for_the_table() -> None:
    from azure.communication.common._cli._demo import _calls_detail, _format_check_time

    assert _calls_detail(1, "") == ""
    assert _calls_detail(2, "") == "refresher calls: 2"
    assert _calls_detail(1, "3 failed") == "refresher calls: 1, 3 failed"
    assert _format_check_time(0.0123) == "  12.3 ms"
    assert _format_check_time(7.4309) == "   7.43 s"

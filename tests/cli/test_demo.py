"""``acs-common demo`` end to end (the project's main job must keep working), and its parts one by one.

The three demo examples run once per package (``demo_runs`` in conftest.py); the tests below read their
transcripts. The scenario functions, the renderer and the orchestration are also tested on their own.
"""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import sys
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import pytest
from cli_support import (
    CONNECTION_STRING_ENV,
    DEFAULT_DEMO,
    FAKE_KEY,
    RESOURCE_DEMO,
    SHORT_DEMO,
    Run,
    assert_one_line_error,
)

from azure.communication.common._cli import _demo_chat, _demo_run, _demo_steps, main
from azure.communication.common._cli._demo_context import (
    Check,
    DemoContext,
    DemoOptions,
    Event,
    Field,
    Note,
    Paragraph,
    Table,
    Text,
)
from azure.communication.common._cli._demo_render import Renderer, format_check_time
from azure.communication.common._cli._demo_run import Step, run_demo
from azure.communication.common._cli._output import Output

STEP_TITLES = [
    "Step 1 · Connection string and HMAC-signed requests",
    "Step 2 · CommunicationTokenCredential: proactive refresh (threads)",
    "Step 3 · The same with asyncio (AsyncPipeline + AioHttpTransport)",
    "Step 4 · Communication identifiers and the wire model",
    "Step 5 · Chat through the official client, outliving its tokens",
    "Step 6 · Revocation and deletion",
    "Summary",
]


def summary_rows(out: str) -> list[tuple[str, str, str]]:
    """(step, check, mark) rows of the summary table."""
    table = out.split("\nSummary\n", 1)[1]
    rows = re.findall(r"^  (\d)\s{2,}(.+?)\s{2,}([✓✗])\s", table, flags=re.MULTILINE)
    return [(step, name.strip(), mark) for step, name, mark in rows]


def section(out: str, title: str) -> str:
    """The transcript of one step, from its heading to the next one."""
    start = out.index(title)
    following = [out.index(t, start + 1) for t in STEP_TITLES if t in out[start + 1 :]]
    return out[start : min(following) if following else len(out)]


def assert_full_walkthrough(run: Run, refreshes: int, threads: int = 32, tasks: int = 1000) -> None:
    assert run.code == 0, run.out + run.err
    out = run.out
    positions = [out.index(title) for title in STEP_TITLES]
    assert positions == sorted(positions)
    for number in range(1, refreshes + 1):
        assert re.search(rf"↻ refresh #{number} on thread '[^']+': previous token had \d+\.\d s left", out), out
    rows = summary_rows(out)
    assert {step for step, _, _ in rows} == {"1", "2", "3", "4", "5", "6"}
    assert all(mark == "✓" for _, _, mark in rows), rows
    assert re.search(rf"All {len(rows)} checks passed in \d+\.\d s\.", out)
    assert f"{threads} concurrent callers on an expired token -> 1 refresher call" in out
    assert f"{tasks} concurrent tasks on an expired token -> 1 refresher call" in out
    assert "refresher calls: 1; distinct tokens returned: 1" in out
    assert "issuing a token for the deleted user -> 404" in out
    # The key is never printed; the connection string only ever appears masked.
    assert re.findall(r"accesskey=\S+", out) == ["accesskey=<hidden>"]


# ------------------------------------------------------------------------------------- the examples


def test_default_demo_in_a_subprocess_is_the_full_walkthrough(demo_runs: dict[tuple[str, ...], Run]) -> None:
    run = demo_runs[DEFAULT_DEMO]
    assert run.err == ""
    assert re.search(r"Started the ACS emulator in-process at http://127\.0\.0\.1:\d+", run.out)
    assert "short-token switch" in run.out
    assert_full_walkthrough(run, refreshes=2)
    assert "\x1b[" not in run.out  # not a terminal: no colour


def test_short_tokens_and_more_refreshes(demo_runs: dict[tuple[str, ...], Run]) -> None:
    run = demo_runs[SHORT_DEMO]
    assert_full_walkthrough(run, refreshes=3)
    assert "uses tokens that live 4 s" in section(run.out, STEP_TITLES[1])


def test_demo_with_connection_string_takes_the_real_resource_path(
    demo_runs: dict[tuple[str, ...], Run], emulator: Any
) -> None:
    run = demo_runs[RESOURCE_DEMO]
    assert_full_walkthrough(run, refreshes=2)
    assert f"Running against the resource at {emulator.endpoint}" in run.out
    assert "Started the ACS emulator" not in run.out
    assert "Real tokens live at least an hour." in run.out
    assert "AccessToken with expires_on 8 s ahead" in run.out
    assert emulator.access_key not in run.out + run.err


@pytest.mark.parametrize("args", [DEFAULT_DEMO, SHORT_DEMO, RESOURCE_DEMO])
def test_every_token_shown_lives_as_long_as_its_step_says(
    demo_runs: dict[tuple[str, ...], Run], args: tuple[str, ...]
) -> None:
    # Each "expires in X s" follows the statement of how long those tokens live ("live N s", "lives N s",
    # "expires_on N s ahead"): X is at most N (and not much less: the tokens were just issued).
    text = " ".join(demo_runs[args].out.split())
    stated: float | None = None
    shown = 0
    pattern = r"lives? (\d+) s\b|expires_on (\d+) s ahead|expires in (\d+\.\d) s"
    for match in re.finditer(pattern, text):
        lifetime = match.group(1) or match.group(2)
        if lifetime is not None:
            stated = float(lifetime)
            continue
        left = float(match.group(3))
        assert stated is not None, text[: match.start()][-300:]
        assert stated - 3 <= left <= stated, text[max(0, match.start() - 300) : match.end()]
        shown += 1
    assert shown >= 6


def test_chat_step_outlives_the_tokens_and_no_message_fails(demo_runs: dict[tuple[str, ...], Run]) -> None:
    chat = section(demo_runs[DEFAULT_DEMO].out, STEP_TITLES[4])
    assert "skipped" not in chat
    assert re.search(r"Alice created a chat thread with Bob -> \S+", chat)
    for user in ("Alice", "Bob"):
        assert re.search(rf"↻ {user}'s token refreshed \(#1\) on '[^']+': the old one had \d+\.\d s left", chat)
    # The refreshes happen mid-conversation: messages are sent before and after them.
    lines = chat.splitlines()
    refresh_lines = [i for i, line in enumerate(lines) if "token refreshed" in line]
    message_lines = [i for i, line in enumerate(lines) if re.search(r"#\d+ (Alice|Bob): '.+' -> sent$", line)]
    assert any(message_lines[0] < line < message_lines[-1] for line in refresh_lines), chat
    assert not any("FAILED" in line for line in lines)
    found = re.search(r"✓ (\d+) messages over \d+\.\d s \((\d+\.\d) token lifetimes\), none failed", chat)
    assert found is not None, chat
    assert int(found.group(1)) == len(message_lines)
    assert float(found.group(2)) >= _demo_chat.CHAT_LIFETIMES
    assert "✓ the conversation outlived every user's first token" in chat
    refreshed = re.search(
        r"✓ every user's token refreshed mid-conversation, each time before it expired "
        r"\(Alice: (\d+), Bob: (\d+); (\d+) of (\d+) in the background\)",
        chat,
    )
    assert refreshed is not None, chat
    alice, bob, background, total = (int(group) for group in refreshed.groups())
    assert alice >= 1
    assert bob >= 1
    # The check counts the refreshes of the conversation (more may follow while Bob reads).
    ended = next(i for i, line in enumerate(lines) if "messages over" in line)
    during = [i for i in refresh_lines if i < ended]
    assert total == alice + bob == len(during)
    assert background == sum("on 'MainThread'" not in lines[i] for i in during)
    assert f"✓ Bob reads all {len(message_lines)} messages in order, with their senders, 5 a page" in chat
    assert "✓ the deleted thread is gone from Bob's threads" in chat


# ------------------------------------------------------------------------------------- in-process runs


def test_demo_reads_the_environment_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, emulator: Any
) -> None:
    # A wrong key: the first request is refused, the demo stops early and says why on one line.
    monkeypatch.setenv(CONNECTION_STRING_ENV, f"endpoint={emulator.endpoint};accesskey={FAKE_KEY}")
    library_logger = logging.getLogger("azure.communication.common")
    handlers, level = list(library_logger.handlers), library_logger.level
    code = main(["demo", "--verbose"])
    out, err = capsys.readouterr()
    # --verbose shows the library's debug log on stderr for the run, then puts the logger back.
    assert (library_logger.handlers, library_logger.level) == (handlers, level)
    assert code == 1
    assert f"Running against the resource at {emulator.endpoint}" in out
    assert "✗ user created through the HMAC policy (HTTP 401)" in out
    assert "Step 2" not in out
    assert summary_rows(out)[-1] == ("1", "step 1 completed", "✗")
    assert "checks failed in" in out
    assert_one_line_error(err, "acs-common demo: error: demo failed:", "first: step 1: user created through")


def _context(emulator: Any, events: list[Event] | None = None, **options: Any) -> DemoContext:
    from azure.communication.common._connection_string import parse_connection_string

    sink = events.append if events is not None else (lambda event: None)
    return DemoContext(parse_connection_string(emulator.connection_string), True, sink, DemoOptions(**options))


def test_a_failing_step_is_recorded_and_the_independent_steps_still_run(emulator: Any) -> None:
    stream = io.StringIO()
    renderer = Renderer(Output(stream))
    context = _context(emulator)

    def half_done(context: DemoContext) -> list[Check]:
        checks = context.checks()
        checks.add("the first half held", True, context.timer())
        raise ValueError("no\nmore")

    def fine(context: DemoContext) -> list[Check]:
        return [Check("fine", True)]

    steps = [
        Step(1, "HMAC", _demo_steps.step_hmac, needs_user=False, essential=True),
        Step(2, "half done", half_done),
        Step(3, "fine", fine),
        Step(4, "essential and failing", half_done, essential=True),
        Step(5, "never reached", fine),
    ]
    results = run_demo(context, renderer, steps)
    named = [(step, check.name, check.passed, check.detail) for step, check in results if step > 1]
    assert named == [
        (2, "the first half held", True, ""),
        (2, "step 2 completed", False, "ValueError: no"),
        (3, "fine", True, ""),
        (4, "the first half held", True, ""),
        (4, "step 4 completed", False, "ValueError: no"),
    ]
    assert all(check.passed for step, check in results if step == 1)
    text = stream.getvalue()
    assert "Step 5" not in text
    # The revocation step never ran, so the demo deletes its user itself.
    assert f"(cleanup: deleted the demo user {context.user_id})" in text
    assert context.deleted is False


def test_no_checks_is_a_failure_and_the_demo_stops_its_own_emulator(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def looks(context: DemoContext) -> list[Check]:
        seen.update(endpoint=context.endpoint, emulated=context.emulated, body=context.token_body(5))
        return []

    monkeypatch.setattr(_demo_run, "STEPS", (Step(1, "looks", looks, needs_user=False),))
    code = main(["demo"])
    out, err = capsys.readouterr()
    assert code == 1
    assert_one_line_error(err, "acs-common demo: error: demo failed: 0 of 0 checks failed; no checks ran")
    assert seen["emulated"] is True
    assert seen["body"] == {"scopes": ["chat"], "expiresInSeconds": 5}
    assert f"Started the ACS emulator in-process at {seen['endpoint'].rstrip('/')}" in out
    port = urlsplit(seen["endpoint"]).port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_missing_emulator_distribution_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "acs_emulator", None)
    assert main(["demo"]) == 1
    assert_one_line_error(capsys.readouterr().err, "acs-common demo: error:", "pip install")


# ------------------------------------------------------------------------------------- the scenarios


def test_identifiers_scenario_returns_its_checks_and_emits_a_table() -> None:
    from azure.communication.common._connection_string import parse_connection_string

    events: list[Event] = []
    offline = parse_connection_string(f"endpoint=http://127.0.0.1:9/;accesskey={FAKE_KEY}")
    checks = _demo_steps.step_identifiers(DemoContext(offline, False, events.append))
    assert [(c.name, c.passed) for c in checks] == [
        ("7 raw ids (6 kinds) parsed, serialized, deserialized, equal", True),
        ("an incomplete wire model is rejected with the JS error text", True),
    ]
    assert [e for e in events if isinstance(e, Check)] == checks  # emitted as made, then returned
    table = next(e for e in events if isinstance(e, Table))
    assert len(table.rows) == 7
    assert all(row[-1] is True for row in table.rows)
    assert not table.failed
    sample = "\n".join(e.text for e in events if isinstance(e, Text))
    assert '"isAnonymous": true' in sample


def test_emulated_tokens_are_the_bare_jwt_with_the_lifetime_asked_for(emulator: Any) -> None:
    events: list[Event] = []
    context = _context(emulator, events, token_seconds=5)
    _demo_steps.step_hmac(context)
    token, expires_on = context.issue_token()
    assert isinstance(token, str)
    assert token.count(".") == 2
    assert 3 <= expires_on - context.clock() <= 5
    _demo_steps._explain_refresh(context)
    explained = events[-1]
    assert isinstance(explained, Paragraph)
    assert "uses tokens that live 5 s (the emulator's short-token switch)" in explained.text
    context.close()


def test_revocation_scenario_against_the_emulator(emulator: Any) -> None:
    events: list[Event] = []
    context = _context(emulator, events)
    _demo_steps.step_hmac(context)
    checks = _demo_steps.step_revocation(context)
    assert [c.name for c in checks if c.passed] == [
        "tokens revoked",
        "user deleted",
        "issuing a token for the deleted user -> 404",
        "the refresher's error reaches the caller unchanged",
    ]
    assert context.deleted is True
    notes = [e.text for e in events if isinstance(e, Note)]
    assert "POST /identities/{id}/:issueAccessToken -> HTTP 404 (IdentityNotFound)" in notes
    context.close()


class _InstallsLate:
    """A credential whose refreshed token is in place only from its third ``get_token()`` on."""

    def __init__(self) -> None:
        self.calls = 0

    def get_token(self) -> Any:
        from azure.core.credentials import AccessToken

        self.calls += 1
        return AccessToken("tok-new-91c2" if self.calls >= 3 else "tok-old-7f3a", 2_000_000_000)


def test_the_demo_waits_for_the_credential_to_install_the_refreshed_token() -> None:
    # The flaky check: the refresher reports a refresh when it is called, the credential installs the token
    # it returns a moment later on its worker thread. get_token() in between rightly returns the old token.
    from azure.communication.common._connection_string import parse_connection_string

    offline = parse_connection_string(f"endpoint=http://127.0.0.1:9/;accesskey={FAKE_KEY}")
    context = DemoContext(offline, False, lambda event: None)
    late = _InstallsLate()
    got = _demo_steps._installed(context, late, lambda token: token == "tok-new-91c2")
    assert (got.token, late.calls) == ("tok-new-91c2", 3)
    # A token that never comes: the wait is bounded (by the demo's timer, here a fake that races ahead).
    ticks = iter(range(0, 1000, 5))
    context.timer = lambda: float(next(ticks))
    never = _InstallsLate()
    assert _demo_steps._installed(context, never, lambda token: token == "never").token == "tok-old-7f3a"
    assert never.calls == 2  # the deadline is 0 + 10: looked at 0 and at 5, gave up at 10


def test_chat_is_skipped_when_the_emulator_answers_404(capsys: pytest.CaptureFixture[str]) -> None:
    from acs_emulator import Emulator

    with Emulator(allow_short_tokens=True) as without_chat:
        rule = {"rules": [{"method": "POST", "path": "/chat/threads", "status": 404}]}
        request = urllib.request.Request(
            f"{without_chat.endpoint.rstrip('/')}/_emulator/chaos",
            data=json.dumps(rule).encode(),
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        events: list[Event] = []
        checks = _demo_chat.step_chat(_context(without_chat, events))
    assert checks == []
    notes = [e.text for e in events if isinstance(e, Note)]
    assert notes[-1] == "skipped: the emulator has no Chat service (POST /chat/threads -> HTTP 404)"


def test_chat_is_skipped_without_the_official_chat_client(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "azure.communication.chat", None)
    events: list[Event] = []
    assert _demo_chat.step_chat(_context(emulator, events)) == []
    assert [e.text for e in events if isinstance(e, Note)] == [
        "skipped: azure.communication.chat is not installed "
        "(pip install azure-communication-chat azure-communication-identity)"
    ]


class _Thread:
    """A chat thread client whose second send fails, as the service would refuse a message."""

    def __init__(self) -> None:
        self.sent = 0

    def send_message(self, text: str, **kwargs: Any) -> Any:
        from azure.core.exceptions import HttpResponseError

        self.sent += 1
        if self.sent == 2:
            error = HttpResponseError(message="refused")
            error.status_code = 400
            raise error
        return type("Sent", (), {"id": f"m{self.sent}"})()


def test_a_failed_message_fails_the_conversation_check() -> None:
    from azure.communication.common._connection_string import parse_connection_string

    events: list[Event] = []
    offline = parse_connection_string(f"endpoint=http://127.0.0.1:9/;accesskey={FAKE_KEY}")
    context = DemoContext(offline, False, events.append)
    ticks = iter(float(t) for t in range(100))  # one fake second per look at the clock
    context.timer = lambda: next(ticks)
    speaker = _demo_chat._Chatter("Alice", None, None, None)
    speaker.thread_client = _Thread()
    sent, failures, took = _demo_chat._converse(context, [speaker], 4, {})
    # The conversation lasts 1.5 lifetimes of 4 s; each message looks at the clock twice (loop, note).
    assert [s.message_id for s in sent] == ["m1", "m3"]
    assert failures == ["#2 HttpResponseError HTTP 400"]
    checks = context.checks()
    _demo_chat._check_conversation(context, checks, sent, failures, took, first_expiry=float("inf"))
    assert [(c.passed, c.detail) for c in checks] == [
        (False, "#2 HttpResponseError HTTP 400"),
        (False, "0 messages sent after the first tokens expired"),
    ]
    assert "#2 Alice: 'Loud and clear, Alice.' FAILED (#2 HttpResponseError HTTP 400)" in [
        e.text for e in events if isinstance(e, Note)
    ]


def test_expiries_from_the_identity_client_in_any_shape() -> None:
    import datetime

    moment = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
    assert _demo_chat._epoch("2026-12-01T12:00:00.0000000+00:00") == moment.timestamp()
    assert _demo_chat._epoch(moment) == moment.timestamp()
    assert _demo_chat._epoch(1796126400) == 1796126400.0


def test_lifetime_policy_asks_the_emulator_for_seconds() -> None:
    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.rest import HttpRequest

    from azure.communication.common._cli._demo_lifetime import LIFETIME_OPTION, LifetimePolicy

    original = HttpRequest(
        "POST", "http://127.0.0.1:9/identities/x/:issueAccessToken", json={"scopes": ["chat"], "expiresInMinutes": 60}
    )
    context = PipelineContext(None, **{LIFETIME_OPTION: 4, "other": 1})
    request = PipelineRequest(original, context)
    LifetimePolicy().on_request(request)
    assert json.loads(request.http_request.content) == {"scopes": ["chat"], "expiresInSeconds": 4}
    assert request.http_request.url == original.url
    assert context.options == {"other": 1}  # the option never reaches the transport
    untouched = PipelineRequest(original, PipelineContext(None))
    LifetimePolicy().on_request(untouched)
    assert untouched.http_request is original


# ------------------------------------------------------------------------------------- the renderer


class _Ascii(io.StringIO):
    encoding = "ascii"


def test_renderer_formats_each_event() -> None:
    stream = io.StringIO()
    renderer = Renderer(Output(stream))
    renderer.heading(2, "Title")
    for event in [
        Note("refreshed", at=0.0, elapsed=1.5, refresh=True),
        Note("plain", at=0.0, elapsed=12.25),
        Field("user", "8:acs:x"),
        Paragraph("An explanation."),
        Text("a line"),
        Table(("a", "ok"), (("x", True), ("y", False)), frozenset({1})),
        Check("held", True, "detail"),
        Check("broke", False),
    ]:
        renderer(event)
    lines = stream.getvalue().splitlines()
    assert lines[1:3] == ["Step 2 · Title", "─" * 20]
    assert re.fullmatch(r"  \d\d:\d\d:\d\d\.000 \+ 1\.50s ↻ refreshed", lines[3])
    assert lines[4].endswith("+12.25s plain")
    assert lines[5:8] == ["  user:              8:acs:x", "  An explanation.", "  a line"]
    assert lines[10:12] == ["  x  ✓", "  y  ✗"]
    assert lines[12:] == ["  ✓ held (detail)", "  ✗ broke"]


def test_renderer_falls_back_to_ascii_and_summarises() -> None:
    stream = _Ascii()
    renderer = Renderer(Output(stream))
    renderer.heading(1, "Title")
    renderer(Note("refreshed", at=0.0, elapsed=0.0, refresh=True))
    renderer.summary([(1, Check("held", True, seconds=0.0123)), (2, Check("broke", False, seconds=7.4309))], 9.87)
    text = stream.getvalue()
    assert "Step 1 - Title" in text
    assert "s refreshed" in text
    assert "↻" not in text
    assert "1     held   OK      12.3 ms" in text
    assert "2     broke  FAIL     7.43 s" in text
    assert text.rstrip().endswith("1 of 2 checks failed in 9.9 s.")


def test_check_details_and_times_are_formatted_for_the_table() -> None:
    assert _demo_steps.calls_detail(1, "") == ""
    assert _demo_steps.calls_detail(2, "") == "refresher calls: 2"
    assert _demo_steps.calls_detail(1, "3 failed") == "refresher calls: 1, 3 failed"
    assert format_check_time(0.0123) == "  12.3 ms"
    assert format_check_time(7.4309) == "   7.43 s"

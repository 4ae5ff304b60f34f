"""Terminal output helpers: colour rules, ASCII fallback, tables, durations, masking."""

from __future__ import annotations

import io

import pytest

from azure.communication.common._cli._output import (
    Output,
    colour_wanted,
    format_clock,
    format_duration,
    format_time,
    lifetime_bar,
    mask_connection_string,
)


class FakeTerminal(io.StringIO):
    """A text stream that claims to be a terminal, with a chosen encoding."""

    def __init__(self, encoding: str = "utf-8") -> None:
        super().__init__()
        self._encoding = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert colour_wanted(FakeTerminal()) is True
    assert colour_wanted(io.StringIO()) is False
    assert colour_wanted(FakeTerminal(), no_color=True) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert colour_wanted(FakeTerminal()) is False
    # The no-color.org rule: an empty NO_COLOR does not disable colour.
    monkeypatch.setenv("NO_COLOR", "")
    assert colour_wanted(FakeTerminal()) is True


def test_style_wraps_in_ansi_only_with_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    coloured = Output(FakeTerminal())
    assert coloured.style("hi", "red", "bold") == "\x1b[31;1mhi\x1b[0m"
    assert coloured.style("hi") == "hi"
    plain = Output(io.StringIO())
    assert plain.style("hi", "red") == "hi"


def test_ascii_stream_gets_ascii_symbols_and_bar() -> None:
    stream = FakeTerminal(encoding="ascii")
    out = Output(stream, no_color=True)
    assert (out.tick, out.cross, out.unicode) == ("OK", "FAIL", False)
    out.check(True, "fine")
    out.check(False, "broken")
    out.heading("Title")
    assert out.bar(0.5, width=4) == "[##--]"
    text = stream.getvalue()
    text.encode("ascii")  # nothing un-encodable was written
    assert "  OK fine\n" in text
    assert "  FAIL broken\n" in text
    assert "Title\n" + "-" * 20 in text


def test_unicode_stream_gets_ticks() -> None:
    stream = io.StringIO()
    out = Output(stream)
    out.check(True, "fine")
    assert stream.getvalue() == "  ✓ fine\n"
    assert Output(io.StringIO()).bar(0.25, width=4) == "[█░░░]"


def test_table_aligns_columns_on_plain_text() -> None:
    stream = io.StringIO()
    Output(stream).table(["a", "long header"], [["wide cell", "x"], ["y", "z"]], {1: ["red"]})
    lines = stream.getvalue().splitlines()
    assert lines[0] == "  a          long header"
    assert lines[1] == "  ─────────  ───────────"
    assert lines[2] == "  wide cell  x"
    assert lines[3] == "  y          z"


def test_field_and_json_output() -> None:
    stream = io.StringIO()
    out = Output(stream)
    out.field("name", "value", width=6)
    out.json({"b": [1, "é"]})
    assert stream.getvalue() == '  name:  value\n{\n  "b": [\n    1,\n    "é"\n  ]\n}\n'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (4.3, "4.3 s"),
        (-3, "-3.0 s"),
        (59.94, "59.9 s"),
        (60, "1 min 0 s"),
        (3599, "59 min 59 s"),
        (7260, "2 h 1 min"),
        (-7260, "-2 h 1 min"),
        (90000, "1 d 1 h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_time_is_utc_with_optional_millis() -> None:
    assert format_time(0) == "1970-01-01 00:00:00 UTC"
    assert format_time(1_800_000_000.25, millis=True) == "2027-01-15 08:00:00.250 UTC"
    assert format_clock(1_800_000_000.5).endswith(".500")


def test_lifetime_bar_clamps() -> None:
    assert lifetime_bar(2.0, 3) == "[███]"
    assert lifetime_bar(-1.0, 3, unicode=False) == "[---]"


def test_mask_connection_string_hides_the_key() -> None:
    assert mask_connection_string("https://x.example/") == "endpoint=https://x.example/;accesskey=<hidden>"

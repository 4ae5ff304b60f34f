"""Terminal output for the CLI: colour, symbols, tables, times and masking.

Colour follows the https://no-color.org convention: only when the stream is a terminal and ``NO_COLOR`` is
unset or empty. Symbols fall back to ASCII when the stream's encoding cannot carry them (a Windows console or
a ``LANG=C`` pipe), so output never fails with ``UnicodeEncodeError``.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = [
    "Output",
    "format_duration",
    "format_time",
    "lifetime_bar",
    "mask_connection_string",
]

_CODES = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "cyan": "36",
}


def _can_encode(stream: TextIO, text: str) -> bool:
    # io.StringIO has no encoding: it holds str, so anything goes.
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def colour_wanted(stream: TextIO, *, no_color: bool = False) -> bool:
    """Return whether ANSI colour should be written to ``stream``."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Output:
    """A text stream with optional colour and Unicode-or-ASCII symbols.

    Args:
        stream: where to write (defaults to ``sys.stdout`` at call time, so pytest's capture works).
        no_color: force colour off (``--no-color``).
    """

    def __init__(self, stream: TextIO | None = None, *, no_color: bool = False) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.colour = colour_wanted(self.stream, no_color=no_color)
        self.unicode = _can_encode(self.stream, "✓✗─█░…·↻")
        self.tick = "✓" if self.unicode else "OK"
        self.cross = "✗" if self.unicode else "FAIL"
        self.rule_char = "─" if self.unicode else "-"

    def style(self, text: str, *styles: str) -> str:
        """Wrap ``text`` in ANSI codes for ``styles`` when colour is on."""
        if not self.colour or not styles:
            return text
        codes = ";".join(_CODES[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"

    def line(self, text: str = "") -> None:
        """Write one line and flush (the demo narrates while it waits)."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def paragraph(self, text: str, indent: int = 2, width: int = 100) -> None:
        """Write ``text`` wrapped to ``width`` columns (ANSI codes must not be inside it)."""
        prefix = " " * indent
        for line in textwrap.wrap(text, width=width, initial_indent=prefix, subsequent_indent=prefix):
            self.line(line)

    def heading(self, text: str) -> None:
        """Write a section heading with a rule under it."""
        self.line()
        self.line(self.style(text, "bold", "cyan"))
        self.line(self.style(self.rule_char * max(len(text), 20), "cyan"))

    def check(self, ok: bool, text: str) -> None:
        """Write a check result line with a tick or a cross."""
        mark = self.style(self.tick, "green") if ok else self.style(self.cross, "red", "bold")
        self.line(f"  {mark} {text}")

    def field(self, name: str, value: object, width: int = 18) -> None:
        """Write an aligned ``name: value`` line."""
        self.line(f"  {self.style((name + ':').ljust(width), 'dim')} {value}")

    def json(self, value: Any) -> None:
        """Write ``value`` as indented JSON (for ``--json`` and response bodies)."""
        self.line(json.dumps(value, indent=2, ensure_ascii=False))

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[str]],
        styles: Mapping[int, Sequence[str]] | None = None,
    ) -> None:
        """Write a plain-text table; widths are measured before colour is applied."""
        widths = [len(h) for h in headers]
        for row in rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        sep = "  "
        header = sep.join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()
        self.line("  " + self.style(header, "bold"))
        self.line("  " + sep.join(self.rule_char * w for w in widths))
        for row_index, row in enumerate(rows):
            row_styles = (styles or {}).get(row_index, ())
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
            self.line("  " + sep.join(self.style(c, *row_styles) for c in cells).rstrip())

    def bar(self, fraction: float, width: int = 24) -> str:
        """Return a text bar for a fraction in [0, 1]."""
        return lifetime_bar(fraction, width, unicode=self.unicode)


def lifetime_bar(fraction: float, width: int = 24, *, unicode: bool = True) -> str:
    """Return ``[████░░░░]``-style bar text for the fraction of a lifetime that remains."""
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    full, empty = ("█", "░") if unicode else ("#", "-")
    return "[" + full * filled + empty * (width - filled) + "]"


def format_time(timestamp: float, *, millis: bool = False) -> str:
    """Format a POSIX timestamp as UTC ``YYYY-MM-DD HH:MM:SS[.mmm] UTC``."""
    t = time.gmtime(timestamp)
    text = time.strftime("%Y-%m-%d %H:%M:%S", t)
    if millis:
        text += f".{int((timestamp % 1) * 1000):03d}"
    return text + " UTC"


def format_clock(timestamp: float) -> str:
    """Format a POSIX timestamp as a local wall-clock ``HH:MM:SS.mmm`` (for narrated events)."""
    return time.strftime("%H:%M:%S", time.localtime(timestamp)) + f".{int((timestamp % 1) * 1000):03d}"


def format_duration(seconds: float) -> str:
    """Format a (possibly negative) duration for people: ``4.2 s``, ``59 min 58 s``, ``-3 h 2 min``."""
    sign = "-" if seconds < 0 else ""
    rest = abs(seconds)
    if rest < 60:
        return f"{sign}{rest:.1f} s"
    whole = int(rest)
    days, whole = divmod(whole, 86400)
    hours, whole = divmod(whole, 3600)
    minutes, secs = divmod(whole, 60)
    if days:
        return f"{sign}{days} d {hours} h"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    return f"{sign}{minutes} min {secs} s"


def mask_connection_string(endpoint: str) -> str:
    """Return a connection string for display: the endpoint as given, the key never shown."""
    return f"endpoint={endpoint};accesskey=<hidden>"

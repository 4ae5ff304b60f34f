"""The demo's transcript: progress events and checks as text, step headings, the summary table."""

from __future__ import annotations

from collections.abc import Sequence

from ._demo_context import Check, Event, Field, Note, Paragraph, Table, Text
from ._output import Output, format_clock

__all__ = ["Renderer", "format_check_time"]


def format_check_time(seconds: float) -> str:
    """A check's duration for the summary table: milliseconds under a second, right-aligned."""
    text = f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"
    return text.rjust(9)


class Renderer:
    """Formats what the scenarios emit; it is the scenarios' sink (``renderer(event)``).

    Args:
        out: where the transcript goes.
    """

    def __init__(self, out: Output) -> None:
        self.out = out

    def __call__(self, event: Event) -> None:
        out = self.out
        if isinstance(event, Check):
            out.check(event.passed, event.name + (f" ({event.detail})" if event.detail else ""))
        elif isinstance(event, Note):
            stamp = out.style(f"{format_clock(event.at)} +{event.elapsed:5.2f}s", "dim")
            mark = "↻ " if event.refresh and out.unicode else ""
            out.line(f"  {stamp} {mark}{event.text}")
        elif isinstance(event, Field):
            out.field(event.name, event.value)
        elif isinstance(event, Paragraph):
            out.paragraph(event.text)
        elif isinstance(event, Text):
            out.line("  " + event.text)
        elif isinstance(event, Table):
            rows = [[self._cell(cell) for cell in row] for row in event.rows]
            out.table(event.headers, rows, {index: ["red"] for index in event.failed})
        else:  # pragma: no cover - every Event type is handled above
            raise TypeError(f"not a demo event: {type(event).__name__}")

    def _cell(self, cell: str | bool) -> str:
        if isinstance(cell, bool):
            return self.out.tick if cell else self.out.cross
        return cell

    def title(self, text: str) -> None:
        """The demo's first line."""
        self.out.line(self.out.style(text, "bold"))

    def line(self, text: str) -> None:
        """A line of introduction (which endpoint the demo runs against)."""
        self.out.line(text)

    def heading(self, number: int, title: str) -> None:
        """Start a numbered step."""
        self.out.heading(f"Step {number} · {title}" if self.out.unicode else f"Step {number} - {title}")

    def summary(self, results: Sequence[tuple[int, Check]], total_seconds: float) -> None:
        """The summary table of every check, and the verdict line."""
        out = self.out
        out.heading("Summary")
        rows = [
            [str(step), check.name, out.tick if check.passed else out.cross, format_check_time(check.seconds)]
            for step, check in results
        ]
        out.table(
            ["step", "check", "ok", "time"],
            rows,
            {index: ["red"] for index, (_, check) in enumerate(results) if not check.passed},
        )
        failed = sum(1 for _, check in results if not check.passed)
        out.line()
        if failed:
            out.line(out.style(f"{failed} of {len(results)} checks failed in {total_seconds:.1f} s.", "red", "bold"))
        else:
            out.line(out.style(f"All {len(results)} checks passed in {total_seconds:.1f} s.", "green", "bold"))

"""Every Python example of the documentation site runs, as pasted, against a real local emulator.

The pages are those under ``docs/`` and the two PyPI descriptions (``README.pypi.md``, ``emulator/README.md``).

The pages under ``docs/`` are written so that a reader can paste their examples, in order, into one script:
a page's ``python`` blocks run here one after the other in one fresh namespace (``__name__ == "__main__"``),
each compiled as a module of its own, with the page as its file name and the block's own line numbers, so a
traceback points at the docs line that failed. Nothing is substituted and nothing is provided: the pages
start their own ``acs_emulator.Emulator`` where they need a service. Compiling without the top-level-await
flag is the point: a top-level ``await`` or ``async with`` is the ``SyntaxError`` a pasted script would get.

What the examples promise, they ``assert`` themselves; a page whose examples assert nothing fails here. After
a page ran, every emulator it started is stopped (and must have logged no unexpected error) and every
credential it left open is closed.

Two markers, an HTML comment on the last line before a fence, change what happens to a block:

- ``<!-- docs-test: skip REASON -->``: the block is not run (it needs something the machine cannot have, such
  as Microsoft Entra ID). The reason is required, and such blocks are kept few.
- ``<!-- docs-test: pytest -->``: the block is a pytest test module (the emulator's pytest plugin); it is
  written to a temporary folder and run there by pytest in a subprocess, which must report every test passed.
  The README's pytest example (the block that opens with ``# test_NAME.py``) runs in the same subprocess, so
  the plugin's start-up is paid once.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.metadata
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from acs_emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
# Blocks may be skipped only for what this machine cannot have; keep it that way.
MAX_SKIPPED = 6

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*docs-test:\s*(\w[\w-]*)\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced ``python`` block of a docs page."""

    page: Path
    line: int  # the 1-based line of its first line of code
    source: str
    marker: str | None  # "skip", "pytest" or None
    reason: str

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    """The ``python`` blocks of a page, with the marker (if any) on the last non-blank line before each."""
    blocks: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    open_at: int | None = None
    language = ""
    for number, line in enumerate(lines, start=1):
        fence = _FENCE.match(line.strip()) if line.lstrip() == line else None
        if open_at is None:
            if fence:
                open_at, language = number, fence.group(1)
            continue
        if fence and not fence.group(1):
            if language == "python":
                before = [text for text in lines[: open_at - 1] if text.strip()]
                marker = _MARKER.match(before[-1].strip()) if before else None
                body = "\n".join(lines[open_at : number - 1]) + "\n"
                kind, reason = (marker.group(1), marker.group(2)) if marker else (None, "")
                blocks.append(Block(page, open_at + 1, body, kind, reason))
            open_at = None
    assert open_at is None, f"{page}: the fence opened at line {open_at} is never closed"
    return blocks


PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.pypi.md", ROOT / "emulator" / "README.md"]
BLOCKS = {page: read_blocks(page) for page in PAGES}
RUN_PAGES = [page for page, blocks in BLOCKS.items() if any(block.marker is None for block in blocks)]
PYTEST_BLOCKS = [block for blocks in BLOCKS.values() for block in blocks if block.marker == "pytest"]
# The README's pytest example: a python block whose first line names its file.
README_PYTEST_SOURCES = re.findall(r"^```python\n(# test_\w+\.py\n.*?)^```$", README.read_text("utf-8"), re.M | re.S)
PYTEST_SOURCES = [block.source for block in PYTEST_BLOCKS] + README_PYTEST_SOURCES


def compile_block(block: Block) -> Any:
    """Compile a block as a module of its own (no top-level await), with the page's line numbers."""
    return compile("\n" * (block.line - 1) + block.source, str(block.page), "exec", dont_inherit=True)


def close_leftovers(namespace: dict[str, Any]) -> list[Emulator]:
    """Close what a page left open: credentials and clients with ``close()``, then stop its emulators."""
    emulators = [value for value in namespace.values() if isinstance(value, Emulator)]
    for value in list(namespace.values()):
        close = getattr(value, "close", None)
        if isinstance(value, (type, Emulator)) or not callable(close):
            continue
        if type(value).__module__.startswith(("azure.", "acs_emulator")):
            result = close()
            if asyncio.iscoroutine(result):
                result.close()  # an async object a page kept: its loop is gone, so there is nothing to await
    for emulator in emulators:
        emulator.stop()
    return emulators


@pytest.fixture
def page_namespace() -> Iterator[dict[str, Any]]:
    namespace: dict[str, Any] = {"__name__": "__main__"}
    yield namespace
    for emulator in close_leftovers(namespace):
        assert emulator.unexpected_errors == 0, f"{emulator!r} logged unexpected errors"


@pytest.mark.parametrize("page", RUN_PAGES, ids=[str(p.relative_to(ROOT)) for p in RUN_PAGES])
def test_page_examples_run_as_pasted(page: Path, page_namespace: dict[str, Any]) -> None:
    runnable = [block for block in BLOCKS[page] if block.marker is None]
    for block in runnable:
        exec(compile_block(block), page_namespace)  # noqa: S102 - the docs' own examples
    # Each page's examples check what they show.
    asserts = sum(isinstance(node, ast.Assert) for block in runnable for node in ast.walk(ast.parse(block.source)))
    assert asserts >= len(runnable) // 2 + 1, f"{page.name}: {asserts} asserts in {len(runnable)} examples"


def test_every_python_block_runs_or_says_why_not() -> None:
    blocks = [block for page_blocks in BLOCKS.values() for block in page_blocks]
    assert len(blocks) >= 20, "the docs have lost their examples"
    assert {block.marker for block in blocks} <= {None, "skip", "pytest"}
    skipped = [block for block in blocks if block.marker == "skip"]
    assert all(block.reason for block in skipped), [block.id for block in skipped if not block.reason]
    assert len(skipped) <= MAX_SKIPPED, [block.id for block in skipped]
    # A marker that is not on the line before a python fence is a typo that would silently run nothing.
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert text.count("docs-test:") == sum(block.marker is not None for block in BLOCKS[page]), page.name


def test_a_top_level_await_is_a_syntax_error_here() -> None:
    # What issue 16 found in the README: pasted into a script, `async with` at top level does not compile.
    block = Block(DOCS / "credential.md", 1, "async with x:\n    pass\n", None, "")
    with pytest.raises(SyntaxError):
        compile_block(block)


def test_pytest_examples_pass_under_pytest(tmp_path: Path) -> None:
    assert PYTEST_BLOCKS, "the emulator page has lost its pytest example"
    assert README_PYTEST_SOURCES, "the README has lost its pytest example"
    for number, source in enumerate(PYTEST_SOURCES):
        (tmp_path / f"test_docs_example_{number}.py").write_text(source, encoding="utf-8")
    # The plugin is what installing acs-emulator registers (its pytest11 entry point). The subprocess loads
    # that one plugin by the entry point's module and no other (hypothesis alone would take seconds to import).
    (plugin,) = [ep for ep in importlib.metadata.entry_points(group="pytest11") if ep.name == "acs_emulator"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", plugin.value, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    tests = sum(
        isinstance(node, ast.FunctionDef) and node.name.startswith("test")
        for source in PYTEST_SOURCES
        for node in ast.walk(ast.parse(source))
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"\b{tests} passed\b", result.stdout), result.stdout

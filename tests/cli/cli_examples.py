"""The ``examples:`` sections of every ``--help``, read as the shell would read them.

An example is one shell line (a trailing backslash continues it): an optional ``echo ...`` or ``pbpaste`` stage
piped into ``acs-common ...`` (or the emulator's own program), an optional ``< FILE``, and an optional
``| jq .FIELD`` after it. ``export NAME=...`` lines set the environment of the examples after them. ``# ...`` is
a comment. Anything else is a new shape of example that this reader must learn first (it fails loudly).
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass, field

__all__ = ["Example", "epilogs", "examples_in", "parse_example"]

_VARIABLE = re.compile(r"\$([A-Z_]+)")


@dataclass(frozen=True)
class Example:
    """One example, as the shell would run it.

    Attributes:
        source: the program whose help shows it.
        line: the example as written (continuations joined).
        argv: the arguments after the program name, variables still as ``$NAME``.
        program: ``acs-common`` or the emulator's own program name.
        stdin_text: what an ``echo`` stage writes into the pipe.
        stdin_from_clipboard: whether a ``pbpaste`` stage feeds it.
        stdin_file: the file of ``< FILE``.
        jq_field: the field of a ``| jq .FIELD`` stage.
        export: ``(NAME, value)`` for an ``export`` line (then nothing runs).
    """

    source: str
    line: str
    argv: tuple[str, ...] = ()
    program: str = "acs-common"
    stdin_text: str | None = None
    stdin_from_clipboard: bool = False
    stdin_file: str | None = None
    jq_field: str | None = None
    export: tuple[str, str] | None = field(default=None)

    @property
    def id(self) -> str:
        """A short test id."""
        return self.line if len(self.line) <= 70 else self.line[:67] + "..."


def epilogs(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """``(prog, epilog)`` of ``parser`` and of every subcommand parser under it, depth first."""
    found = [(parser.prog, parser.epilog or "")]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):
                found.extend(epilogs(sub))
    return found


def examples_in(epilog: str) -> list[str]:
    """The lines of the ``examples:`` section (up to the first blank line), continuations joined."""
    lines = epilog.splitlines()
    if "examples:" not in lines:
        return []
    examples: list[str] = []
    for raw in lines[lines.index("examples:") + 1 :]:
        if not raw.strip():
            break
        text = raw.strip()
        if examples and examples[-1].endswith("\\"):
            examples[-1] = examples[-1][:-1].rstrip() + " " + text
        else:
            examples.append(text)
    return examples


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|<")
    lexer.whitespace_split = True
    return list(lexer)


def parse_example(source: str, line: str, programs: tuple[str, ...] = ("acs-common",)) -> Example:
    """Read one example line; ``programs`` are the names the command may start with."""
    tokens = _tokens(line)
    if tokens and tokens[0] == "export":
        name, sep, value = " ".join(tokens[1:]).partition("=")
        assert sep, f"cannot read the export in {line!r}"
        assert name.isidentifier(), f"cannot read the export in {line!r}"
        return Example(source, line, export=(name, value))
    stages: list[list[str]] = [[]]
    for token in tokens:
        if token == "|":
            stages.append([])
        else:
            stages[-1].append(token)
    index = next((i for i, stage in enumerate(stages) if stage and stage[0] in programs), None)
    assert index is not None, f"no {' or '.join(programs)} command in {line!r}"
    stdin_text, clipboard = None, False
    for stage in stages[:index]:
        if stage[0] == "echo":
            stdin_text = " ".join(stage[1:]) + "\n"
        elif stage == ["pbpaste"]:
            clipboard = True
        else:
            raise AssertionError(f"unknown stage {stage!r} before the command in {line!r}")
    jq_field = None
    for stage in stages[index + 1 :]:
        assert len(stage) == 2, f"unknown stage {stage!r}"
        assert stage[0] == "jq", f"unknown stage {stage!r}"
        assert stage[1].startswith("."), f"unknown stage {stage!r}"
        jq_field = stage[1][1:]
    command = stages[index]
    stdin_file = None
    if "<" in command:
        at = command.index("<")
        stdin_file = command[at + 1]
        command = command[:at] + command[at + 2 :]
    return Example(
        source,
        line,
        argv=tuple(command[1:]),
        program=command[0],
        stdin_text=stdin_text,
        stdin_from_clipboard=clipboard,
        stdin_file=stdin_file,
        jq_field=jq_field,
    )


def expand(text: str, variables: dict[str, str]) -> str:
    """Replace ``$NAME`` with its value; a name the example environment does not define is an error."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in variables, f"the example uses ${name}, which the test does not define"
        return variables[name]

    return _VARIABLE.sub(value, text)

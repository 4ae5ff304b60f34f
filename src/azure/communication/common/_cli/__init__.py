"""The ``acs-common`` command line (also ``python -m azure.communication.common``).

One error rule for every command (the top-level ``--help`` says it too): an error is one line on stderr,
``acs-common COMMAND: error: MESSAGE``, never a traceback and never a secret. A usage error (the command line
itself is wrong: an unknown option, a bad option value, a missing or malformed argument, a URL argument that is
not ``http(s)://HOST/...``) exits 2, is reported against the (sub)command whose line is wrong, and ends with
``(see 'acs-common COMMAND --help')``. A failure (the command ran: the input it read was invalid, or the
request failed) exits 1. Connection strings are read from an argument, stdin (``-``) or the environment and
shown masked.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any, Final, NoReturn

from ._common import SECRETS_HELP, CLIError, HelpFormatter, UsageError, first_line
from ._output import Output

__all__ = ["build_parser", "main"]

PROG: Final = "acs-common"

EPILOG: Final = (
    """\
examples:
  acs-common demo                                   # the end-to-end walkthrough (about 20 s)
  acs-common emulator --port 8888                   # a local ACS emulator: Identity and Chat
  acs-common token inspect -  < token.txt           # what does this token say?
  acs-common id parse 8:orgid:45ab2481-1c1c-4005-be24-0ffb879b1130
  acs-common request POST '/identities?api-version=2023-10-01' --data '{}'
  acs-common sign GET '/identities/x?api-version=2023-10-01'

Run 'acs-common COMMAND --help' for a command's options and examples.
Exit status: 0 success; 1 failure (the input read was invalid, or the request failed);
2 usage error (unknown option, bad value, missing or malformed argument, a URL that is not
http(s)://HOST/...). Errors are one line: 'acs-common COMMAND: error: MESSAGE'.
Colour only on a terminal, and never with NO_COLOR set.

"""
    + SECRETS_HELP
)


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (``UsageError``), not usage text and ``sys.exit``.

    Args:
        strict: report arguments this parser does not know itself, so that an unknown option after a
            subcommand is named against that subcommand; only the top level (which hands the rest to
            ``emulator``) and ``emulator`` (parsed by the emulator's own parser) are not strict.
    """

    def __init__(self, *args: Any, strict: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.strict = strict

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, rest = super().parse_known_args(args, namespace)
        if rest and self.strict:
            self.error(f"unrecognized arguments: {' '.join(rest)}")
        return parsed, rest

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, prog=self.prog)


def _run_emulator(args: argparse.Namespace, out: Output) -> int:
    """Forward ``acs-common emulator ...`` to the ``acs-emulator`` distribution when it is installed."""
    try:
        from acs_emulator._cli import build_parser as emulator_parser
        from acs_emulator._cli import run_cli
    except ImportError:
        raise CLIError(
            "the emulator is its own distribution, acs-emulator: "
            "pip install 'azure-communication-common[emulator]' (or pip install ./emulator from a checkout)"
        ) from None
    prog = f"{PROG} emulator"
    # The emulator's parser reports its own usage errors, named like ours (``acs-common emulator: error:``);
    # ``prog`` on the arguments names the emulator's run-time error lines the same way.
    emulator_args = emulator_parser(prog).parse_args(list(args.rest))
    emulator_args.prog = prog
    return int(run_cli(emulator_args))


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every subcommand."""
    from .._version import VERSION
    from . import _demo, _ids, _inspect, _request

    parser = _Parser(
        prog=PROG,
        strict=False,
        description="Azure Communication Services from the command line: demo, local emulator, tokens, "
        "identifiers and HMAC-signed requests (azure-communication-common for Python).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    parser.add_argument("--no-color", action="store_true", help="never write ANSI colour")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _demo.add_parser(subparsers)
    emulator = subparsers.add_parser(
        "emulator",
        help="run the local ACS emulator, from the acs-emulator distribution (see 'acs-common emulator --help')",
        add_help=False,
        strict=False,
    )
    emulator.set_defaults(handler=_run_emulator)
    _inspect.add_parser(subparsers)
    _ids.add_parser(subparsers)
    _request.add_parsers(subparsers)
    return parser


def _report(prog: str, message: str) -> None:
    err = Output(sys.stderr)
    sys.stderr.write(f"{prog}: {err.style('error', 'red', 'bold')}: {message}\n")
    sys.stderr.flush()


def _usage_message(exc: UsageError, prog: str) -> str:
    """The usage error's text with the pointer to the help of the command it is about."""
    hint = f"(see '{prog} --help')"
    return str(exc) if str(exc).endswith(hint) else f"{exc} {hint}"


def _dispatch(argv: list[str]) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "emulator":
        # Everything after the word ``emulator`` belongs to the emulator's parser; an unknown option before
        # it is the top level's.
        tail = argv[argv.index("emulator") + 1 :]
        leading = rest[: len(rest) - len(tail)] if rest[len(rest) - len(tail) :] == tail else rest
        if leading:
            parser.error(f"unrecognized arguments: {' '.join(leading)}")
        args.rest = tail
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    out = Output(no_color=args.no_color)
    handler: Any = args.handler
    words = [PROG, args.command, getattr(args, "token_command", None), getattr(args, "id_command", None)]
    try:
        return int(handler(args, out))
    except CLIError as exc:
        if exc.prog is None:
            exc.prog = " ".join(word for word in words if word)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (0 success, 1 failure, 2 usage error).

    Args:
        argv: the arguments after the program name (default ``sys.argv[1:]``).
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(arguments)
    except UsageError as exc:
        prog = exc.prog or PROG
        _report(prog, _usage_message(exc, prog))
        return exc.exit_code
    except CLIError as exc:
        _report(exc.prog or PROG, str(exc))
        return exc.exit_code
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except KeyboardInterrupt:
        _report(PROG, "interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): point stdout at devnull so the interpreter's final flush is quiet.
        # (Suppressed: an in-process stdout replacement has no file descriptor.)
        with contextlib.suppress(OSError, ValueError):
            stdout_fd = sys.stdout.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stdout_fd)
            os.close(devnull)
        return 1
    except Exception as exc:  # the promise is: no traceback, ever
        text = first_line(str(exc))
        _report(PROG, f"unexpected {type(exc).__name__}" + (f": {text}" if text else ""))
        return 1

"""Command-line glue: ``python -m acs_emulator`` and ``acs-common emulator``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Final, NoReturn, TextIO

from ._server import Emulator

__all__ = ["ACCESS_KEY_ENV", "DEFAULT_PORT", "add_cli_arguments", "main", "run_cli"]

#: The environment variable read when ``--access-key`` is not given.
ACCESS_KEY_ENV: Final = "ACS_EMULATOR_ACCESS_KEY"
#: The default port: fixed, so connection strings stay valid across restarts (``--port 0`` = free port).
DEFAULT_PORT: Final = 10030

_LOGGER_NAME: Final = "acs_emulator"


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the emulator's options to ``parser`` (for :func:`run_cli`)."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = free port)")
    parser.add_argument(
        "--access-key",
        metavar="KEY",
        help=f"base64 access key; '-' reads it from stdin; default: ${ACCESS_KEY_ENV}, else generated",
    )
    parser.add_argument("--database", metavar="PATH", help="SQLite file that survives restarts (default: in-memory)")
    parser.add_argument("--resource-id", metavar="GUID", help="resource id in ids and tokens")
    parser.add_argument(
        "--allow-short-tokens",
        action="store_true",
        help="accept expiresInMinutes >= 1 and expiresInSeconds (demos and tests only)",
    )
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS", help="delay added to every request")
    parser.add_argument(
        "--fail-rate",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="fraction of requests answered 503 with Retry-After (0..1)",
    )
    parser.add_argument("--retry-after", type=int, default=1, metavar="SECONDS", help="Retry-After of injected 503s")
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level of the emulator and its access log (default info)",
    )


def _resolve_access_key(value: str | None, stdin: TextIO) -> str | None:
    if value == "-":
        return stdin.readline().strip()
    if value is not None:
        return value
    return os.environ.get(ACCESS_KEY_ENV) or None


async def _serve_until_signalled(emulator: Emulator, out: TextIO) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - Windows loops
            signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    try:
        async with emulator:
            # The one place the emulator shows its key: the user started it and asked for it.
            print(f"ACS Identity emulator listening on {emulator.endpoint}", file=out)
            print(f"endpoint: {emulator.endpoint}", file=out)
            print(f"connection string: {emulator.connection_string}", file=out)
            print(f"jwks: {emulator.jwks_url}", file=out)
            print(f"resource id: {emulator.resource_id}", file=out)
            print("Press Ctrl+C to stop.", file=out, flush=True)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def run_cli(args: argparse.Namespace) -> int:
    """Run the emulator until SIGINT or SIGTERM; return the process exit code.

    Prints the endpoint, the connection string (with the access key: the one place the key is shown)
    and the JWKS URL at start. Exit codes: 0 after a signal, 2 for bad options, 1 when it cannot bind.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger(_LOGGER_NAME)
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(args.log_level.upper())
    try:
        try:
            emulator = Emulator(
                _resolve_access_key(args.access_key, sys.stdin),
                host=args.host,
                port=args.port,
                database=args.database,
                allow_short_tokens=args.allow_short_tokens,
                latency=args.latency,
                fail_rate=args.fail_rate,
                retry_after=args.retry_after,
                resource_id=args.resource_id,
            )
        except (TypeError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        try:
            asyncio.run(_serve_until_signalled(emulator, sys.stdout))
        except OSError as exc:
            print(f"error: cannot serve on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
            return 1
        print("ACS Identity emulator stopped.", file=sys.stdout, flush=True)
        return 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


EPILOG: Final = """\
examples:
  {prog}                        # 127.0.0.1:{port}, in-memory store
  {prog} --port 0               # a free port (printed at startup)
  {prog} --port 8888 --database acs.sqlite
  {prog} --allow-short-tokens   # lets token requests ask for lifetimes of seconds
  {prog} --access-key - < key.txt

The emulator prints its endpoint and connection string; stop it with Ctrl-C.
"""


class _Parser(argparse.ArgumentParser):
    """A parser whose usage errors are one line, ``PROG: error: ...``, with exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(prog: str = "acs-emulator") -> argparse.ArgumentParser:
    """Return the emulator's argument parser, named ``prog`` in its messages."""
    parser = _Parser(
        prog=prog,
        description="A local Azure Communication Services emulator: the Identity REST API with HMAC "
        "authentication, on 127.0.0.1 by default.",
        epilog=EPILOG.format(prog=prog, port=DEFAULT_PORT),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_cli_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = "acs-emulator") -> int:
    """The ``acs-emulator`` console script: parse ``argv`` and serve until SIGINT/SIGTERM."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return run_cli(args)

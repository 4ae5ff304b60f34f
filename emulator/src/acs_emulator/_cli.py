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

from ._server import LOOSE_ENV, Emulator
from ._store import StorageError

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
    parser.add_argument(
        "--https",
        action="store_true",
        help="serve TLS with a certificate from a local CA made for the run (its PEM is printed; kept beside "
        "--database)",
    )
    parser.add_argument(
        "--loose",
        action="store_true",
        default=None,
        help=f"accept any api-version (unknown ones get the newest behaviour); also ${LOOSE_ENV}=1",
    )
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


def _mask(key: str) -> str:
    return "*" * 8 if len(key) < 12 else f"{key[:4]}...{key[-2:]} (masked)"


def print_banner(emulator: Emulator, out: TextIO) -> None:
    """Print the start-up summary: where to connect, and where the developer tools are.

    The connection string shows the access key only when the emulator generated it: a key the user
    supplied (``--access-key``, stdin, environment) was deliberately kept off the screen, so it is masked.
    """
    key = emulator.access_key
    connection = emulator.connection_string
    if not emulator.key_generated:
        connection = connection.replace(key, _mask(key))
    lines = [
        f"ACS emulator listening on {emulator.endpoint}",
        f"endpoint:          {emulator.endpoint}",
        f"connection string: {connection}",
    ]
    if emulator.ca_bundle is not None:
        lines.append(f"CA bundle:         {emulator.ca_bundle}  (connection_verify= / verify= / SSL_CERT_FILE)")
    lines += [
        f"JWKS:              {emulator.jwks_url}",
        f"inspector:         {emulator.endpoint}/_emulator/ui/",
        f"control plane:     {emulator.endpoint}/_emulator/",
        f"resource id:       {emulator.resource_id}",
    ]
    if emulator.loose:
        lines.append("api-versions:      any (loose)")
    lines.append("Press Ctrl+C to stop.")
    print("\n".join(lines), file=out, flush=True)


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
            # The one place the emulator shows a key: one it generated, which the user needs.
            print_banner(emulator, out)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def run_cli(args: argparse.Namespace) -> int:
    """Run the emulator until SIGINT or SIGTERM; return the process exit code.

    Prints the start-up banner (:func:`print_banner`). Exit codes: 0 after a signal, 2 for bad options,
    1 when it cannot bind or the database cannot be used (one line naming the path).
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
                https=args.https,
                loose=args.loose,
            )
        except (TypeError, ValueError) as exc:
            prog = getattr(args, "prog", "acs-emulator")  # acs-common emulator names itself
            print(f"{prog}: error: {exc} (see '{prog} --help')", file=sys.stderr)
            return 2
        try:
            asyncio.run(_serve_until_signalled(emulator, sys.stdout))
        except StorageError as exc:
            print(f"{getattr(args, 'prog', 'acs-emulator')}: error: {exc}", file=sys.stderr)
            return 1
        except ValueError as exc:  # the CA files beside the database cannot be read
            print(f"{getattr(args, 'prog', 'acs-emulator')}: error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            prog = getattr(args, "prog", "acs-emulator")  # acs-common emulator names itself
            print(f"{prog}: error: cannot serve on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
            return 1
        print("ACS emulator stopped.", file=sys.stdout, flush=True)
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
  {prog} --https --database acs.sqlite  # TLS; the CA (acs.sqlite.ca.pem) is printed and kept
  {prog} --loose                # any api-version

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

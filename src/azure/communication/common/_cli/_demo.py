"""``acs-common demo``: the whole product working, end to end, in a few seconds.

With no connection string the demo starts the emulator in-process (loopback, in-memory, short tokens
allowed). With one it runs the same flow against that resource; real tokens live at least an hour, so the
refresh steps hand the credential each issued token with a short *assumed* lifetime instead.

The steps are scenario functions (``_demo_steps``, ``_demo_chat``) that return checks and emit progress
events; ``_demo_render`` formats them; ``_demo_run`` runs them. This module holds the command's options, so that
building the parser stays cheap for the other commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ._common import SECRETS_HELP, HelpFormatter, add_connection_string_argument

if TYPE_CHECKING:
    from ._output import Output

__all__ = [
    "CHAT_TOKEN_SECONDS",
    "DEFAULT_REFRESHES",
    "DEFAULT_TASKS",
    "DEFAULT_THREADS",
    "DEFAULT_TOKEN_SECONDS",
    "add_parser",
    "run",
]

# The defaults of the demo's options (``DemoOptions`` takes them from here).
#: 8 s tokens refresh at about 4 s left: slack enough for a loaded machine, quick enough for a demo.
DEFAULT_TOKEN_SECONDS: Final = 8
DEFAULT_REFRESHES: Final = 2
DEFAULT_THREADS: Final = 32
DEFAULT_TASKS: Final = 1000
#: How long the chat step's tokens live (seconds): a conversation of a few seconds outlives several.
CHAT_TOKEN_SECONDS: Final = 4

EPILOG: Final = (
    """\
examples:
  acs-common demo                         # starts the emulator in-process; about 20 seconds
  acs-common demo --token-seconds 4 --refreshes 3
  acs-common demo -c - < connection-string.txt     # the same flow against a real resource

Steps: 1 connection string and HMAC-signed requests (create a user, issue a token);
2 the token credential with proactive refresh (background refreshes as they happen; many threads,
one refresher call); 3 the same with asyncio; 4 identifiers and the wire model; 5 a chat between
two users through the official chat client, outliving their tokens; 6 revocation and deletion;
then a summary table.
Against a real resource the demo creates its users and deletes them at the end (even after a failure).
Exit status: 0 when every check held, 1 otherwise, 2 for usage errors.

"""
    + SECRETS_HELP
)


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``demo`` (the scenarios are imported now, not with the parser)."""
    from ._demo_run import run as run_demo_command

    return run_demo_command(args, out)


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, got {value}")
        return value

    return convert


def add_parser(subparsers: Any) -> None:
    """Register ``demo``."""
    demo = subparsers.add_parser(
        "demo",
        help="the end-to-end walkthrough (emulator in-process, or a real resource)",
        description="Walk through the library end to end: HMAC-signed requests, the token credential with "
        "proactive refresh (threads and asyncio), identifiers, a chat through the official client that outlives "
        "its tokens, revocation and deletion.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_connection_string_argument(demo)
    demo.add_argument(
        "--token-seconds",
        type=_bounded_int(4, 300),
        default=DEFAULT_TOKEN_SECONDS,
        metavar="S",
        help=f"lifetime of the short tokens in steps 2 and 3 (default {DEFAULT_TOKEN_SECONDS}; the chat step's live "
        f"{CHAT_TOKEN_SECONDS} s)",
    )
    demo.add_argument(
        "--refreshes",
        type=_bounded_int(1, 20),
        default=DEFAULT_REFRESHES,
        metavar="N",
        help=f"background refreshes to wait for in step 2 (default {DEFAULT_REFRESHES})",
    )
    demo.add_argument(
        "--threads",
        type=_bounded_int(2, 256),
        default=DEFAULT_THREADS,
        metavar="N",
        help=f"concurrent threads in step 2 (default {DEFAULT_THREADS})",
    )
    demo.add_argument(
        "--tasks",
        type=_bounded_int(2, 100_000),
        default=DEFAULT_TASKS,
        metavar="N",
        help=f"concurrent asyncio tasks in step 3 (default {DEFAULT_TASKS})",
    )
    demo.add_argument("--verbose", "-v", action="store_true", help="show the library's debug log on stderr")
    demo.set_defaults(handler=run)

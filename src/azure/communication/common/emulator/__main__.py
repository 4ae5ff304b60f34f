"""``python -m azure.communication.common.emulator``: run the local ACS Identity emulator."""

from __future__ import annotations

import argparse
import sys

from ._cli import add_cli_arguments, run_cli


def main() -> int:
    """Parse the command line and run the emulator until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m azure.communication.common.emulator",
        description="A local Azure Communication Services Identity emulator.",
    )
    add_cli_arguments(parser)
    return run_cli(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

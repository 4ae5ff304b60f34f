"""``python -m acs_emulator``: run the local ACS emulator."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m acs_emulator"))

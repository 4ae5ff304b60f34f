"""Fixtures of the emulator tests: one shared emulator per module, plus a clean one per test on demand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acs_emulator import Emulator


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[Emulator]:
    """One running emulator for a whole module (tests must not depend on its row count)."""
    with Emulator() as emu:
        yield emu
    assert emu.unexpected_errors == 0


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator for one test."""
    with Emulator() as emu:
        yield emu
        assert emu.unexpected_errors == 0

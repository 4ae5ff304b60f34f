"""How many times this process's line of ancestors forked: what tells a credential it runs in a forked child.

Its own module so that a credential can check it without importing the scheduler, which only proactive
credentials and refresh deadlines need (``make bench`` case 9 counts every module ``import`` loads).
"""

from __future__ import annotations

import os

__all__ = ["fork_generation"]

_generation = 0


def fork_generation() -> int:
    """How many times this process's line of ancestors forked since this module was imported.

    A credential records it with its lock and schedule; a different value on its slow path means it runs
    in a forked child, where its lock may be held by a parent thread that does not exist here, its
    in-flight refresh will never finish, and its schedule lives in the parent's scheduler.
    """
    return _generation


def _after_fork_in_child() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

"""How many times this process's line of ancestors forked: what tells a credential it runs in a forked child.

Its own module so that a credential can check it without importing the scheduler, which only proactive
credentials and refresh deadlines need (``make bench`` case 9 counts every module ``import`` loads). It also
owns the process's lock for creating credentials' own locks, replaced in a forked child.

The package's one fork hook lives here, in a module that imports almost nothing, on purpose: the
interpreter holds an at-fork callback, and so its module's globals, until the very end of finalization. A
hook registered from the credential module kept that module and everything it imports alive past the
interpreter's module clean-up, which made every process that imported the package take about 4 ms longer
to exit. Other modules add theirs with :func:`after_fork_in_child`, which holds them weakly.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable

__all__ = ["after_fork_in_child", "alloc_lock", "fork_generation"]

_generation = 0
_alloc_lock = threading.Lock()
_child_hooks: list[weakref.ref[Callable[[], None]]] = []


def fork_generation() -> int:
    """How many times this process's line of ancestors forked since this module was imported.

    A credential records it with its lock and schedule; a different value on its slow path means it runs
    in a forked child, where its lock may be held by a parent thread that does not exist here, its
    in-flight refresh will never finish, and its schedule lives in the parent's scheduler.
    """
    return _generation


def alloc_lock() -> threading.Lock:
    """The lock that guards the lazy creation of per-credential locks (most credentials never need one).

    A new lock in a forked child: a parent thread may have held it at the fork, and that thread does not
    exist in the child.
    """
    return _alloc_lock


def after_fork_in_child(hook: Callable[[], None]) -> None:
    """Call ``hook`` in a forked child, after :func:`fork_generation` has changed, in registration order.

    Held weakly: a module-level function lives as long as its module, and the hook does not keep the
    module alive at interpreter exit.
    """
    _child_hooks.append(weakref.ref(hook))


def _after_fork_in_child() -> None:
    global _generation, _alloc_lock
    _generation += 1
    _alloc_lock = threading.Lock()
    for ref in _child_hooks:
        hook = ref()
        if hook is not None:
            hook()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

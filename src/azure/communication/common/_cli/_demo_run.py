"""The demo's run: the step list, the loop that runs the scenarios, and the ``acs-common demo`` handler.

Imported only when the demo runs (``_demo`` holds the command's options): the scenarios need asyncio, azure-core
and the official clients, which the offline commands (``id``, ``token``) must not pay for at start-up.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import _demo_chat, _demo_steps
from ._common import CLIError, first_line, resolve_connection_string
from ._demo_context import Check, DemoContext, DemoOptions, Event
from ._demo_render import Renderer
from ._output import Output

__all__ = ["STEPS", "Step", "default_steps", "run", "run_demo"]


@dataclass(frozen=True)
class Step:
    """One numbered step of the demo.

    Args:
        number: its number in the transcript and the summary.
        title: its heading.
        run: the scenario.
        needs_user: skip it when step 1 could not create the demo's user.
        essential: stop the demo when it fails (later steps depend on it).
    """

    number: int
    title: str
    run: Callable[[DemoContext], list[Check]]
    needs_user: bool = True
    essential: bool = False


def default_steps() -> tuple[Step, ...]:
    """The demo's steps, in order."""
    return (
        Step(1, "Connection string and HMAC-signed requests", _demo_steps.step_hmac, needs_user=False, essential=True),
        Step(2, "CommunicationTokenCredential: proactive refresh (threads)", _demo_steps.step_threads),
        Step(3, "The same with asyncio (AsyncPipeline + AioHttpTransport)", _demo_steps.step_asyncio),
        Step(4, "Communication identifiers and the wire model", _demo_steps.step_identifiers, needs_user=False),
        Step(5, "Chat through the official client, outliving its tokens", _demo_chat.step_chat),
        Step(6, "Revocation and deletion", _demo_steps.step_revocation),
    )


#: The demo's steps (a test may replace them).
STEPS: tuple[Step, ...] = default_steps()


class _Recorder:
    """Passes events on to the renderer and keeps the checks, so a step that raises keeps what it checked."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self.checks: list[Check] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, Check):
            self.checks.append(event)
        self.renderer(event)


def run_demo(context: DemoContext, renderer: Renderer, steps: Sequence[Step] | None = None) -> list[tuple[int, Check]]:
    """Run ``steps`` (default :data:`STEPS`) in order and return every check with its step number.

    A step that raises becomes a failed check ("step N completed"); the steps that do not depend on it still
    run. The demo's user is deleted at the end if a failure kept the revocation step from doing it.
    """
    if steps is None:
        steps = STEPS
    results: list[tuple[int, Check]] = []
    try:
        for step in steps:
            if step.needs_user and context.user_id is None:
                continue
            renderer.heading(step.number, step.title)
            recorder = _Recorder(renderer)
            context.sink = recorder
            started = context.timer()
            try:
                checks = step.run(context)
            except Exception as exc:  # a failed step is a failed check, never a traceback
                failure = Check(f"step {step.number} completed", False, _describe(exc), context.timer() - started)
                recorder(failure)
                results.extend((step.number, check) for check in recorder.checks)
                if step.essential:
                    break
                continue
            results.extend((step.number, check) for check in checks)
    finally:
        context.sink = renderer
        _demo_steps.cleanup(context)
        context.close()
    return results


def _describe(exc: BaseException) -> str:
    text = first_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def _library_debug_log() -> Iterator[None]:
    """Show the library's debug log on stderr for the duration of the demo, then undo it."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("    [%(levelname)s %(name)s] %(message)s"))
    logger = logging.getLogger("azure.communication.common")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextlib.contextmanager
def _emulator(renderer: Renderer) -> Iterator[Any]:
    try:
        from acs_emulator import Emulator
    except ImportError as exc:
        raise CLIError(
            f"the demo needs the acs-emulator distribution ({exc.name or 'a dependency'} is missing): "
            "pip install 'azure-communication-common[emulator]'"
        ) from None
    emulator = Emulator(allow_short_tokens=True)
    emulator.start()
    try:
        renderer.line(
            f"Started the ACS emulator in-process at {emulator.endpoint} (in-memory store, short tokens allowed)."
        )
        yield emulator
    finally:
        emulator.stop()


def run(args: argparse.Namespace, out: Output) -> int:
    """Run ``demo``."""
    endpoint_credential = resolve_connection_string(args.connection_string, required=False)
    renderer = Renderer(out)
    renderer.title("azure-communication-common for Python: end-to-end demo")
    options = DemoOptions(
        token_seconds=args.token_seconds, refreshes=args.refreshes, threads=args.threads, tasks=args.tasks
    )
    with contextlib.ExitStack() as stack:
        if args.verbose:
            stack.enter_context(_library_debug_log())
        if endpoint_credential is None:
            from .._connection_string import parse_connection_string

            emulator = stack.enter_context(_emulator(renderer))
            endpoint_credential = parse_connection_string(emulator.connection_string)
            emulated = True
        else:
            renderer.line(
                "Running against the resource at "
                f"{endpoint_credential.endpoint} (from the connection string; key hidden)."
            )
            emulated = False
        context = DemoContext(endpoint_credential, emulated, renderer, options)
        results = run_demo(context, renderer)
        renderer.summary(results, context.timer() - context.started)
    failed = [(step, check) for step, check in results if not check.passed]
    if failed or not results:
        reason = "no checks ran"
        if failed:
            step, first = failed[0]
            reason = f"first: step {step}: {first.name}" + (f" ({first.detail})" if first.detail else "")
        raise CLIError(f"demo failed: {len(failed)} of {len(results)} checks failed; {reason}")
    return 0

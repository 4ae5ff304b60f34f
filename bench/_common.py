"""Shared helpers for the benchmark cases: timing, statistics, test tokens and peer loading.

Every case module runs inside a worker subprocess (see ``_runner.py``); results travel back to the parent as
one JSON object per line on stdout, prefixed with ``RESULT``, so that a contender that hangs or crashes after
others have reported loses only its own row.
"""

from __future__ import annotations

import base64
import gc
import importlib
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

RESULT_PREFIX = "RESULT "


def rounds_for(quick: bool) -> int:
    """Interleaved rounds of the micro-benchmarks: many short samples make the median robust to bursts
    of load from other processes on a shared machine."""
    return 11 if quick else 41


def sample_ns_for(quick: bool) -> float:
    """Target length of one timed sample."""
    return 3e6 if quick else 5e6


# The three peers: the private ``_shared`` folders vendored inside the official packages.
PEERS: dict[str, str] = {
    "identity": "azure.communication.identity._shared",
    "chat": "azure.communication.chat._shared",
    "callautomation": "azure.communication.callautomation._shared",
}
PEER_LABELS: dict[str, str] = {
    "identity": "peer: identity 1.5.0 `_shared`",
    "chat": "peer: chat 1.3.0 `_shared`",
    "callautomation": "peer: callautomation 1.6.0 `_shared`",
}


def emit(record: dict[str, Any]) -> None:
    """Send one result record to the parent process (flushed at once, so a later hang loses nothing)."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(record, sort_keys=True) + "\n")
    sys.stdout.flush()


def peer_module(peer: str, name: str) -> Any:
    """Import ``<peer>._shared.<name>`` (e.g. ``user_credential``)."""
    return importlib.import_module(f"{PEERS[peer]}.{name}")


# --- statistics ---------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 64 samples is the 64th: the worst, as a skeptic would read it)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * pct // 100))
    return float(ordered[int(rank) - 1])


# --- timing -------------------------------------------------------------------------------------


@dataclass
class Samples:
    """Per-round ns per call: wall clock (``perf_counter_ns``) and this thread's CPU (``thread_time_ns``).

    The CPU time leaves out the time the process spent descheduled, so it stays honest on a shared, loaded
    machine; on a quiet one the two agree.
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def summary(self, divisor: float = 1.0) -> dict[str, float]:
        return {
            "ns_per_call": median(self.wall) / divisor,
            "ns_min": min(self.wall) / divisor,
            "cpu_ns_per_call": median(self.cpu) / divisor,
            "cpu_rounds": [round(x / divisor, 1) for x in self.cpu],
            "rounds": len(self.wall),
        }


def _timed(batch: Callable[[], object], n: int, samples: Samples) -> None:
    gc.collect()
    gc.disable()
    try:
        cpu_start = time.thread_time_ns()
        start = time.perf_counter_ns()
        batch()
        wall = time.perf_counter_ns() - start
        cpu = time.thread_time_ns() - cpu_start
    finally:
        gc.enable()
    samples.wall.append(wall / n)
    samples.cpu.append(cpu / n)


def _loop(fn: Callable[[], object], n: int) -> Callable[[], None]:
    def batch() -> None:
        for _ in repeat(None, n):
            fn()

    return batch


def calibrate(fn: Callable[[], object], target_ns: float) -> int:
    """Pick a call count so that one sample of ``fn`` lasts about ``target_ns``."""
    n = 1
    while True:
        start = time.perf_counter_ns()
        _loop(fn, n)()
        elapsed = time.perf_counter_ns() - start
        if elapsed >= target_ns / 10 or n >= 1 << 24:
            return max(1, int(n * target_ns / max(elapsed, 1.0)))
        n *= 10


def interleaved_medians(
    contenders: dict[str, Callable[[], object]], rounds: int, sample_ns: float
) -> dict[str, Samples]:
    """Time every contender in the same process, one sample each per round, rotating the order.

    Interleaving means slow drifts of the machine (frequency, a neighbour's load) hit every contender alike,
    so the ratios between them are measured under the same conditions. Each sample is ``n`` back-to-back
    calls (loop and call overhead included, as for every row). GC is off while sampling (as in timeit).
    """
    batches = {name: (_loop(fn, n := calibrate(fn, sample_ns)), n) for name, fn in contenders.items()}
    samples = {name: Samples() for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            batch, n = batches[name]
            _timed(batch, n, samples[name])
    return samples


def interleaved_batches(
    factories: dict[str, Callable[[int], Callable[[], object]]],
    counts: dict[str, int],
    rounds: int,
) -> dict[str, Samples]:
    """Like :func:`interleaved_medians` for calls that need fresh inputs (e.g. a new request each call).

    ``factories[name](n)`` prepares ``n`` inputs (untimed) and returns a closure that processes them all;
    only the closure is timed.
    """
    samples = {name: Samples() for name in factories}
    names = list(factories)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            _timed(factories[name](counts[name]), counts[name], samples[name])
    return samples


# --- test tokens --------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_jwt(exp: float, *, extra: dict[str, Any] | None = None, realistic: bool = True) -> str:
    """Build an unsigned-but-shaped JWT (header.payload.signature) with the given ``exp``.

    ``realistic`` shapes the payload like an ACS token (claims ``skypeid``, ``scp``, ``csi``, ``iat``,
    ``acsScope``, ``resourceId``, ``resourceLocation``) with a 256-byte RS256-sized signature, about the size
    of a real token; otherwise the payload is ``{"exp": ...}`` and the signature 16 bytes (the short token).
    """
    header: dict[str, Any] = {"alg": "RS256", "typ": "JWT"}
    payload: dict[str, Any]
    if realistic:
        header["kid"] = "5FC1D4A9B2E7F60398C4D1E2A7B6F5C4D3E2F1A0"
        payload = {
            "skypeid": "acs:6ab2a5a0-1f2c-4d3e-8f4a-5b6c7d8e9f00_00000021-8a5c-4e3b-9b7a-0d1c2b3a4f5e",
            "scp": 1792,
            "csi": int(exp) - 86400,
            "exp": exp,
            "rgn": "amer",
            "acsScope": "chat,voip",
            "resourceId": "6ab2a5a0-1f2c-4d3e-8f4a-5b6c7d8e9f00",
            "resourceLocation": "unitedstates",
            "iat": int(exp) - 86400,
        }
        signature = bytes(range(256))
    else:
        payload = {"exp": exp}
        signature = bytes(range(16))
    if extra:
        payload.update(extra)
    return ".".join(
        (
            b64url(json.dumps(header, separators=(",", ":")).encode()),
            b64url(json.dumps(payload, separators=(",", ":")).encode()),
            b64url(signature),
        )
    )


def make_url_safe_jwt(exp: float) -> str:
    """A valid JWT whose base64url payload contains both ``-`` and ``_`` (the characters base64 lacks).

    The nonce is searched deterministically, so every run benchmarks the same token.
    """
    # "~~~" (0x7E...) yields the sextet 62 ("-") and "???" (0x3F...) the sextet 63 ("_") at the right offset.
    for shift in range(9):
        nonce = "x" * (shift % 3) + "~~~" + "x" * (shift // 3) + "???"
        token = make_jwt(exp, extra={"nonce": nonce})
        payload = token.split(".")[1]
        if "-" in payload and "_" in payload:
            return token
    raise RuntimeError("no base64url nonce found")  # pragma: no cover - the search succeeds in a few steps


def describe_exception(exc: BaseException) -> str:
    """Name an exception by type only (messages may quote tokens)."""
    return type(exc).__name__


def quick_or_full(quick: bool, quick_value: Any, full_value: Any) -> Any:
    return quick_value if quick else full_value


def fmt_ns(ns: float) -> str:
    if ns != ns:  # NaN
        return "n/a"
    if ns >= 1e6:
        return f"{ns / 1e6:,.2f} ms"
    if ns >= 1e4:
        return f"{ns / 1e3:,.1f} µs"
    if ns >= 1e3:
        return f"{ns / 1e3:,.2f} µs"
    return f"{ns:,.0f} ns"

"""Chaos rules: injected latency and error answers by method and route pattern, as data.

A rule set is parsed once (``PUT /_emulator/chaos`` or the ``--latency/--fail-rate/--retry-after`` shorthand)
into frozen :class:`ChaosRule` values; :class:`ChaosEngine` holds them with their remaining ``times`` and
decides, for one request, which latency to add and which error to answer. The decision is pure apart from the
random source, which is injected (seedable), so tests replay it exactly.

Semantics, in order of the rules: every unspent rule whose method and path match adds its ``latency``; the first
of them with a ``status`` that fires (with its ``probability``) answers that status, and the rest are not
consulted. ``times`` counts a rule's answers (its matches, for a latency-only rule); at 0 the rule is spent.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ._errors import ApiError

__all__ = ["MAX_RULES", "ChaosEngine", "ChaosRule", "Fault", "parse_rules", "shorthand_rules"]

#: More rules than anyone writes by hand; the bound keeps a request's rule scan short.
MAX_RULES: Final = 64
#: The longest injected latency: longer than any client timeout worth testing, short of a hung server.
MAX_LATENCY: Final = 600.0

_METHODS: Final = frozenset({"*", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_FIELDS: Final = ("method", "path", "status", "probability", "latency", "retryAfter", "times")

# The service's error codes for the statuses a chaos rule is likely to inject.
_STATUS_CODES: Final = {
    400: "BadRequest",
    401: "Denied",
    403: "Forbidden",
    404: "NotFound",
    408: "RequestTimeout",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass(frozen=True, slots=True)
class ChaosRule:
    """One fault rule.

    Attributes:
        method: an HTTP method, or ``*`` for any.
        path: a request path (``/identities``), a prefix ending in ``*`` (``/chat/*``), or ``*`` for any.
        status: the error status to answer (400-599), or None for a latency-only rule.
        probability: the chance (0 to 1) that a matching request is answered ``status``.
        latency: seconds added to every matching request.
        retry_after: the ``Retry-After`` seconds sent with the error, or None for no header.
        times: how many answers the rule gives before it is spent, or None for no limit.
    """

    method: str = "*"
    path: str = "*"
    status: int | None = None
    probability: float = 1.0
    latency: float = 0.0
    retry_after: int | None = None
    times: int | None = None

    def matches(self, method: str, path: str) -> bool:
        """Whether the rule applies to a request (its ``times`` aside)."""
        if self.method not in ("*", method):
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path

    def to_json(self, times: int | None) -> dict[str, Any]:
        """The rule in the ``PUT /_emulator/chaos`` shape, with ``times`` as given (the remaining count)."""
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "probability": self.probability,
            "latency": self.latency,
            "retryAfter": self.retry_after,
            "times": times,
        }


@dataclass(frozen=True, slots=True)
class Fault:
    """What the chaos rules decided for one request.

    Attributes:
        latency: seconds to wait before answering (or before handling, without ``status``).
        status: the error status to answer, or None to handle the request normally.
        code: the ``error.code`` of the injected answer.
        message: the ``error.message`` of the injected answer.
        retry_after: the ``Retry-After`` header value, or None for none.
    """

    latency: float
    status: int | None = None
    code: str = ""
    message: str = ""
    retry_after: int | None = None


def _invalid(where: str, expected: str) -> ApiError:
    return ApiError(400, "InvalidChaosRule", f"{where} must be {expected}.")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _whole(value: object, where: str, low: int, high: int, expected: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _invalid(where, expected)
    return value


def _parse_rule(raw: object, where: str) -> ChaosRule:
    if not isinstance(raw, Mapping):
        raise _invalid(where, "an object")
    unknown = sorted(str(name) for name in raw if name not in _FIELDS)
    if unknown:
        raise ApiError(
            400,
            "InvalidChaosRule",
            f"{where} has unknown field(s) {', '.join(map(repr, unknown))}; expected: {', '.join(_FIELDS)}.",
        )
    method = raw.get("method", "*")
    if not isinstance(method, str) or method.upper() not in _METHODS:
        raise _invalid(f"{where}.method", "an HTTP method (GET, POST, PUT, PATCH, DELETE, ...) or '*'")
    path = raw.get("path", "*")
    if not isinstance(path, str) or not (path == "*" or (path.startswith("/") and "*" not in path[:-1])):
        raise _invalid(f"{where}.path", "'*' or a path starting with '/' (a trailing '*' matches any rest)")
    if len(path) > 2048:
        raise _invalid(f"{where}.path", "at most 2048 characters")
    status = _whole(raw.get("status"), f"{where}.status", 400, 599, "an HTTP error status from 400 to 599, or null")
    probability = _number(raw.get("probability", 1.0))
    if probability is None or not 0.0 <= probability <= 1.0:
        raise _invalid(f"{where}.probability", "a number from 0 to 1")
    latency = _number(raw.get("latency", 0.0))
    if latency is None or not 0.0 <= latency <= MAX_LATENCY:
        raise _invalid(f"{where}.latency", f"a number of seconds from 0 to {MAX_LATENCY:g}")
    retry_after = _whole(raw.get("retryAfter"), f"{where}.retryAfter", 0, 86400, "whole seconds from 0 to 86400")
    times = _whole(raw.get("times"), f"{where}.times", 0, 10**9, "a whole number >= 0, or null for no limit")
    if status is None and latency == 0.0:
        raise _invalid(where, "given a status or a latency (a rule with neither does nothing)")
    return ChaosRule(method.upper(), path, status, probability, latency, retry_after, times)


def parse_rules(payload: object) -> tuple[ChaosRule, ...]:
    """Parse a ``{"rules": [...]}`` document.

    Args:
        payload: the decoded JSON body.

    Raises:
        ApiError: 400 ``InvalidChaosRule`` naming the first bad field (``rules[1].status``).
    """
    if not isinstance(payload, Mapping) or set(payload) != {"rules"}:
        raise _invalid("The body", 'a JSON object with one field, "rules"')
    rules = payload["rules"]
    if not isinstance(rules, list):
        raise _invalid("rules", "a list of rule objects")
    if len(rules) > MAX_RULES:
        raise _invalid("rules", f"at most {MAX_RULES} rules")
    return tuple(_parse_rule(rule, f"rules[{index}]") for index, rule in enumerate(rules))


def shorthand_rules(latency: float, fail_rate: float, retry_after: int) -> tuple[ChaosRule, ...]:
    """The one rule that ``--latency/--fail-rate/--retry-after`` stand for (none when both are 0).

    Args:
        latency: seconds added to every request.
        fail_rate: the fraction of requests answered 503.
        retry_after: the ``Retry-After`` of those 503s.
    """
    if latency <= 0 and fail_rate <= 0:
        return ()
    status = 503 if fail_rate > 0 else None
    return (ChaosRule("*", "*", status, fail_rate if status else 1.0, latency, retry_after if status else None),)


class ChaosEngine:
    """The current rules with their remaining ``times``, and the per-request decision.

    Args:
        rng: the random source for ``probability`` (seed it for reproducible runs).
        rules: the initial rules (also what :meth:`restore` goes back to).
    """

    def __init__(self, rng: random.Random, rules: Sequence[ChaosRule] = ()) -> None:
        self._rng = rng
        self._initial = tuple(rules)
        self._rules: tuple[ChaosRule, ...] = ()
        self._remaining: list[int | None] = []
        self.replace(self._initial)

    def replace(self, rules: Sequence[ChaosRule]) -> None:
        """Install a new rule set; every ``times`` counter starts again."""
        self._rules = tuple(rules)
        self._remaining = [rule.times for rule in self._rules]

    def restore(self) -> None:
        """Go back to the rules the engine was built with (what ``POST /_emulator/reset`` does)."""
        self.replace(self._initial)

    def to_json(self) -> dict[str, Any]:
        """``{"rules": [...]}``, each rule's ``times`` being what is left of it."""
        return {"rules": [rule.to_json(left) for rule, left in zip(self._rules, self._remaining, strict=True)]}

    def _fires(self, probability: float) -> bool:
        # No draw at the ends: a rule that always or never fires must not shift a seeded sequence.
        if probability >= 1.0:
            return True
        if probability <= 0.0:
            return False
        return self._rng.random() < probability

    def decide(self, method: str, path: str) -> Fault | None:
        """Apply the rules to one request: None when none matches, else the latency and maybe an error.

        Args:
            method: the request method.
            path: the request path (decoded, without the query).
        """
        latency = 0.0
        matched = False
        for index, rule in enumerate(self._rules):
            left = self._remaining[index]
            if left == 0 or not rule.matches(method, path):
                continue
            matched = True
            latency += rule.latency
            if rule.status is None:
                if left is not None:
                    self._remaining[index] = left - 1
                continue
            if self._fires(rule.probability):
                if left is not None:
                    self._remaining[index] = left - 1
                return Fault(
                    latency=latency,
                    status=rule.status,
                    code=_STATUS_CODES.get(rule.status, "InjectedFault"),
                    message=f"Injected by chaos rule {index} ({rule.method} {rule.path}); retry later.",
                    retry_after=rule.retry_after,
                )
        return Fault(latency=latency) if matched else None

"""Case 7: JWT parsing (``exp`` extraction) against the peers' ``create_access_token``.

Floor: ``json.loads(base64.urlsafe_b64decode(payload))["exp"]`` written inline (no validation at all).
Correctness is checked on four valid tokens: a typical ACS-shaped token, one whose base64url payload contains
``-`` and ``_`` (base64url's own characters, which plain base64 does not have), one with a fractional ``exp``
and one with a short payload. The timing uses the typical token.
"""

from __future__ import annotations

import base64
import importlib
import json
import time
from collections.abc import Callable
from typing import Any

from _common import (
    PEERS,
    describe_exception,
    emit,
    interleaved_medians,
    make_jwt,
    make_url_safe_jwt,
    peer_module,
    rounds_for,
    sample_ns_for,
)

CASE = "jwt"

# Candidate names for our parser in ``_tokens.py``, most specific first (the module is private).
OUR_PARSERS = ("parse_jwt_expiry", "jwt_expiry", "parse_token_expiry", "token_expiry", "parse_token")


def floor_parse(token: str) -> float:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]  # type: ignore[no-any-return]


def _expiry_of(result: Any) -> float:
    """Read an expiry from whatever a parser returns (a number, an ``AccessToken``, a parsed-token object)."""
    if isinstance(result, (int, float)):
        return float(result)
    for attr in ("expires_on", "exp", "expiry"):
        value = getattr(result, attr, None)
        if isinstance(value, (int, float)):
            return float(value)
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], (int, float)):
        return float(result[1])
    raise TypeError(f"cannot read an expiry from {type(result).__name__}")


def our_parser() -> tuple[str, Callable[[str], Any]]:
    module = importlib.import_module("azure.communication.common._tokens")
    for name in OUR_PARSERS:
        fn = getattr(module, name, None)
        if callable(fn):
            return f"_tokens.{name}", fn
    raise ImportError("no JWT parser found in _tokens")


def correctness_tokens(now: int) -> dict[str, tuple[str, float]]:
    exp = now + 3600
    return {
        "typical": (make_jwt(exp), float(exp)),
        "base64url (`-`/`_` in payload)": (make_url_safe_jwt(exp), float(exp)),
        "fractional exp": (make_jwt(exp + 0.75), exp + 0.75),
        "short payload": (make_jwt(exp, realistic=False), float(exp)),
    }


def check(parse: Callable[[str], Any], tokens: dict[str, tuple[str, float]]) -> dict[str, str]:
    """Return ``{token kind: verdict}``; whole seconds are enough (the peers round ``exp`` down)."""
    verdicts: dict[str, str] = {}
    for kind, (token, exp) in tokens.items():
        try:
            got = _expiry_of(parse(token))
        except Exception as exc:
            verdicts[kind] = f"rejected ({describe_exception(exc)})"
            continue
        verdicts[kind] = "ok" if int(got) == int(exp) else f"wrong exp ({got!r})"
    return verdicts


def run(contender: str, *, quick: bool) -> None:
    now = int(time.time())
    tokens = correctness_tokens(now)
    token = tokens["typical"][0]
    parsers: dict[str, Callable[[str], Any]] = {}
    notes: dict[str, str] = {}
    problems: dict[str, str] = {}
    try:
        name, fn = our_parser()
        parsers["ours"] = fn
        notes["ours"] = name
    except Exception as exc:
        problems["ours"] = f"not available: {describe_exception(exc)}"
    for peer in PEERS:
        try:
            parsers[peer] = peer_module(peer, "utils").create_access_token
            notes[peer] = "utils.create_access_token"
        except Exception as exc:
            problems[peer] = f"crashed: {describe_exception(exc)}"
    parsers["floor"] = floor_parse
    notes["floor"] = "inline urlsafe_b64decode + json.loads"
    verdicts = {name: check(fn, tokens) for name, fn in parsers.items()}
    contenders: dict[str, Callable[[], object]] = {}
    for name, fn in parsers.items():
        if verdicts[name]["typical"] != "ok":
            problems[name] = f"typical token: {verdicts[name]['typical']}"
            continue
        contenders[name] = (lambda f: lambda: f(token))(fn)
    samples = interleaved_medians(contenders, rounds_for(quick), sample_ns=sample_ns_for(quick))
    for name, status in problems.items():
        emit({"case": CASE, "contender": name, "status": status, "correctness": verdicts.get(name)})
    for name, values in samples.items():
        emit(
            {
                "case": CASE,
                "contender": name,
                "status": "ok",
                **values.summary(),
                "what": notes[name],
                "correctness": verdicts[name],
                "token_bytes": len(token),
            }
        )

"""Case 1: ``get_token`` on a fresh token, one thread (the call every client makes on every request).

Floor: an object whose ``get_token`` reads one attribute (an immutable ``(refresh_on, token)`` snapshot) and
compares it with ``time.time()``; given the azure-core ``get_token(*scopes, **kwargs)`` signature, as ours has.
A second, informational floor takes no arguments at all (what the bare function costs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from azure.core.credentials import AccessToken

from _common import (
    PEERS,
    describe_exception,
    emit,
    interleaved_medians,
    make_jwt,
    peer_module,
    rounds_for,
    sample_ns_for,
)

CASE = "hot_path"


class FloorCredential:
    """The floor: one attribute read, one ``time.time()`` call, one comparison."""

    __slots__ = ("_snapshot",)

    def __init__(self, token: AccessToken) -> None:
        self._snapshot = (token.expires_on - 120.0, token)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        snapshot = self._snapshot
        if time.time() < snapshot[0]:
            return snapshot[1]
        raise RuntimeError("the floor only models the fresh path")


class BareFloorCredential(FloorCredential):
    __slots__ = ()

    def get_token(self) -> AccessToken:  # type: ignore[override]
        snapshot = self._snapshot
        if time.time() < snapshot[0]:
            return snapshot[1]
        raise RuntimeError("the floor only models the fresh path")


def _refresher_for(token: str) -> Callable[[], AccessToken]:
    def refresher() -> AccessToken:
        raise AssertionError("the refresher must not be called on the fresh path")

    return refresher


def build_contenders(token: str) -> tuple[dict[str, Callable[[], object]], dict[str, str]]:
    exp = int(time.time()) + 3600
    contenders: dict[str, Callable[[], object]] = {}
    problems: dict[str, str] = {}
    try:
        from azure.communication.common import CommunicationTokenCredential

        ours = CommunicationTokenCredential(token, token_refresher=_refresher_for(token))
        contenders["ours"] = ours.get_token
    except Exception as exc:
        problems["ours"] = f"not available: {describe_exception(exc)}"
    for peer in PEERS:
        try:
            cls = peer_module(peer, "user_credential").CommunicationTokenCredential
            cred = cls(token, token_refresher=_refresher_for(token))
            contenders[peer] = cred.get_token
        except Exception as exc:
            problems[peer] = f"crashed: {describe_exception(exc)}"
    floor_token = AccessToken(token, exp)
    contenders["floor"] = FloorCredential(floor_token).get_token
    contenders["floor_bare"] = BareFloorCredential(floor_token).get_token
    # A contender that does not return our token on the fresh path is not measured.
    for name, fn in list(contenders.items()):
        try:
            result: Any = fn()
            if result.token != token:
                problems[name] = "wrong token returned"
                del contenders[name]
        except Exception as exc:
            problems[name] = f"crashed: {describe_exception(exc)}"
            del contenders[name]
    return contenders, problems


def run(contender: str, *, quick: bool) -> None:
    token = make_jwt(int(time.time()) + 3600)
    contenders, problems = build_contenders(token)
    samples = interleaved_medians(contenders, rounds_for(quick), sample_ns=sample_ns_for(quick))
    for name, status in problems.items():
        emit({"case": CASE, "contender": name, "status": status})
    for name, values in samples.items():
        emit(
            {
                "case": CASE,
                "contender": name,
                "status": "ok",
                **values.summary(),
                "token_bytes": len(token),
            }
        )

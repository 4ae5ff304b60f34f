"""Case 6: ``identifier_from_raw_id`` over a mix of every kind, and ``serialize_identifier``.

The mix is the 58 raw ids of the JavaScript package's own test suite (``/work/shared/vectors``, copied into
``bench/raw_ids.json`` so the benchmark runs anywhere): communication, spool, Teams extension, Teams user
(every cloud, anonymous), Teams app, phone (anonymous, asserted ids) and unknown ids. Time is per call,
averaged over the mix. Correctness: how many of the 58 each parser classifies as the JS package does.

Serializers: ours returns the REST wire dict; the chat package's returns a snake-case dict of
``properties`` (not the wire form); the callautomation package's returns a msrest model (its wire dict needs
``.serialize()``, timed as a separate, informational row). The identity package has no serializer.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import (
    PEERS,
    describe_exception,
    emit,
    interleaved_medians,
    peer_module,
    rounds_for,
    sample_ns_for,
)

CASE = "identifiers"
VECTORS = Path(__file__).resolve().parent / "raw_ids.json"
JS_KINDS = {
    "communicationUser": "communication_user",
    "phoneNumber": "phone_number",
    "microsoftTeamsUser": "microsoft_teams_user",
    "microsoftTeamsApp": "microsoft_teams_app",
    "teamsExtensionUser": "teams_extension_user",
    "unknown": "unknown",
}
_FLOOR_PREFIXES = {
    "8:acs:": "communicationUser",
    "8:spool:": "communicationUser",
    "8:dod-acs:": "communicationUser",
    "8:gcch-acs:": "communicationUser",
    "8:teamsvisitor:": "microsoftTeamsUser",
    "8:orgid:": "microsoftTeamsUser",
    "8:dod:": "microsoftTeamsUser",
    "8:gcch:": "microsoftTeamsUser",
    "28:orgid:": "microsoftTeamsApp",
    "28:dod:": "microsoftTeamsApp",
    "28:gcch:": "microsoftTeamsApp",
}


def load_mix() -> list[tuple[str, str]]:
    """``[(raw_id, expected snake-case kind)]`` from the JS vectors."""
    data = json.loads(VECTORS.read_text(encoding="utf-8"))
    return [(item["rawId"], JS_KINDS[item["ok"]["kind"]]) for item in data]


def floor_parse(raw_id: str) -> tuple[str, ...]:
    """The floor: classify the prefix and return a tuple (no object, no validation)."""
    if raw_id.startswith("4:"):
        return ("phoneNumber", raw_id[2:], raw_id)
    parts = raw_id.split(":")
    if len(parts) != 3:
        return ("unknown", raw_id)
    return (_FLOOR_PREFIXES.get(f"{parts[0]}:{parts[1]}:", "unknown"), parts[2], raw_id)


def floor_serialize(item: tuple[str, ...]) -> dict[str, Any]:
    """The floor: one literal dict per identifier (kind, raw id, one nested property)."""
    kind, raw_id = item[0], item[-1]
    if kind == "unknown":
        return {"rawId": raw_id, "kind": kind}
    return {"rawId": raw_id, "kind": kind, kind: {"id": item[1]}}


def _kind_text(identifier: Any) -> str:
    kind = identifier.kind
    return str(getattr(kind, "value", kind))


def loop(fn: Callable[[Any], object], items: list[Any]) -> Callable[[], None]:
    def run_mix() -> None:
        for item in items:
            fn(item)

    return run_mix


def run(contender: str, *, quick: bool) -> None:
    mix = load_mix()
    raw_ids = [raw for raw, _ in mix]
    parsers: dict[str, Callable[[str], Any]] = {}
    serializers: dict[str, tuple[Callable[[Any], Any], list[Any]]] = {}
    problems: dict[str, str] = {}
    notes: dict[str, str] = {}
    try:
        from azure.communication.common import identifier_from_raw_id

        parsers["ours"] = identifier_from_raw_id
    except Exception as exc:
        problems["parse:ours"] = f"not available: {describe_exception(exc)}"
    try:
        from azure.communication.common import identifier_from_raw_id as ours_parse
        from azure.communication.common import serialize_identifier

        serializers["ours"] = (serialize_identifier, [ours_parse(r) for r in raw_ids])
        notes["serialize:ours"] = "wire dict (camelCase)"
    except Exception as exc:
        problems["serialize:ours"] = f"not available: {describe_exception(exc)}"
    for peer in PEERS:
        try:
            parsers[peer] = peer_module(peer, "models").identifier_from_raw_id
        except Exception as exc:
            problems[f"parse:{peer}"] = f"crashed: {describe_exception(exc)}"
    parsers["floor"] = floor_parse
    peer_parse = {name: fn for name, fn in parsers.items() if name in PEERS}
    problems["serialize:identity"] = "n/a (the identity package has no serializer)"
    try:
        chat = importlib.import_module("azure.communication.chat._communication_identifier_serializer")
        serializers["chat"] = (chat.serialize_identifier, [peer_parse["chat"](r) for r in raw_ids])
        notes["serialize:chat"] = "snake-case dict (not the wire form)"
    except Exception as exc:
        problems["serialize:chat"] = f"crashed: {describe_exception(exc)}"
    try:
        ca = importlib.import_module("azure.communication.callautomation._utils")
        ca_ids = [peer_parse["callautomation"](r) for r in raw_ids]
        serializers["callautomation"] = (ca.serialize_identifier, ca_ids)
        notes["serialize:callautomation"] = "msrest model (not yet the wire dict)"
        serializers["callautomation_wire"] = (
            lambda ident, _s=ca.serialize_identifier: _s(ident).serialize(),
            ca_ids,
        )
        notes["serialize:callautomation_wire"] = "model + .serialize() = wire dict (informational)"
    except Exception as exc:
        problems["serialize:callautomation"] = f"crashed: {describe_exception(exc)}"
    serializers["floor"] = (floor_serialize, [floor_parse(r) for r in raw_ids])
    notes["serialize:floor"] = "literal dict per identifier"

    correctness: dict[str, dict[str, Any]] = {}
    for name, fn in parsers.items():
        if name == "floor":
            continue
        wrong: list[str] = []
        for raw, kind in mix:
            try:
                ident = fn(raw)
                if _kind_text(ident) != kind or ident.raw_id != raw:
                    wrong.append(raw)
            except Exception as exc:
                wrong.append(f"{raw} ({describe_exception(exc)})")
        correctness[name] = {"agree": len(mix) - len(wrong), "total": len(mix), "wrong": wrong[:8]}

    contenders: dict[str, Callable[[], object]] = {}
    for name, fn in parsers.items():
        contenders[f"parse:{name}"] = loop(fn, raw_ids)
    for name, (fn, items) in serializers.items():
        try:
            for item in items:
                fn(item)
        except Exception as exc:
            problems[f"serialize:{name}"] = f"crashed: {describe_exception(exc)}"
            continue
        contenders[f"serialize:{name}"] = loop(fn, items)
    samples = interleaved_medians(contenders, rounds_for(quick), sample_ns=sample_ns_for(quick))
    for name, status in problems.items():
        emit({"case": CASE, "contender": name, "status": status})
    for name, values in samples.items():
        impl = name.split(":", 1)[1]
        record: dict[str, Any] = {
            "case": CASE,
            "contender": name,
            "status": "ok",
            **values.summary(len(raw_ids)),
            "mix_size": len(raw_ids),
        }
        if name.startswith("parse:") and impl in correctness:
            record["correctness"] = correctness[impl]
        if name in notes:
            record["what"] = notes[name]
        emit(record)

"""The REST wire model: serialize_identifier / deserialize_identifier against the JS 2.5.0 vectors and rules."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

import pytest
from identifiers_support import VECTORS, expected_from_js

from azure.communication.common import (
    CommunicationCloudEnvironment,
    CommunicationIdentifierKind,
    CommunicationUserIdentifier,
    MicrosoftTeamsAppIdentifier,
    MicrosoftTeamsUserIdentifier,
    PhoneNumberIdentifier,
    TeamsExtensionUserIdentifier,
    UnknownIdentifier,
    deserialize_identifier,
    serialize_identifier,
)

DOD = CommunicationCloudEnvironment.DOD
GCCH = CommunicationCloudEnvironment.GCCH
PUBLIC = CommunicationCloudEnvironment.PUBLIC
Kind = CommunicationIdentifierKind

WIRE_VECTORS = VECTORS["deserializeCommunicationIdentifier"]
# Our one deliberate deviation: JS accepts a present-but-null required property.
NULL_ID = {"communicationUser": {"id": None}}


def _case_id(case: dict[str, Any]) -> str:
    return json.dumps(case["input"], separators=(",", ":"))


@pytest.mark.parametrize("case", WIRE_VECTORS, ids=[_case_id(c) for c in WIRE_VECTORS])
def test_deserialize_matches_js(case: dict[str, Any]) -> None:
    model = case["input"]
    if model == NULL_ID:
        assert case["ok"]["communicationUserId"] is None  # what JS does
        with pytest.raises(ValueError, match=r"^Property id is required for identifier of type communicationUser\.$"):
            deserialize_identifier(model)
        return
    if "error" in case:
        with pytest.raises(ValueError) as info:
            deserialize_identifier(model)
        assert str(info.value) == case["error"]
        return
    kind, props, raw_id = expected_from_js(case["ok"])
    identifier = deserialize_identifier(model)
    assert identifier.kind is kind
    assert identifier.properties == props
    assert raw_id is not None
    assert identifier.raw_id == raw_id


def test_vectors_include_errors_and_the_null_case() -> None:
    assert sum("error" in c for c in WIRE_VECTORS) >= 15
    assert any(c["input"] == NULL_ID for c in WIRE_VECTORS)


# serialize -------------------------------------------------------------------------------------------

SERIALIZE_CASES: list[tuple[Any, dict[str, Any]]] = [
    (
        CommunicationUserIdentifier("8:acs:x"),
        {"rawId": "8:acs:x", "kind": "communicationUser", "communicationUser": {"id": "8:acs:x"}},
    ),
    (
        PhoneNumberIdentifier("+1"),
        {"rawId": "4:+1", "kind": "phoneNumber", "phoneNumber": {"value": "+1", "isAnonymous": False}},
    ),
    (
        PhoneNumberIdentifier("+1_a1"),
        {
            "rawId": "4:+1_a1",
            "kind": "phoneNumber",
            "phoneNumber": {"value": "+1_a1", "isAnonymous": False, "assertedId": "a1"},
        },
    ),
    (
        PhoneNumberIdentifier("anonymous"),
        {"rawId": "4:anonymous", "kind": "phoneNumber", "phoneNumber": {"value": "anonymous", "isAnonymous": True}},
    ),
    (
        MicrosoftTeamsUserIdentifier("u", cloud=DOD),
        {
            "rawId": "8:dod:u",
            "kind": "microsoftTeamsUser",
            "microsoftTeamsUser": {"userId": "u", "isAnonymous": False, "cloud": "dod"},
        },
    ),
    (
        MicrosoftTeamsUserIdentifier("u", is_anonymous=True),
        {
            "rawId": "8:teamsvisitor:u",
            "kind": "microsoftTeamsUser",
            "microsoftTeamsUser": {"userId": "u", "isAnonymous": True, "cloud": "public"},
        },
    ),
    (
        MicrosoftTeamsAppIdentifier("a", cloud=GCCH),
        {"rawId": "28:gcch:a", "kind": "microsoftTeamsApp", "microsoftTeamsApp": {"appId": "a", "cloud": "gcch"}},
    ),
    (
        TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r"),
        {
            "rawId": "8:acs:r_t_u",
            "kind": "teamsExtensionUser",
            "teamsExtensionUser": {"userId": "u", "tenantId": "t", "resourceId": "r", "cloud": "public"},
        },
    ),
    (UnknownIdentifier("48:x"), {"rawId": "48:x", "kind": "unknown"}),
]


@pytest.mark.parametrize(("identifier", "wire"), SERIALIZE_CASES, ids=[c[1]["rawId"] for c in SERIALIZE_CASES])
def test_serialize(identifier: Any, wire: dict[str, Any]) -> None:
    produced = serialize_identifier(identifier)
    assert produced == wire
    # JSON-ready: plain str/bool values only (no enum members leak into the wire model).
    assert json.loads(json.dumps(produced)) == produced
    assert all(
        type(v) in (str, bool) for nested in produced.values() if isinstance(nested, dict) for v in nested.values()
    )
    back = deserialize_identifier(produced)
    assert type(back) is type(identifier)
    assert back.properties == identifier.properties
    assert back.raw_id == identifier.raw_id


def test_serialize_returns_a_new_dict_each_time() -> None:
    identifier = PhoneNumberIdentifier("+1")
    first = serialize_identifier(identifier)
    first["phoneNumber"]["value"] = "changed"
    assert serialize_identifier(identifier)["phoneNumber"]["value"] == "+1"


class _Foreign:
    """An identifier from elsewhere: only kind, raw_id and properties (like the _shared classes)."""

    def __init__(self, kind: Any, raw_id: Any, properties: Any) -> None:
        self.kind = kind
        self.raw_id = raw_id
        self.properties = properties


def test_serialize_accepts_foreign_identifiers() -> None:
    assert serialize_identifier(_Foreign("communication_user", "8:acs:x", {"id": "8:acs:x"})) == {
        "rawId": "8:acs:x",
        "kind": "communicationUser",
        "communicationUser": {"id": "8:acs:x"},
    }
    # A foreign phone number without is_anonymous/asserted_id gets them from its raw id.
    assert serialize_identifier(_Foreign("phone_number", "4:+1_z", {"value": "+1_z"}))["phoneNumber"] == {
        "value": "+1_z",
        "isAnonymous": False,
        "assertedId": "z",
    }
    assert serialize_identifier(_Foreign("microsoft_teams_user", "8:gcch:u", {"user_id": "u", "cloud": "GCCH"})) == {
        "rawId": "8:gcch:u",
        "kind": "microsoftTeamsUser",
        "microsoftTeamsUser": {"userId": "u", "isAnonymous": False, "cloud": "gcch"},
    }
    assert serialize_identifier(_Foreign("microsoft_teams_app", "28:orgid:a", {"app_id": "a"}))[
        "microsoftTeamsApp"
    ] == {"appId": "a", "cloud": "public"}
    extension = _Foreign(
        Kind.TEAMS_EXTENSION_USER,
        "8:dod-acs:r_t_u",
        MappingProxyType({"user_id": "u", "tenant_id": "t", "resource_id": "r", "cloud": "DOD"}),
    )
    assert serialize_identifier(extension)["teamsExtensionUser"] == {
        "userId": "u",
        "tenantId": "t",
        "resourceId": "r",
        "cloud": "dod",
    }
    assert serialize_identifier(_Foreign("unknown", "x", {})) == {"rawId": "x", "kind": "unknown"}


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        ("8:acs:x", TypeError, "expected a communication identifier"),
        ({"rawId": "x", "kind": "unknown"}, TypeError, "expected a communication identifier"),
        (None, TypeError, "expected a communication identifier"),
        (_Foreign("microsoft_bot", "28:x", {}), TypeError, "unsupported kind 'microsoft_bot'"),
        (_Foreign(None, "x", {}), TypeError, "unsupported kind None"),
        (_Foreign(3, "x", {}), TypeError, "unsupported kind 3"),
        (_Foreign("communication_user", "x", None), TypeError, "properties must be a mapping"),
        (
            _Foreign("communication_user", "x", {}),
            TypeError,
            "communication_user identifier's properties must contain 'id'",
        ),
        (_Foreign("phone_number", "4:1", {"val": "1"}), TypeError, "must contain 'value'"),
        (_Foreign("microsoft_teams_app", "28:orgid:a", {"cloud": "dod"}), TypeError, "must contain 'app_id'"),
        (
            _Foreign("teams_extension_user", "x", {"user_id": "u", "tenant_id": "t"}),
            TypeError,
            "must contain 'resource_id'",
        ),
        (_Foreign("communication_user", 5, {"id": "5"}), TypeError, "raw_id must be a str"),
        (_Foreign("unknown", None, {}), TypeError, "identifier must be a str"),
        (_Foreign("microsoft_teams_user", "8:orgid:u", {"user_id": "u", "cloud": "moon"}), ValueError, "cloud must be"),
        (_Foreign("communication_user", "8:acs:a", {"id": "8:acs:b"}), ValueError, "raw_id must equal its id"),
    ],
)
def test_serialize_rejects(value: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        serialize_identifier(value)


# deserialize: rules and every message -----------------------------------------------------------------

NESTED = {
    "communicationUser": {"id": "8:acs:x"},
    "phoneNumber": {"value": "+1"},
    "microsoftTeamsUser": {"userId": "u", "isAnonymous": False, "cloud": "public"},
    "microsoftTeamsApp": {"appId": "a", "cloud": "public"},
    "teamsExtensionUser": {"userId": "u", "tenantId": "t", "resourceId": "r", "cloud": "public"},
}
MESSAGE_ORDER = ["communicationUser", "microsoftTeamsUser", "microsoftTeamsApp", "phoneNumber", "teamsExtensionUser"]
PAIRS = [(a, b) for i, a in enumerate(MESSAGE_ORDER) for b in MESSAGE_ORDER[i + 1 :]]


@pytest.mark.parametrize(("first", "second"), PAIRS)
@pytest.mark.parametrize("values", ["models", "nulls"])
def test_only_one_nested_model(first: str, second: str, values: str) -> None:
    # Given in reverse order; the message lists the names in the fixed order. Present nulls count.
    model: dict[str, Any] = {"rawId": "r"}
    for name in (second, first):
        model[name] = NESTED[name] if values == "models" else None
    with pytest.raises(ValueError) as info:
        deserialize_identifier(model)
    assert str(info.value) == f'Only one of the properties in ["{first}","{second}"] should be present.'


def test_only_one_nested_model_lists_every_present_name() -> None:
    model = {"rawId": "r", **dict(reversed(list(NESTED.items())))}
    with pytest.raises(ValueError) as info:
        deserialize_identifier(model)
    assert str(info.value) == (
        'Only one of the properties in ["communicationUser","microsoftTeamsUser","microsoftTeamsApp",'
        '"phoneNumber","teamsExtensionUser"] should be present.'
    )


def test_one_model_check_comes_before_everything_else() -> None:
    with pytest.raises(ValueError, match="Only one of the properties"):
        deserialize_identifier({"kind": "unknown", "communicationUser": {}, "phoneNumber": 3})


REQUIRED_CASES: list[tuple[dict[str, Any], str]] = [
    ({"communicationUser": {}}, "Property id is required for identifier of type communicationUser."),
    ({"phoneNumber": {}, "rawId": "4:1"}, "Property value is required for identifier of type phoneNumber."),
    ({"phoneNumber": {"value": "+1"}}, "Property rawId is required for identifier of type phoneNumber."),
    (
        {"microsoftTeamsUser": {}, "rawId": "r"},
        "Property userId is required for identifier of type microsoftTeamsUser.",
    ),
    (
        {"microsoftTeamsUser": {"userId": "u"}},
        "Property isAnonymous is required for identifier of type microsoftTeamsUser.",
    ),
    (
        {"microsoftTeamsUser": {"userId": "u", "isAnonymous": True}},
        "Property cloud is required for identifier of type microsoftTeamsUser.",
    ),
    (
        {"microsoftTeamsUser": {"userId": "u", "isAnonymous": True, "cloud": "dod"}},
        "Property rawId is required for identifier of type microsoftTeamsUser.",
    ),
    ({"microsoftTeamsApp": {}}, "Property appId is required for identifier of type microsoftTeamsApp."),
    ({"microsoftTeamsApp": {"appId": "a"}}, "Property cloud is required for identifier of type microsoftTeamsApp."),
    (
        {"microsoftTeamsApp": {"appId": "a", "cloud": "dod"}},
        "Property rawId is required for identifier of type microsoftTeamsApp.",
    ),
    ({"teamsExtensionUser": {}}, "Property userId is required for identifier of type teamsExtensionUser."),
    (
        {"teamsExtensionUser": {"userId": "u"}},
        "Property tenantId is required for identifier of type teamsExtensionUser.",
    ),
    (
        {"teamsExtensionUser": {"userId": "u", "tenantId": "t"}},
        "Property resourceId is required for identifier of type teamsExtensionUser.",
    ),
    (
        {"teamsExtensionUser": {"userId": "u", "tenantId": "t", "resourceId": "r"}},
        "Property cloud is required for identifier of type teamsExtensionUser.",
    ),
    (
        {"teamsExtensionUser": {"userId": "u", "tenantId": "t", "resourceId": "r", "cloud": "gcch"}},
        "Property rawId is required for identifier of type teamsExtensionUser.",
    ),
    ({}, "Property rawId is required for identifier of type unknown."),
    ({"kind": "unknown"}, "Property rawId is required for identifier of type unknown."),
    ({"kind": "communicationUser"}, "Property rawId is required for identifier of type unknown."),
    ({"communicationUser": None}, "Property rawId is required for identifier of type unknown."),
]


@pytest.mark.parametrize(("model", "message"), REQUIRED_CASES, ids=[m for _, m in REQUIRED_CASES])
def test_required_property_messages(model: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        deserialize_identifier(model)
    assert str(info.value) == message


def _with_null(model: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    copy = json.loads(json.dumps(model))
    holder = copy
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = None
    return copy


FULL = {
    "communicationUser": {"communicationUser": {"id": "8:acs:x"}, "rawId": "8:acs:x"},
    "phoneNumber": {"phoneNumber": {"value": "+1"}, "rawId": "4:+1"},
    "microsoftTeamsUser": {
        "microsoftTeamsUser": {"userId": "u", "isAnonymous": False, "cloud": "public"},
        "rawId": "8:orgid:u",
    },
    "microsoftTeamsApp": {"microsoftTeamsApp": {"appId": "a", "cloud": "public"}, "rawId": "28:orgid:a"},
    "teamsExtensionUser": {
        "teamsExtensionUser": {"userId": "u", "tenantId": "t", "resourceId": "r", "cloud": "public"},
        "rawId": "8:acs:r_t_u",
    },
}
NULL_CASES = [
    ("communicationUser", ("communicationUser", "id"), "id"),
    ("phoneNumber", ("phoneNumber", "value"), "value"),
    ("phoneNumber", ("rawId",), "rawId"),
    ("microsoftTeamsUser", ("microsoftTeamsUser", "userId"), "userId"),
    ("microsoftTeamsUser", ("microsoftTeamsUser", "isAnonymous"), "isAnonymous"),
    ("microsoftTeamsUser", ("microsoftTeamsUser", "cloud"), "cloud"),
    ("microsoftTeamsUser", ("rawId",), "rawId"),
    ("microsoftTeamsApp", ("microsoftTeamsApp", "appId"), "appId"),
    ("microsoftTeamsApp", ("microsoftTeamsApp", "cloud"), "cloud"),
    ("microsoftTeamsApp", ("rawId",), "rawId"),
    ("teamsExtensionUser", ("teamsExtensionUser", "userId"), "userId"),
    ("teamsExtensionUser", ("teamsExtensionUser", "tenantId"), "tenantId"),
    ("teamsExtensionUser", ("teamsExtensionUser", "resourceId"), "resourceId"),
    ("teamsExtensionUser", ("teamsExtensionUser", "cloud"), "cloud"),
    ("teamsExtensionUser", ("rawId",), "rawId"),
]


@pytest.mark.parametrize(("kind", "path", "name"), NULL_CASES, ids=[f"{k}.{'.'.join(p)}" for k, p, _ in NULL_CASES])
def test_present_but_null_required_property_is_rejected(kind: str, path: tuple[str, ...], name: str) -> None:
    assert deserialize_identifier(FULL[kind]).raw_id == FULL[kind]["rawId"]  # the full model is fine
    with pytest.raises(ValueError) as info:
        deserialize_identifier(_with_null(FULL[kind], path))
    assert str(info.value) == f"Property {name} is required for identifier of type {kind}."


def test_null_raw_id_of_an_unknown_identifier_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^Property rawId is required for identifier of type unknown\.$"):
        deserialize_identifier({"rawId": None, "kind": "unknown"})


@pytest.mark.parametrize(
    ("model", "kind"),
    [
        # Inference order: communicationUser, phoneNumber, microsoftTeamsUser, microsoftTeamsApp, teamsExtensionUser.
        (FULL["teamsExtensionUser"], Kind.TEAMS_EXTENSION_USER),
        (FULL["microsoftTeamsApp"], Kind.MICROSOFT_TEAMS_APP),
        ({**FULL["phoneNumber"], "kind": None}, Kind.PHONE_NUMBER),  # null kind: inferred
        ({"phoneNumber": None, "rawId": "4:1"}, Kind.UNKNOWN),  # null nested model does not count
        ({"phoneNumber": "+1", "rawId": "4:1"}, Kind.UNKNOWN),  # nor does a non-dict one
        ({"phoneNumber": ["+1"], "rawId": "4:1"}, Kind.UNKNOWN),
        ({**FULL["phoneNumber"], "kind": "communicationUser"}, Kind.UNKNOWN),  # kind wins, its model is missing
        ({**FULL["phoneNumber"], "kind": "microsoftBot"}, Kind.UNKNOWN),
        ({**FULL["phoneNumber"], "kind": "PhoneNumber"}, Kind.UNKNOWN),  # kinds are case-sensitive
        ({**FULL["phoneNumber"], "kind": 7}, Kind.UNKNOWN),
        ({**FULL["phoneNumber"], "kind": ["phoneNumber"]}, Kind.UNKNOWN),
        ({**FULL["phoneNumber"], "kind": "phoneNumber"}, Kind.PHONE_NUMBER),
        ({**FULL["communicationUser"], "kind": "unknown"}, Kind.UNKNOWN),
    ],
)
def test_kind_is_honoured_or_inferred(model: dict[str, Any], kind: CommunicationIdentifierKind) -> None:
    identifier = deserialize_identifier(model)
    assert identifier.kind is kind
    assert identifier.raw_id == model["rawId"]


def test_empty_nested_dict_counts_for_inference() -> None:
    with pytest.raises(ValueError, match="Property value is required for identifier of type phoneNumber"):
        deserialize_identifier({"phoneNumber": {}, "rawId": "4:1"})


def test_communication_user_takes_its_id_not_the_wire_raw_id() -> None:
    identifier = deserialize_identifier({"communicationUser": {"id": "8:acs:a"}, "rawId": "8:acs:other"})
    assert identifier == CommunicationUserIdentifier("8:acs:a")
    assert identifier.raw_id == "8:acs:a"


@pytest.mark.parametrize(
    ("nested", "expected"),
    [
        ({"value": "+1_a"}, {"value": "+1_a", "is_anonymous": False, "asserted_id": "a"}),
        ({"value": "anonymous"}, {"value": "anonymous", "is_anonymous": True}),
        ({"value": "anonymous", "isAnonymous": False}, {"value": "anonymous", "is_anonymous": False}),
        ({"value": "+1_a", "assertedId": "b"}, {"value": "+1_a", "is_anonymous": False, "asserted_id": "b"}),
        ({"value": "+1_a", "assertedId": None}, {"value": "+1_a", "is_anonymous": False, "asserted_id": "a"}),
        ({"value": "+1", "isAnonymous": None}, {"value": "+1", "is_anonymous": False}),
    ],
)
def test_phone_details_from_the_wire_then_from_the_raw_id(nested: dict[str, Any], expected: dict[str, Any]) -> None:
    raw_id = "4:" + nested["value"]
    identifier = deserialize_identifier({"phoneNumber": nested, "rawId": raw_id})
    assert identifier.properties == expected


@pytest.mark.parametrize(("text", "cloud"), [("public", PUBLIC), ("PUBLIC", PUBLIC), ("Dod", DOD), ("gCCh", GCCH)])
def test_clouds_are_read_in_any_case(text: str, cloud: CommunicationCloudEnvironment) -> None:
    user = deserialize_identifier(
        {"microsoftTeamsUser": {"userId": "u", "isAnonymous": False, "cloud": text}, "rawId": "r"}
    )
    app = deserialize_identifier({"microsoftTeamsApp": {"appId": "a", "cloud": text}, "rawId": "r"})
    ext = deserialize_identifier(
        {"teamsExtensionUser": {"userId": "u", "tenantId": "t", "resourceId": "r", "cloud": text}, "rawId": "r"}
    )
    assert user.properties["cloud"] is cloud
    assert app.properties["cloud"] is cloud
    assert ext.properties["cloud"] is cloud


def test_extra_keys_are_ignored() -> None:
    identifier = deserialize_identifier(
        {
            "rawId": "28:dod:a",
            "future": {"x": 1},
            "microsoftTeamsApp": {"appId": "a", "cloud": "dod", "teamsAppId": "ignored", "extra": [1]},
        }
    )
    assert identifier == MicrosoftTeamsAppIdentifier("a", cloud=DOD)
    assert identifier.properties == {"app_id": "a", "cloud": DOD}


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        ({"rawId": 5}, TypeError, "identifier must be a str"),
        ({"communicationUser": {"id": 5}}, TypeError, "id must be a str"),
        (
            {"phoneNumber": {"value": "+1", "isAnonymous": "no"}, "rawId": "4:+1"},
            TypeError,
            "is_anonymous must be a bool",
        ),
        ({"phoneNumber": {"value": "+1", "assertedId": 1}, "rawId": "4:+1"}, TypeError, "asserted_id must be a str"),
        ({"phoneNumber": {"value": "+1"}, "rawId": ["4:+1"]}, TypeError, "raw_id must be a str"),
        (
            {"microsoftTeamsUser": {"userId": "u", "isAnonymous": 0, "cloud": "dod"}, "rawId": "r"},
            TypeError,
            "is_anonymous must be a bool",
        ),
        (
            {"microsoftTeamsUser": {"userId": "u", "isAnonymous": False, "cloud": "moon"}, "rawId": "r"},
            ValueError,
            "cloud must be one of",
        ),
        ({"microsoftTeamsApp": {"appId": "a", "cloud": 1}, "rawId": "r"}, TypeError, "cloud must be a"),
        (
            {"teamsExtensionUser": {"userId": "u", "tenantId": 1, "resourceId": "r", "cloud": "dod"}, "rawId": "r"},
            TypeError,
            "tenant_id must be a str",
        ),
    ],
)
def test_wrong_property_types_and_values(model: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        deserialize_identifier(model)


@pytest.mark.parametrize("value", [None, "8:acs:x", ["rawId", "x"], 5, b"{}", [("rawId", "x")]])
def test_deserialize_requires_a_mapping(value: Any) -> None:
    with pytest.raises(TypeError, match="expected a mapping"):
        deserialize_identifier(value)


class _ReadOnlyMapping(Mapping[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_any_mapping_is_accepted_including_nested() -> None:
    model = _ReadOnlyMapping(
        {
            "rawId": "8:gcch:u",
            "microsoftTeamsUser": MappingProxyType({"userId": "u", "isAnonymous": False, "cloud": "gcch"}),
        }
    )
    assert deserialize_identifier(model) == MicrosoftTeamsUserIdentifier("u", cloud=GCCH)


def test_subclasses_of_our_identifiers_are_written_as_their_base() -> None:
    class Bot(MicrosoftTeamsAppIdentifier):
        __slots__ = ()

    assert serialize_identifier(Bot("b", cloud=DOD)) == {
        "rawId": "28:dod:b",
        "kind": "microsoftTeamsApp",
        "microsoftTeamsApp": {"appId": "b", "cloud": "dod"},
    }

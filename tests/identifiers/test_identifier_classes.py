"""The identifier classes as values: constructors, properties, validation, equality, hashing, pickling, repr."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from azure.communication.common import (
    CommunicationCloudEnvironment,
    CommunicationIdentifier,
    CommunicationIdentifierKind,
    CommunicationUserIdentifier,
    MicrosoftTeamsAppIdentifier,
    MicrosoftTeamsUserIdentifier,
    PhoneNumberIdentifier,
    TeamsExtensionUserIdentifier,
    UnknownIdentifier,
    identifier_from_raw_id,
)

PUBLIC = CommunicationCloudEnvironment.PUBLIC
DOD = CommunicationCloudEnvironment.DOD
GCCH = CommunicationCloudEnvironment.GCCH
Kind = CommunicationIdentifierKind


def one_of_each() -> list[Any]:
    return [
        CommunicationUserIdentifier("8:acs:u1"),
        PhoneNumberIdentifier("+14255550123"),
        PhoneNumberIdentifier("+14255550123_dev", asserted_id="dev"),
        MicrosoftTeamsUserIdentifier("t1", cloud=DOD),
        MicrosoftTeamsUserIdentifier("t2", is_anonymous=True),
        MicrosoftTeamsAppIdentifier("a1", cloud=GCCH),
        TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", cloud=DOD),
        UnknownIdentifier("48:x"),
    ]


EACH = one_of_each()
EACH_IDS = [type(i).__name__ + ":" + i.raw_id for i in EACH]


def test_kind_enum_values_are_the_shared_ones() -> None:
    assert {k.name: k.value for k in Kind} == {
        "UNKNOWN": "unknown",
        "COMMUNICATION_USER": "communication_user",
        "PHONE_NUMBER": "phone_number",
        "MICROSOFT_TEAMS_USER": "microsoft_teams_user",
        "MICROSOFT_TEAMS_APP": "microsoft_teams_app",
        "TEAMS_EXTENSION_USER": "teams_extension_user",
    }
    assert Kind.PHONE_NUMBER == "phone_number"


def test_cloud_enum_values_are_the_shared_ones() -> None:
    assert [c.value for c in CommunicationCloudEnvironment] == ["PUBLIC", "DOD", "GCCH"]


@pytest.mark.parametrize(
    ("text", "cloud"),
    [("dod", DOD), ("DOD", DOD), ("Dod", DOD), ("gcch", GCCH), ("GcCh", GCCH), ("public", PUBLIC), ("PUBLIC", PUBLIC)],
)
def test_cloud_lookup_is_case_insensitive(text: str, cloud: CommunicationCloudEnvironment) -> None:
    assert CommunicationCloudEnvironment(text) is cloud


@pytest.mark.parametrize("text", ["moon", "", " dod", "dod ", "pub", "publıc", "ＤＯＤ", "AZURE"])
def test_cloud_lookup_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="CommunicationCloudEnvironment"):
        CommunicationCloudEnvironment(text)


def test_cloud_lookup_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="CommunicationCloudEnvironment"):
        CommunicationCloudEnvironment(3)


@pytest.mark.parametrize(
    ("identifier", "kind", "properties"),
    [
        (CommunicationUserIdentifier("8:acs:u1"), Kind.COMMUNICATION_USER, {"id": "8:acs:u1"}),
        (PhoneNumberIdentifier("+1"), Kind.PHONE_NUMBER, {"value": "+1", "is_anonymous": False}),
        (
            PhoneNumberIdentifier("+1_x", raw_id="4:+1_x"),
            Kind.PHONE_NUMBER,
            {"value": "+1_x", "is_anonymous": False, "asserted_id": "x"},
        ),
        (
            MicrosoftTeamsUserIdentifier("t1"),
            Kind.MICROSOFT_TEAMS_USER,
            {"user_id": "t1", "is_anonymous": False, "cloud": PUBLIC},
        ),
        (MicrosoftTeamsAppIdentifier("a1", cloud="dod"), Kind.MICROSOFT_TEAMS_APP, {"app_id": "a1", "cloud": DOD}),
        (
            TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r"),
            Kind.TEAMS_EXTENSION_USER,
            {"user_id": "u", "tenant_id": "t", "resource_id": "r", "cloud": PUBLIC},
        ),
        (UnknownIdentifier("x"), Kind.UNKNOWN, {}),
    ],
)
def test_kind_properties_and_attributes(
    identifier: CommunicationIdentifier, kind: CommunicationIdentifierKind, properties: dict[str, Any]
) -> None:
    assert identifier.kind is kind
    assert type(identifier).kind is kind
    assert identifier.properties == properties
    for name, value in properties.items():
        assert getattr(identifier, name) == value
    assert isinstance(identifier, CommunicationIdentifier)


@pytest.mark.parametrize("identifier", EACH, ids=EACH_IDS)
def test_properties_is_a_fresh_dict(identifier: Any) -> None:
    props = identifier.properties
    assert props is not identifier.properties
    props["injected"] = True
    props.clear()
    assert "injected" not in identifier.properties
    assert identifier.properties == one_of_each()[EACH.index(identifier)].properties


def test_cloud_properties_are_enum_members_even_from_strings() -> None:
    assert MicrosoftTeamsUserIdentifier("u", cloud="gcch").cloud is GCCH
    assert MicrosoftTeamsAppIdentifier("a", cloud="Dod").properties["cloud"] is DOD
    assert TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", cloud=None).cloud is PUBLIC
    assert MicrosoftTeamsAppIdentifier("a", cloud=None).raw_id == "28:orgid:a"


class TestPhoneDefaults:
    def test_anonymous_from_raw_id(self) -> None:
        assert PhoneNumberIdentifier("anonymous").is_anonymous is True
        assert PhoneNumberIdentifier("anonymous").asserted_id is None
        assert PhoneNumberIdentifier("Anonymous").is_anonymous is False

    def test_asserted_id_from_raw_id(self) -> None:
        phone = PhoneNumberIdentifier("+1", raw_id="4:+1_a_b")
        assert phone.asserted_id == "b"
        assert phone.value == "+1"
        assert PhoneNumberIdentifier("+1_").asserted_id is None

    def test_explicit_values_win(self) -> None:
        phone = PhoneNumberIdentifier("anonymous", is_anonymous=False, asserted_id="z")
        assert phone.properties == {"value": "anonymous", "is_anonymous": False, "asserted_id": "z"}
        phone = PhoneNumberIdentifier("+1_a", is_anonymous=True)
        assert phone.properties == {"value": "+1_a", "is_anonymous": True, "asserted_id": "a"}

    def test_raw_id_without_phone_prefix_says_nothing(self) -> None:
        phone = PhoneNumberIdentifier("anonymous", raw_id="custom_id")
        assert (phone.is_anonymous, phone.asserted_id) == (False, None)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: CommunicationUserIdentifier(5), "id must be a str"),
        (lambda: CommunicationUserIdentifier(None), "id must be a str"),
        (lambda: CommunicationUserIdentifier("8:acs:x", raw_id=5), "raw_id must be a str"),
        (lambda: PhoneNumberIdentifier(14255550123), "value must be a str"),
        (lambda: PhoneNumberIdentifier("+1", raw_id=b"4:+1"), "raw_id must be a str"),
        (lambda: PhoneNumberIdentifier("+1", is_anonymous=1), "is_anonymous must be a bool"),
        (lambda: PhoneNumberIdentifier("+1", asserted_id=1), "asserted_id must be a str or None"),
        (lambda: MicrosoftTeamsUserIdentifier(None), "user_id must be a str"),
        (lambda: MicrosoftTeamsUserIdentifier("u", is_anonymous="yes"), "is_anonymous must be a bool"),
        (lambda: MicrosoftTeamsUserIdentifier("u", is_anonymous=None), "is_anonymous must be a bool"),
        (lambda: MicrosoftTeamsUserIdentifier("u", cloud=1), "cloud must be a CommunicationCloudEnvironment"),
        (lambda: MicrosoftTeamsUserIdentifier("u", raw_id=1), "raw_id must be a str"),
        (lambda: MicrosoftTeamsAppIdentifier(1), "app_id must be a str"),
        (lambda: MicrosoftTeamsAppIdentifier("a", raw_id=["x"]), "raw_id must be a str"),
        (lambda: MicrosoftTeamsAppIdentifier("a", cloud=b"dod"), "cloud must be a CommunicationCloudEnvironment"),
        (lambda: TeamsExtensionUserIdentifier(user_id=1, tenant_id="t", resource_id="r"), "user_id must be a str"),
        (lambda: TeamsExtensionUserIdentifier(user_id="u", tenant_id=1, resource_id="r"), "tenant_id must be a str"),
        (lambda: TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id=1), "resource_id must be a str"),
        (
            lambda: TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", raw_id=1),
            "raw_id must be a str",
        ),
        (lambda: UnknownIdentifier(None), "identifier must be a str"),
    ],
)
def test_wrong_types_raise_type_error(build: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        build()


def test_positional_only_where_the_shared_classes_allow() -> None:
    with pytest.raises(TypeError):
        TeamsExtensionUserIdentifier("u", "t", "r")  # type: ignore[misc]
    with pytest.raises(TypeError):
        MicrosoftTeamsUserIdentifier("u", True)  # type: ignore[misc]


@pytest.mark.parametrize(
    "build",
    [
        lambda: MicrosoftTeamsUserIdentifier("u", cloud="moon"),
        lambda: MicrosoftTeamsAppIdentifier("a", cloud=""),
        lambda: TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", cloud="azure"),
    ],
)
def test_unknown_cloud_raises_value_error(build: Any) -> None:
    with pytest.raises(ValueError, match="cloud must be one of 'PUBLIC', 'DOD', 'GCCH'"):
        build()


def test_communication_user_raw_id_must_equal_id() -> None:
    with pytest.raises(ValueError, match="raw_id must equal its id"):
        CommunicationUserIdentifier("8:acs:a", raw_id="8:acs:b")
    assert CommunicationUserIdentifier("8:acs:a", raw_id="8:acs:a").raw_id == "8:acs:a"


# Immutability -----------------------------------------------------------------------------------------

PUBLIC_FIELDS = ["raw_id", "kind", "properties", "id", "value", "is_anonymous", "asserted_id", "user_id", "cloud"]


@pytest.mark.parametrize("identifier", EACH, ids=EACH_IDS)
def test_fields_cannot_be_assigned_or_deleted(identifier: Any) -> None:
    before = (identifier.raw_id, identifier.properties, hash(identifier))
    for name in [*PUBLIC_FIELDS, "app_id", "tenant_id", "resource_id"]:
        if not hasattr(identifier, name):
            continue
        with pytest.raises(AttributeError):
            setattr(identifier, name, "changed")
        if name != "kind":
            with pytest.raises(AttributeError):
                delattr(identifier, name)
    with pytest.raises(AttributeError):
        identifier.new_attribute = 1
    assert not hasattr(identifier, "__dict__")
    assert (identifier.raw_id, identifier.properties, hash(identifier)) == before


# Equality and hashing ---------------------------------------------------------------------------------


def test_equality_is_by_raw_id_across_classes() -> None:
    parsed = identifier_from_raw_id("8:acs:x")
    assert parsed == CommunicationUserIdentifier("8:acs:x")
    assert UnknownIdentifier("8:acs:x") == CommunicationUserIdentifier("8:acs:x")
    assert hash(UnknownIdentifier("8:acs:x")) == hash(CommunicationUserIdentifier("8:acs:x"))
    assert PhoneNumberIdentifier("+1") == UnknownIdentifier("4:+1")
    assert MicrosoftTeamsUserIdentifier("u", cloud=DOD) == identifier_from_raw_id("8:dod:u")
    assert MicrosoftTeamsUserIdentifier("u", cloud=DOD) != MicrosoftTeamsUserIdentifier("u", cloud=GCCH)
    assert MicrosoftTeamsUserIdentifier("u") != MicrosoftTeamsAppIdentifier("u")
    assert CommunicationUserIdentifier("8:acs:x") != CommunicationUserIdentifier("8:acs:y")


def test_fields_beyond_the_raw_id_do_not_enter_equality() -> None:
    # The raw id names the participant; the same raw id is the same participant.
    a = PhoneNumberIdentifier("+1", raw_id="4:+1", asserted_id="a")
    b = PhoneNumberIdentifier("+1", raw_id="4:+1", asserted_id="b")
    assert a == b
    assert hash(a) == hash(b)


@pytest.mark.parametrize("other", ["8:acs:x", None, 1, ("8:acs:x",), {"rawId": "8:acs:x"}])
def test_comparison_with_non_identifiers_is_not_implemented(other: object) -> None:
    identifier = CommunicationUserIdentifier("8:acs:x")
    assert identifier.__eq__(other) is NotImplemented
    assert identifier != other
    assert other != identifier


def test_comparison_defers_to_the_other_operand() -> None:
    class Anything:
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = object.__hash__

    assert CommunicationUserIdentifier("8:acs:x") == Anything()


def test_set_and_dict_use() -> None:
    people = {
        CommunicationUserIdentifier("8:acs:x"): "acs",
        PhoneNumberIdentifier("+1"): "phone",
        MicrosoftTeamsUserIdentifier("u", cloud=GCCH): "teams",
    }
    assert people[identifier_from_raw_id("8:acs:x")] == "acs"
    assert people[identifier_from_raw_id("4:+1")] == "phone"
    assert people[UnknownIdentifier("8:gcch:u")] == "teams"
    seen = {identifier_from_raw_id(r) for r in ["8:acs:x", "8:acs:x", "4:+1", "8:orgid:u", "8:orgid:u"]}
    seen |= {UnknownIdentifier("8:acs:x"), MicrosoftTeamsUserIdentifier("u")}
    assert {i.raw_id for i in seen} == {"8:acs:x", "4:+1", "8:orgid:u"}
    assert len(seen) == 3


# Pickle, copy, repr -----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("identifier", EACH, ids=EACH_IDS)
def test_pickle_round_trip(identifier: Any, protocol: int) -> None:
    data = pickle.dumps(identifier, protocol=protocol)
    clone = pickle.loads(data)  # noqa: S301 - our own data
    assert type(clone) is type(identifier)
    assert clone == identifier
    assert clone.properties == identifier.properties
    assert clone.raw_id == identifier.raw_id
    # Plain fields only: the pickle refers to no enum class, so it does not depend on their layout.
    assert b"CommunicationCloudEnvironment" not in data


@pytest.mark.parametrize("identifier", EACH, ids=EACH_IDS)
def test_copies_are_the_same_immutable_object(identifier: Any) -> None:
    assert copy.copy(identifier) is identifier
    assert copy.deepcopy(identifier) is identifier
    assert copy.deepcopy([identifier])[0] is identifier


@pytest.mark.parametrize(
    ("identifier", "text"),
    [
        (CommunicationUserIdentifier("8:acs:x"), "CommunicationUserIdentifier(id='8:acs:x')"),
        (PhoneNumberIdentifier("+1"), "PhoneNumberIdentifier(value='+1', raw_id='4:+1', is_anonymous=False)"),
        (
            PhoneNumberIdentifier("+1_d"),
            "PhoneNumberIdentifier(value='+1_d', raw_id='4:+1_d', is_anonymous=False, asserted_id='d')",
        ),
        (
            MicrosoftTeamsUserIdentifier("u", cloud="dod"),
            "MicrosoftTeamsUserIdentifier(user_id='u', is_anonymous=False, "
            "cloud=CommunicationCloudEnvironment.DOD, raw_id='8:dod:u')",
        ),
        (
            MicrosoftTeamsAppIdentifier("a"),
            "MicrosoftTeamsAppIdentifier(app_id='a', cloud=CommunicationCloudEnvironment.PUBLIC, raw_id='28:orgid:a')",
        ),
        (
            TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", cloud=GCCH),
            "TeamsExtensionUserIdentifier(user_id='u', tenant_id='t', resource_id='r', "
            "cloud=CommunicationCloudEnvironment.GCCH, raw_id='8:gcch-acs:r_t_u')",
        ),
        (UnknownIdentifier("48:x"), "UnknownIdentifier(identifier='48:x')"),
    ],
)
def test_repr_shows_the_fields_and_evaluates_back(identifier: Any, text: str) -> None:
    assert repr(identifier) == text
    namespace = {
        name: globals()[name]
        for name in [
            "CommunicationCloudEnvironment",
            "CommunicationUserIdentifier",
            "PhoneNumberIdentifier",
            "MicrosoftTeamsUserIdentifier",
            "MicrosoftTeamsAppIdentifier",
            "TeamsExtensionUserIdentifier",
            "UnknownIdentifier",
        ]
    }
    rebuilt = eval(text, namespace)  # noqa: S307 - evaluating our own repr is the point
    assert type(rebuilt) is type(identifier)
    assert rebuilt.properties == identifier.properties
    assert rebuilt.raw_id == identifier.raw_id


def test_repr_of_a_parsed_identifier() -> None:
    assert repr(identifier_from_raw_id("4:anonymous")) == (
        "PhoneNumberIdentifier(value='anonymous', raw_id='4:anonymous', is_anonymous=True)"
    )

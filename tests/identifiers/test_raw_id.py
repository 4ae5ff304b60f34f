"""Raw ids in both directions: parsing (JS 2.5.0 vectors, edge cases, properties) and building from fields."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from identifiers_support import VECTORS, expected_from_js

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

RAW_ID_VECTORS = VECTORS["createIdentifierFromRawId"]


def test_vectors_cover_every_kind() -> None:
    kinds = {case["ok"]["kind"] for case in RAW_ID_VECTORS}
    assert kinds == {
        "communicationUser",
        "phoneNumber",
        "microsoftTeamsUser",
        "microsoftTeamsApp",
        "teamsExtensionUser",
        "unknown",
    }


@pytest.mark.parametrize("case", RAW_ID_VECTORS, ids=[repr(c["rawId"]) for c in RAW_ID_VECTORS])
def test_identifier_from_raw_id_matches_js(case: dict[str, Any]) -> None:
    kind, props, _ = expected_from_js(case["ok"])
    identifier = identifier_from_raw_id(case["rawId"])
    assert identifier.kind is kind
    assert identifier.properties == props
    assert identifier.raw_id == case["rawId"]
    for name, value in props.items():
        assert getattr(identifier, name) == value


# Our own table: each class from its fields, each cloud; the anonymous Teams user ignores the cloud.
BUILD_CASES: list[tuple[CommunicationIdentifier, str]] = [
    (CommunicationUserIdentifier("8:acs:abc"), "8:acs:abc"),
    (CommunicationUserIdentifier("8:spool:abc"), "8:spool:abc"),
    (PhoneNumberIdentifier("+14255550123"), "4:+14255550123"),
    (PhoneNumberIdentifier("anonymous"), "4:anonymous"),
    (PhoneNumberIdentifier(" +1 (425) x "), "4: +1 (425) x "),
    (MicrosoftTeamsUserIdentifier("u1"), "8:orgid:u1"),
    (MicrosoftTeamsUserIdentifier("u1", cloud=PUBLIC), "8:orgid:u1"),
    (MicrosoftTeamsUserIdentifier("u1", cloud=DOD), "8:dod:u1"),
    (MicrosoftTeamsUserIdentifier("u1", cloud=GCCH), "8:gcch:u1"),
    (MicrosoftTeamsUserIdentifier("u1", cloud="gcch"), "8:gcch:u1"),
    (MicrosoftTeamsUserIdentifier("u1", is_anonymous=True), "8:teamsvisitor:u1"),
    (MicrosoftTeamsUserIdentifier("u1", is_anonymous=True, cloud=DOD), "8:teamsvisitor:u1"),
    (MicrosoftTeamsUserIdentifier("u1", is_anonymous=True, cloud=GCCH), "8:teamsvisitor:u1"),
    (MicrosoftTeamsAppIdentifier("a1"), "28:orgid:a1"),
    (MicrosoftTeamsAppIdentifier("a1", cloud=DOD), "28:dod:a1"),
    (MicrosoftTeamsAppIdentifier("a1", cloud="Gcch"), "28:gcch:a1"),
    (TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r"), "8:acs:r_t_u"),
    (TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", cloud=DOD), "8:dod-acs:r_t_u"),
    (TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", cloud=GCCH), "8:gcch-acs:r_t_u"),
    (UnknownIdentifier("48:whatever"), "48:whatever"),
    # An explicit raw id always wins (except for communication users, which must agree).
    (CommunicationUserIdentifier("8:acs:abc", raw_id="8:acs:abc"), "8:acs:abc"),
    (PhoneNumberIdentifier("+1", raw_id="4:+1_device"), "4:+1_device"),
    (MicrosoftTeamsUserIdentifier("u1", cloud=DOD, raw_id="8:orgid:legacy"), "8:orgid:legacy"),
    (MicrosoftTeamsUserIdentifier("u1", is_anonymous=True, raw_id="custom"), "custom"),
    (MicrosoftTeamsAppIdentifier("a1", raw_id="28:gcch:a1"), "28:gcch:a1"),
    (TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", raw_id="x"), "x"),
]


@pytest.mark.parametrize(("identifier", "raw_id"), BUILD_CASES, ids=[c[1] + "-" + repr(c[0]) for c in BUILD_CASES])
def test_raw_id_built_from_fields(identifier: CommunicationIdentifier, raw_id: str) -> None:
    assert identifier.raw_id == raw_id


@pytest.mark.parametrize(
    "identifier",
    [case[0] for case in BUILD_CASES[:20]],
    ids=[case[1] for case in BUILD_CASES[:20]],
)
def test_built_raw_id_parses_back_to_the_same_fields(identifier: CommunicationIdentifier) -> None:
    parsed = identifier_from_raw_id(identifier.raw_id)
    assert parsed == identifier
    if identifier.kind is Kind.MICROSOFT_TEAMS_USER and identifier.properties["is_anonymous"]:
        # The visitor raw id carries no cloud: it parses back as PUBLIC.
        assert parsed.properties == {**identifier.properties, "cloud": PUBLIC}
    else:
        assert parsed.kind is identifier.kind
        assert parsed.properties == identifier.properties


@pytest.mark.parametrize(
    ("raw_id", "kind"),
    [
        ("8:acs:x:y", Kind.UNKNOWN),  # extra colon
        ("8:orgid:a:b", Kind.UNKNOWN),
        ("28:orgid:a:b", Kind.UNKNOWN),
        ("8:teamsvisitor:a:b", Kind.UNKNOWN),
        ("8:spool:a:b", Kind.UNKNOWN),
        ("8:ACS:x", Kind.UNKNOWN),  # prefixes are case-sensitive
        ("8:OrgId:x", Kind.UNKNOWN),
        ("28:Orgid:x", Kind.UNKNOWN),
        ("8::x", Kind.UNKNOWN),
        ("28::x", Kind.UNKNOWN),
        ("::x", Kind.UNKNOWN),
        ("x8:acs:y", Kind.UNKNOWN),
        ("18:acs:y", Kind.UNKNOWN),
        ("8:acsx:y", Kind.UNKNOWN),
        ("8:acs", Kind.UNKNOWN),
        ("28:orgid", Kind.UNKNOWN),
        ("", Kind.UNKNOWN),
        ("8:acs:r_t_u", Kind.TEAMS_EXTENSION_USER),
        ("8:acs:__", Kind.TEAMS_EXTENSION_USER),
        ("8:acs:r_t_u_v", Kind.COMMUNICATION_USER),
        ("8:gcch-acs:r_t", Kind.COMMUNICATION_USER),
        ("8:spool:r_t_u", Kind.COMMUNICATION_USER),
        ("4:8:acs:x", Kind.PHONE_NUMBER),
        ("4:", Kind.PHONE_NUMBER),
        ("4", Kind.UNKNOWN),
    ],
)
def test_edge_cases(raw_id: str, kind: CommunicationIdentifierKind) -> None:
    identifier = identifier_from_raw_id(raw_id)
    assert identifier.kind is kind
    assert identifier.raw_id == raw_id


def test_teams_extension_user_fields_come_from_the_three_parts() -> None:
    identifier = identifier_from_raw_id("8:gcch-acs:res_ten_usr")
    assert isinstance(identifier, TeamsExtensionUserIdentifier)
    assert (identifier.resource_id, identifier.tenant_id, identifier.user_id) == ("res", "ten", "usr")
    assert identifier.cloud is GCCH
    assert identifier == TeamsExtensionUserIdentifier(user_id="usr", tenant_id="ten", resource_id="res", cloud="gcch")


@pytest.mark.parametrize("value", [None, 8, b"8:acs:x", ["8:acs:x"], object()])
def test_non_string_raises_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="raw_id must be a str"):
        identifier_from_raw_id(value)  # type: ignore[arg-type]


def test_str_subclass_is_accepted() -> None:
    class Mri(str):
        pass

    identifier = identifier_from_raw_id(Mri("8:orgid:u"))
    assert identifier.kind is Kind.MICROSOFT_TEAMS_USER
    assert identifier.raw_id == "8:orgid:u"


KNOWN_PREFIXES = [
    "4:",
    "8:acs:",
    "8:dod-acs:",
    "8:gcch-acs:",
    "8:spool:",
    "8:orgid:",
    "8:dod:",
    "8:gcch:",
    "8:teamsvisitor:",
    "28:orgid:",
    "28:dod:",
    "28:gcch:",
    "28:",
    "8:",
]
# Text rich in the characters the rules look at, so the interesting branches are reached often.
RULE_TEXT = st.text(alphabet=st.sampled_from(list("ab_:-+4890 ")) | st.characters(), max_size=30)
PREFIXED_TEXT = st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(KNOWN_PREFIXES), RULE_TEXT)


def _check_parsed(raw_id: str) -> None:
    identifier = identifier_from_raw_id(raw_id)
    assert identifier.raw_id == raw_id
    # The trusted construction filled every field: the identifier survives pickle (which goes through
    # the validating public constructor) with the same type and properties.
    clone = pickle.loads(pickle.dumps(identifier))  # noqa: S301 - our own data
    assert type(clone) is type(identifier)
    assert clone.properties == identifier.properties
    assert clone == identifier
    assert hash(clone) == hash(identifier) == hash(identifier_from_raw_id(raw_id))


@given(st.text())
def test_round_trip_over_arbitrary_text(raw_id: str) -> None:
    _check_parsed(raw_id)


@given(PREFIXED_TEXT)
def test_round_trip_over_texts_with_known_prefixes(raw_id: str) -> None:
    _check_parsed(raw_id)


@given(PREFIXED_TEXT)
def test_parser_agrees_with_the_public_constructors(raw_id: str) -> None:
    # The parser's trusted construction and the validating constructors give the same identifier.
    parsed = identifier_from_raw_id(raw_id)
    props = parsed.properties
    rebuilt: CommunicationIdentifier
    if isinstance(parsed, PhoneNumberIdentifier):
        rebuilt = PhoneNumberIdentifier(props["value"], raw_id=raw_id)
    elif isinstance(parsed, CommunicationUserIdentifier):
        rebuilt = CommunicationUserIdentifier(props["id"])
    elif isinstance(parsed, MicrosoftTeamsUserIdentifier):
        rebuilt = MicrosoftTeamsUserIdentifier(**props)
    elif isinstance(parsed, MicrosoftTeamsAppIdentifier):
        rebuilt = MicrosoftTeamsAppIdentifier(**props)
    elif isinstance(parsed, TeamsExtensionUserIdentifier):
        rebuilt = TeamsExtensionUserIdentifier(**props)
    else:
        rebuilt = UnknownIdentifier(raw_id)
    assert type(rebuilt) is type(parsed)
    assert rebuilt.properties == props
    assert rebuilt.raw_id == raw_id


@given(RULE_TEXT)
def test_phone_rules(number: str) -> None:
    identifier = identifier_from_raw_id("4:" + number)
    assert isinstance(identifier, PhoneNumberIdentifier)
    assert identifier.value == number
    assert identifier.is_anonymous == (number == "anonymous")
    if identifier.asserted_id is not None:
        assert not identifier.is_anonymous
        assert number.endswith("_" + identifier.asserted_id)
        assert "_" not in identifier.asserted_id
        assert identifier.asserted_id
    else:
        assert number == "anonymous" or "_" not in number or number.endswith("_")


def test_vendored_vectors_match_the_shared_original() -> None:
    from identifiers_support import SHARED_VECTORS_PATH, VECTORS_PATH

    if not SHARED_VECTORS_PATH.is_file():
        pytest.skip("no shared/ beside this clone: the vendored copy is all there is")
    assert VECTORS_PATH.read_bytes() == SHARED_VECTORS_PATH.read_bytes()

"""Compatibility with the official clients: their serializers accept our identifiers, and we read theirs.

azure-communication-chat 1.3 has a dict-building serializer and knows communication users, phone numbers,
Teams users and Teams apps (its _shared models have no Teams extension users, and its phone numbers carry
no is_anonymous/asserted_id). azure-communication-callautomation 1.6 builds generated models and knows all
five kinds. Each of our identifiers must give exactly the wire model that the client's own identifier
class, built from the same fields, gives.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.communication.callautomation import _utils as call_serializer
from azure.communication.callautomation._generated.models import CommunicationIdentifierModel as CallModel
from azure.communication.callautomation._shared import models as call_shared
from azure.communication.chat import _communication_identifier_serializer as chat_serializer
from azure.communication.chat._generated import models as chat_generated
from azure.communication.chat._generated._serialization import Serializer as ChatSerializer
from azure.communication.chat._shared import models as chat_shared

from azure.communication.common import (
    CommunicationCloudEnvironment,
    CommunicationIdentifier,
    CommunicationUserIdentifier,
    MicrosoftTeamsAppIdentifier,
    MicrosoftTeamsUserIdentifier,
    PhoneNumberIdentifier,
    TeamsExtensionUserIdentifier,
    UnknownIdentifier,
    deserialize_identifier,
    identifier_from_raw_id,
    serialize_identifier,
)

DOD = CommunicationCloudEnvironment.DOD
GCCH = CommunicationCloudEnvironment.GCCH
PUBLIC = CommunicationCloudEnvironment.PUBLIC

_CHAT_SERIALIZER = ChatSerializer({k: v for k, v in vars(chat_generated).items() if isinstance(v, type)})


def chat_wire(identifier: Any) -> dict[str, Any]:
    """What the chat client sends: its serializer's dict, turned into JSON by its generated model."""
    produced = chat_serializer.serialize_identifier(identifier)
    wire: dict[str, Any] = _CHAT_SERIALIZER.body(produced, "CommunicationIdentifierModel")
    return wire


def call_wire(identifier: Any) -> dict[str, Any]:
    """What the call automation client sends: its generated model, serialized to JSON."""
    model = call_serializer.serialize_identifier(identifier)
    wire: dict[str, Any] = model.serialize()
    return wire


# (ours, chat's own, call automation's own) built from the same fields. The peers' phone numbers are given
# the raw id so that they compute is_anonymous/asserted_id as ours do (chat's cannot: see the module doc).
def _cases() -> list[tuple[str, Any, Any, Any]]:
    cases: list[tuple[str, Any, Any, Any]] = [
        (
            "communication user",
            CommunicationUserIdentifier("8:acs:u1"),
            chat_shared.CommunicationUserIdentifier("8:acs:u1"),
            call_shared.CommunicationUserIdentifier("8:acs:u1"),
        ),
        (
            "phone",
            PhoneNumberIdentifier("+14255550123"),
            chat_shared.PhoneNumberIdentifier("+14255550123"),
            call_shared.PhoneNumberIdentifier("+14255550123", raw_id="4:+14255550123"),
        ),
        (
            "phone with asserted id",
            PhoneNumberIdentifier("+14255550123_dev"),
            chat_shared.PhoneNumberIdentifier("+14255550123_dev"),
            call_shared.PhoneNumberIdentifier("+14255550123_dev", raw_id="4:+14255550123_dev"),
        ),
        (
            "anonymous phone",
            PhoneNumberIdentifier("anonymous"),
            chat_shared.PhoneNumberIdentifier("anonymous"),
            call_shared.PhoneNumberIdentifier("anonymous", raw_id="4:anonymous"),
        ),
        (
            "unknown",
            UnknownIdentifier("48:x"),
            chat_shared.UnknownIdentifier("48:x"),
            call_shared.UnknownIdentifier("48:x"),
        ),
    ]
    for cloud in (PUBLIC, DOD, GCCH):
        chat_cloud = chat_shared.CommunicationCloudEnvironment(cloud.value)
        call_cloud = call_shared.CommunicationCloudEnvironment(cloud.value)
        for anonymous in (False, True):
            cases.append(
                (
                    f"teams user {cloud.value} anonymous={anonymous}",
                    MicrosoftTeamsUserIdentifier("t1", is_anonymous=anonymous, cloud=cloud),
                    chat_shared.MicrosoftTeamsUserIdentifier("t1", is_anonymous=anonymous, cloud=chat_cloud),
                    call_shared.MicrosoftTeamsUserIdentifier("t1", is_anonymous=anonymous, cloud=call_cloud),
                )
            )
        cases.append(
            (
                f"teams app {cloud.value}",
                MicrosoftTeamsAppIdentifier("a1", cloud=cloud),
                chat_shared.MicrosoftTeamsAppIdentifier("a1", cloud=chat_cloud),
                call_shared.MicrosoftTeamsAppIdentifier("a1", cloud=call_cloud),
            )
        )
        cases.append(
            (
                f"teams extension user {cloud.value}",
                TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", cloud=cloud),
                None,  # chat 1.3 has no Teams extension users
                call_shared.TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r", cloud=call_cloud),
            )
        )
    return cases


CASES = _cases()
IDS = [c[0] for c in CASES]
CHAT_CASES = [c for c in CASES if c[2] is not None]
CHAT_IDS = [c[0] for c in CHAT_CASES]


@pytest.mark.parametrize(("name", "ours", "chat_own", "call_own"), CASES, ids=IDS)
def test_callautomation_serializer_gives_the_same_model(name: str, ours: Any, chat_own: Any, call_own: Any) -> None:
    assert call_own.raw_id == ours.raw_id
    produced = call_wire(ours)
    assert produced == call_wire(call_own)
    assert produced["rawId"] == ours.raw_id
    # Our own serializer agrees with it, up to the case of the cloud (the peers write "DOD", we write "dod").
    our_wire = serialize_identifier(ours)
    nested = {k: v for k, v in produced.items() if k != "rawId"}
    assert {k: v for k, v in our_wire.items() if k not in ("rawId", "kind")} == _lower_clouds(nested)


@pytest.mark.parametrize(("name", "ours", "chat_own", "call_own"), CHAT_CASES, ids=CHAT_IDS)
def test_chat_serializer_gives_the_same_model(name: str, ours: Any, chat_own: Any, call_own: Any) -> None:
    assert chat_own.raw_id == ours.raw_id
    produced = chat_wire(ours)
    assert produced == chat_wire(chat_own)
    assert produced["rawId"] == ours.raw_id
    if ours.kind != "unknown":
        # The nested model really was written (the chat serializer keys it by our kind value).
        assert len(produced) == 2


def test_chat_serializer_on_a_teams_extension_user_writes_the_raw_id() -> None:
    # Chat 1.3 has no model for it: like any kind it does not know, only the raw id goes on the wire.
    ours = TeamsExtensionUserIdentifier(user_id="u", tenant_id="t", resource_id="r")
    assert chat_wire(ours) == {"rawId": "8:acs:r_t_u"}


def _lower_clouds(wire: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in wire.items():
        if isinstance(value, dict):
            out[key] = {k: v.lower() if k == "cloud" else v for k, v in value.items()}
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(("name", "ours", "chat_own", "call_own"), CASES, ids=IDS)
def test_we_read_what_callautomation_writes(name: str, ours: Any, chat_own: Any, call_own: Any) -> None:
    back = deserialize_identifier(call_wire(call_own))
    assert back == ours
    assert back.kind is ours.kind
    assert back.properties == ours.properties


@pytest.mark.parametrize(("name", "ours", "chat_own", "call_own"), CHAT_CASES, ids=CHAT_IDS)
def test_we_read_what_chat_writes(name: str, ours: Any, chat_own: Any, call_own: Any) -> None:
    # Chat writes no "kind"; we infer it. Its phone numbers carry no is_anonymous: we take it from the raw id.
    back = deserialize_identifier(chat_wire(chat_own))
    assert back == ours
    assert back.kind is ours.kind
    assert back.properties == ours.properties


@pytest.mark.parametrize(("name", "ours", "chat_own", "call_own"), CASES, ids=IDS)
def test_callautomation_reads_what_we_write(name: str, ours: Any, chat_own: Any, call_own: Any) -> None:
    theirs = call_serializer.deserialize_identifier(CallModel.deserialize(serialize_identifier(ours)))
    assert type(theirs).__name__ == type(ours).__name__
    assert theirs.raw_id == ours.raw_id
    expected = ours.properties
    got = dict(theirs.properties)
    if "cloud" in got:
        # They keep the wire text ("dod"); our cloud lookup reads it back as the same member.
        got["cloud"] = CommunicationCloudEnvironment(got["cloud"])
    # Their phone numbers take is_anonymous/asserted_id from the raw id, as ours do by default.
    assert got == expected


@pytest.mark.parametrize(("name", "ours", "chat_own", "call_own"), CASES, ids=IDS)
def test_we_serialize_their_identifiers_like_ours(name: str, ours: Any, chat_own: Any, call_own: Any) -> None:
    expected = serialize_identifier(ours)
    assert serialize_identifier(call_own) == expected
    if chat_own is not None:
        assert serialize_identifier(chat_own) == expected


@pytest.mark.parametrize(
    "raw_id",
    [
        "8:acs:bbbcbc1e-9f06-482a-b5d8-20e3f26ef0cd_45ab2481-1c1c-4005-be24-0ffb879b1130",
        "8:acs:r_t_u",
        "8:dod-acs:r_t_u",
        "8:spool:x",
        "4:+14255550123",
        "4:+14255550123_x",
        "4:anonymous",
        "8:orgid:u",
        "8:dod:u",
        "8:gcch:u",
        "8:teamsvisitor:u",
        "28:orgid:a",
        "28:gcch:a",
        "48:x",
    ],
)
def test_raw_id_parsing_agrees_with_callautomation(raw_id: str) -> None:
    ours = identifier_from_raw_id(raw_id)
    theirs = call_shared.identifier_from_raw_id(raw_id)
    assert ours.kind == theirs.kind
    assert ours.raw_id == theirs.raw_id
    assert ours.properties == dict(theirs.properties)


def test_our_identifiers_satisfy_their_protocol() -> None:
    for _, ours, _, _ in CASES:
        assert isinstance(ours, call_shared.CommunicationIdentifier)
        assert isinstance(ours, chat_shared.CommunicationIdentifier)
        assert isinstance(ours, CommunicationIdentifier)

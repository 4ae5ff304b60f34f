"""Property tests for the wire model: round trips over generated identifiers; arbitrary input fails cleanly."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from azure.communication.common import (
    CommunicationCloudEnvironment,
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

TEXT = st.text(max_size=20)
ID_TEXT = st.text(alphabet=st.sampled_from(list("ab_:-4+8")) | st.characters(), max_size=20)
CLOUDS = st.sampled_from(list(CommunicationCloudEnvironment)) | st.sampled_from(["public", "Dod", "GCCH", "gcch"])
RAW_IDS = st.none() | ID_TEXT

IDENTIFIERS = st.one_of(
    st.builds(CommunicationUserIdentifier, ID_TEXT),
    st.builds(
        PhoneNumberIdentifier,
        ID_TEXT,
        raw_id=RAW_IDS,
        is_anonymous=st.none() | st.booleans(),
        asserted_id=st.none() | TEXT,
    ),
    st.builds(MicrosoftTeamsUserIdentifier, ID_TEXT, is_anonymous=st.booleans(), cloud=CLOUDS, raw_id=RAW_IDS),
    st.builds(MicrosoftTeamsAppIdentifier, ID_TEXT, cloud=CLOUDS, raw_id=RAW_IDS),
    st.builds(
        TeamsExtensionUserIdentifier,
        user_id=ID_TEXT,
        tenant_id=ID_TEXT,
        resource_id=ID_TEXT,
        cloud=CLOUDS,
        raw_id=RAW_IDS,
    ),
    st.builds(UnknownIdentifier, ID_TEXT),
    ID_TEXT.map(identifier_from_raw_id),
)


@given(IDENTIFIERS)
def test_serialize_deserialize_round_trip(identifier: Any) -> None:
    wire = serialize_identifier(identifier)
    # Through JSON text too, as it travels.
    back = deserialize_identifier(json.loads(json.dumps(wire)))
    assert back == identifier
    assert type(back) is type(identifier)
    assert back.kind is identifier.kind
    assert back.properties == identifier.properties
    assert back.raw_id == identifier.raw_id


@given(IDENTIFIERS)
def test_serialized_model_has_one_nested_model_named_by_its_kind(identifier: Any) -> None:
    wire = serialize_identifier(identifier)
    nested = set(wire) - {"rawId", "kind"}
    if wire["kind"] == "unknown":
        assert nested == set()
    else:
        assert nested == {wire["kind"]}
    assert wire["rawId"] == identifier.raw_id
    for value in wire.get(wire["kind"], {}).values():
        assert type(value) in (str, bool)


SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10)
KEYS = st.sampled_from(
    [
        "rawId",
        "kind",
        "communicationUser",
        "phoneNumber",
        "microsoftTeamsUser",
        "microsoftTeamsApp",
        "teamsExtensionUser",
        "id",
        "value",
        "userId",
        "isAnonymous",
        "cloud",
        "appId",
        "tenantId",
        "resourceId",
        "assertedId",
    ]
)
VALUES = st.recursive(
    SCALARS | st.sampled_from(["communicationUser", "phoneNumber", "microsoftTeamsUser", "dod", "public", "unknown"]),
    lambda children: st.lists(children, max_size=2) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=6,
)


@st.composite
def perturbed_models(draw: st.DrawFn) -> dict[str, Any]:
    """A valid wire model with one key replaced by an arbitrary value, or removed."""
    model = serialize_identifier(draw(IDENTIFIERS))
    nested_name = model["kind"] if model["kind"] in model else None
    holder = model[nested_name] if nested_name is not None and draw(st.booleans()) else model
    key = draw(st.sampled_from(sorted(holder)) | KEYS)
    if draw(st.booleans()):
        holder.pop(key, None)
    else:
        holder[key] = draw(VALUES)
    return model


MODELS = (
    perturbed_models()
    | st.dictionaries(KEYS, VALUES, max_size=5)
    | st.dictionaries(st.text(max_size=10), SCALARS, max_size=4)
)


@given(MODELS)
def test_deserialize_raises_only_value_or_type_errors(model: dict[str, Any]) -> None:
    failure: Exception | None = None
    try:
        identifier = deserialize_identifier(model)
    except (ValueError, TypeError) as exc:
        failure = exc
    if failure is not None:
        # A clean, explained failure: never an empty message.
        assert str(failure)
        return
    # A success yields a consistent identifier that survives its own round trip.
    assert isinstance(identifier.raw_id, str)
    again = deserialize_identifier(serialize_identifier(identifier))
    assert again == identifier
    assert again.properties == identifier.properties

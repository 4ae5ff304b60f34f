"""The REST wire model of identifiers (``CommunicationIdentifierModel``): camelCase JSON dictionaries.

``serialize_identifier`` writes the model the Communication Services REST APIs take;
``deserialize_identifier`` reads it back with the checks and error texts of
``@azure/communication-common`` 2.5.0 (``serializeCommunicationIdentifier`` /
``deserializeCommunicationIdentifier``), with one deliberate deviation: a required property that is
present but ``null`` is rejected like a missing one (JavaScript lets it through and builds an
identifier holding ``null``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

from ._identifiers import (
    CommunicationCloudEnvironment,
    CommunicationIdentifier,
    CommunicationIdentifierKind,
    CommunicationUserIdentifier,
    MicrosoftTeamsAppIdentifier,
    MicrosoftTeamsUserIdentifier,
    PhoneNumberIdentifier,
    TeamsExtensionUserIdentifier,
    UnknownIdentifier,
)

__all__ = ["deserialize_identifier", "serialize_identifier"]

_Kind = CommunicationIdentifierKind

_COMMUNICATION_USER: Final = "communicationUser"
_PHONE_NUMBER: Final = "phoneNumber"
_MICROSOFT_TEAMS_USER: Final = "microsoftTeamsUser"
_MICROSOFT_TEAMS_APP: Final = "microsoftTeamsApp"
_TEAMS_EXTENSION_USER: Final = "teamsExtensionUser"
_UNKNOWN: Final = "unknown"

# The order of the names in the "Only one of the properties in [...]" message (the JS order).
_MESSAGE_ORDER: Final = (
    _COMMUNICATION_USER,
    _MICROSOFT_TEAMS_USER,
    _MICROSOFT_TEAMS_APP,
    _PHONE_NUMBER,
    _TEAMS_EXTENSION_USER,
)
# The order in which a missing "kind" is inferred from the nested models (the JS order).
_INFERENCE_ORDER: Final = (
    _COMMUNICATION_USER,
    _PHONE_NUMBER,
    _MICROSOFT_TEAMS_USER,
    _MICROSOFT_TEAMS_APP,
    _TEAMS_EXTENSION_USER,
)

_KIND_BY_VALUE: Final = {kind.value: kind for kind in _Kind}
_WIRE_CLOUD: Final = {cloud: cloud.value.lower() for cloud in CommunicationCloudEnvironment}


class _IdentifierLike(Protocol):
    """What ``serialize_identifier`` reads: our identifiers and the ``_shared`` ones alike.

    ``kind`` is typed ``str`` because the ``_shared`` classes use their own ``str`` enum.
    """

    @property
    def kind(self) -> str: ...

    @property
    def raw_id(self) -> str: ...

    @property
    def properties(self) -> Mapping[str, Any]: ...


def serialize_identifier(identifier: CommunicationIdentifier | _IdentifierLike) -> dict[str, Any]:
    """Write an identifier as the REST wire model (``CommunicationIdentifierModel``).

    Args:
        identifier: Any communication identifier: one of ours, or another object with ``kind``,
            ``raw_id`` and ``properties`` of a known kind (e.g. the ``_shared`` identifiers of the
            ``azure-communication-*`` packages, whose ``kind`` values are the same strings).

    Returns:
        A new camelCase dictionary: ``rawId``, ``kind`` and the nested model of the kind
        (``communicationUser``, ``phoneNumber``, ``microsoftTeamsUser``, ``microsoftTeamsApp`` or
        ``teamsExtensionUser``); an unknown identifier has only ``rawId`` and ``kind``. Clouds are
        written in lower case.

    Raises:
        TypeError: ``identifier`` is not a communication identifier of a known kind, or its fields
            have the wrong types.
        ValueError: A field has a value no identifier can hold (e.g. an unknown cloud).
    """
    writer = _WRITERS.get(type(identifier))
    if writer is None:
        ours = _as_our_identifier(identifier)
        # A subclass of one of ours is written as that class.
        writer = next(_WRITERS[cls] for cls in type(ours).__mro__ if cls in _WRITERS)
        return writer(ours)
    return writer(identifier)


def _write_communication_user(identifier: Any) -> dict[str, Any]:
    raw_id = identifier._raw_id
    return {"rawId": raw_id, "kind": _COMMUNICATION_USER, _COMMUNICATION_USER: {"id": raw_id}}


def _write_phone_number(identifier: Any) -> dict[str, Any]:
    phone: dict[str, Any] = {"value": identifier._value, "isAnonymous": identifier._is_anonymous}
    asserted_id = identifier._asserted_id
    if asserted_id is not None:
        phone["assertedId"] = asserted_id
    return {"rawId": identifier._raw_id, "kind": _PHONE_NUMBER, _PHONE_NUMBER: phone}


def _write_teams_user(identifier: Any) -> dict[str, Any]:
    teams_user = {
        "userId": identifier._user_id,
        "isAnonymous": identifier._is_anonymous,
        "cloud": _WIRE_CLOUD[identifier._cloud],
    }
    return {"rawId": identifier._raw_id, "kind": _MICROSOFT_TEAMS_USER, _MICROSOFT_TEAMS_USER: teams_user}


def _write_teams_app(identifier: Any) -> dict[str, Any]:
    teams_app = {"appId": identifier._app_id, "cloud": _WIRE_CLOUD[identifier._cloud]}
    return {"rawId": identifier._raw_id, "kind": _MICROSOFT_TEAMS_APP, _MICROSOFT_TEAMS_APP: teams_app}


def _write_extension_user(identifier: Any) -> dict[str, Any]:
    extension_user = {
        "userId": identifier._user_id,
        "tenantId": identifier._tenant_id,
        "resourceId": identifier._resource_id,
        "cloud": _WIRE_CLOUD[identifier._cloud],
    }
    return {"rawId": identifier._raw_id, "kind": _TEAMS_EXTENSION_USER, _TEAMS_EXTENSION_USER: extension_user}


def _write_unknown(identifier: Any) -> dict[str, Any]:
    return {"rawId": identifier._raw_id, "kind": _UNKNOWN}


# One dict lookup on the exact class picks the writer (serialization is on the hot path of every request
# that names a participant). The writers read the slots of our own classes directly: they are only ever
# given instances of exactly these classes, and a slot read costs a fraction of a property call.
_WRITERS: Final[dict[type, Callable[[Any], dict[str, Any]]]] = {
    CommunicationUserIdentifier: _write_communication_user,
    PhoneNumberIdentifier: _write_phone_number,
    MicrosoftTeamsUserIdentifier: _write_teams_user,
    MicrosoftTeamsAppIdentifier: _write_teams_app,
    TeamsExtensionUserIdentifier: _write_extension_user,
    UnknownIdentifier: _write_unknown,
}


_OurIdentifier = (
    CommunicationUserIdentifier
    | PhoneNumberIdentifier
    | MicrosoftTeamsUserIdentifier
    | MicrosoftTeamsAppIdentifier
    | TeamsExtensionUserIdentifier
    | UnknownIdentifier
)
_OUR_CLASSES: Final = (
    CommunicationUserIdentifier,
    PhoneNumberIdentifier,
    MicrosoftTeamsUserIdentifier,
    MicrosoftTeamsAppIdentifier,
    TeamsExtensionUserIdentifier,
    UnknownIdentifier,
)


def _as_our_identifier(identifier: object) -> _OurIdentifier:
    """Our identifier for ``identifier``: itself, or one rebuilt from a foreign object's fields."""
    if isinstance(identifier, _OUR_CLASSES):
        return identifier
    try:
        kind_value = identifier.kind  # type: ignore[attr-defined]
        raw_id = identifier.raw_id  # type: ignore[attr-defined]
        properties = identifier.properties  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(
            "serialize_identifier expected a communication identifier (an object with kind, raw_id and "
            f"properties), got {type(identifier).__name__}"
        ) from None
    kind = _KIND_BY_VALUE.get(kind_value) if isinstance(kind_value, str) else None
    if kind is None:
        raise TypeError(f"serialize_identifier got an identifier of unsupported kind {kind_value!r}")
    if not isinstance(properties, Mapping):
        raise TypeError(f"identifier.properties must be a mapping, got {type(properties).__name__}")
    try:
        if kind is _Kind.COMMUNICATION_USER:
            return CommunicationUserIdentifier(properties["id"], raw_id=raw_id)
        if kind is _Kind.PHONE_NUMBER:
            return PhoneNumberIdentifier(
                properties["value"],
                raw_id=raw_id,
                is_anonymous=properties.get("is_anonymous"),
                asserted_id=properties.get("asserted_id"),
            )
        if kind is _Kind.MICROSOFT_TEAMS_USER:
            return MicrosoftTeamsUserIdentifier(
                properties["user_id"],
                is_anonymous=properties.get("is_anonymous", False),
                cloud=properties.get("cloud"),
                raw_id=raw_id,
            )
        if kind is _Kind.MICROSOFT_TEAMS_APP:
            return MicrosoftTeamsAppIdentifier(properties["app_id"], cloud=properties.get("cloud"), raw_id=raw_id)
        if kind is _Kind.TEAMS_EXTENSION_USER:
            return TeamsExtensionUserIdentifier(
                user_id=properties["user_id"],
                tenant_id=properties["tenant_id"],
                resource_id=properties["resource_id"],
                cloud=properties.get("cloud"),
                raw_id=raw_id,
            )
    except KeyError as exc:
        raise TypeError(
            f"a {kind.value} identifier's properties must contain {exc.args[0]!r}; "
            f"got keys {sorted(map(str, properties))}"
        ) from None
    return UnknownIdentifier(raw_id)


def _required(holder: Mapping[str, Any], name: str, kind: str) -> Any:
    """``holder[name]``, or the JS error when it is missing (or, our deviation, null)."""
    value = holder.get(name)
    if value is None:
        raise ValueError(f"Property {name} is required for identifier of type {kind}.")
    return value


def deserialize_identifier(model: Mapping[str, Any]) -> CommunicationIdentifier:
    """Read an identifier from the REST wire model (``CommunicationIdentifierModel``).

    The JS 2.5.0 rules, in order:

    1. At most one nested model may be *present* (even as ``null``), else :class:`ValueError`
       ``Only one of the properties in ["communicationUser","phoneNumber"] should be present.``
    2. The kind is ``kind`` when present, else inferred from the first nested model that is a
       dictionary. A kind this version does not know, or whose nested model is not a dictionary, gives an
       :class:`UnknownIdentifier` of ``rawId``.
    3. Required properties are checked in the JS order with the JS text
       ``Property X is required for identifier of type Y.``; a present but ``null`` property counts as
       missing (a deliberate deviation: JavaScript accepts it).
    4. A communication user takes ``communicationUser.id`` (its raw id); a phone number takes
       ``isAnonymous``/``assertedId`` from the wire when present and from its raw id otherwise; clouds are
       read in any case; unknown extra keys are ignored.

    Args:
        model: The wire model as a mapping (e.g. parsed JSON).

    Returns:
        The identifier.

    Raises:
        TypeError: ``model`` is not a mapping, or a property has the wrong type.
        ValueError: The model breaks the rules above or names an unknown cloud.
    """
    if not isinstance(model, Mapping):
        raise TypeError(f"deserialize_identifier expected a mapping (the wire model), got {type(model).__name__}")
    present = [name for name in _MESSAGE_ORDER if name in model]
    if len(present) > 1:
        names = ",".join('"' + name + '"' for name in present)
        raise ValueError(f"Only one of the properties in [{names}] should be present.")

    kind = model.get("kind")
    if kind is None:
        kind = next((name for name in _INFERENCE_ORDER if isinstance(model.get(name), Mapping)), _UNKNOWN)
    nested = model.get(kind) if isinstance(kind, str) and kind in _INFERENCE_ORDER else None
    if not isinstance(nested, Mapping):
        return UnknownIdentifier(_required(model, "rawId", _UNKNOWN))

    if kind == _COMMUNICATION_USER:
        return CommunicationUserIdentifier(_required(nested, "id", kind))
    if kind == _PHONE_NUMBER:
        value = _required(nested, "value", kind)
        return PhoneNumberIdentifier(
            value,
            raw_id=_required(model, "rawId", kind),
            is_anonymous=nested.get("isAnonymous"),
            asserted_id=nested.get("assertedId"),
        )
    if kind == _MICROSOFT_TEAMS_USER:
        user_id = _required(nested, "userId", kind)
        is_anonymous = _required(nested, "isAnonymous", kind)
        cloud = _required(nested, "cloud", kind)
        return MicrosoftTeamsUserIdentifier(
            user_id, is_anonymous=is_anonymous, cloud=cloud, raw_id=_required(model, "rawId", kind)
        )
    if kind == _MICROSOFT_TEAMS_APP:
        app_id = _required(nested, "appId", kind)
        cloud = _required(nested, "cloud", kind)
        return MicrosoftTeamsAppIdentifier(app_id, cloud=cloud, raw_id=_required(model, "rawId", kind))
    user_id = _required(nested, "userId", kind)
    tenant_id = _required(nested, "tenantId", kind)
    resource_id = _required(nested, "resourceId", kind)
    cloud = _required(nested, "cloud", kind)
    return TeamsExtensionUserIdentifier(
        user_id=user_id,
        tenant_id=tenant_id,
        resource_id=resource_id,
        cloud=cloud,
        raw_id=_required(model, "rawId", kind),
    )

"""Communication identifiers: the value types that name a participant, and their raw-id form.

Every identifier has a *raw id*, the one string that names it in Azure Communication Services
(``8:acs:...``, ``4:+14255550123``, ``8:orgid:...``). Identifiers compare and hash by raw id, so an
identifier parsed with :func:`identifier_from_raw_id` equals the one built from its fields.

The class names, keyword names and ``kind`` values are those of the ``_shared`` identifiers vendored in
the ``azure-communication-*`` packages, so code can switch imports and the official clients'
serializers accept these objects. The raw-id rules are those of ``@azure/communication-common`` 2.5.0.

Identifiers are immutable in the way :class:`fractions.Fraction` is: their fields live in private slots
behind read-only properties, so assigning a field or a new attribute raises :class:`AttributeError`.
:func:`identifier_from_raw_id` fills the slots of bare instances directly (a trusted internal
construction that skips argument validation), because parsing is a hot path (chat and calling events
carry raw ids) and the parser only ever produces well-typed fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal, Protocol, runtime_checkable

__all__ = [
    "CommunicationCloudEnvironment",
    "CommunicationIdentifier",
    "CommunicationIdentifierKind",
    "CommunicationUserIdentifier",
    "MicrosoftTeamsAppIdentifier",
    "MicrosoftTeamsUserIdentifier",
    "PhoneNumberIdentifier",
    "TeamsExtensionUserIdentifier",
    "UnknownIdentifier",
    "identifier_from_raw_id",
]


class CommunicationIdentifierKind(str, enum.Enum):
    """The kind of a communication identifier (the ``_shared`` values, lower snake case).

    To recognise identifiers of kinds this version does not know, rely on ``raw_id``: a kind that is
    ``unknown`` today may become a distinct kind in a later version.
    """

    UNKNOWN = "unknown"
    COMMUNICATION_USER = "communication_user"
    PHONE_NUMBER = "phone_number"
    MICROSOFT_TEAMS_USER = "microsoft_teams_user"
    MICROSOFT_TEAMS_APP = "microsoft_teams_app"
    TEAMS_EXTENSION_USER = "teams_extension_user"


class CommunicationCloudEnvironment(str, enum.Enum):
    """The cloud an identifier belongs to.

    Lookup by value is case-insensitive (``CommunicationCloudEnvironment("dod")`` is ``DOD``), because the
    wire model writes clouds in lower case while the ``_shared`` values are upper case. Any other value
    raises :class:`ValueError`; nothing falls back to ``PUBLIC`` silently.
    """

    PUBLIC = "PUBLIC"
    DOD = "DOD"
    GCCH = "GCCH"

    @classmethod
    def _missing_(cls, value: object) -> CommunicationCloudEnvironment | None:
        # ASCII only: str.upper() maps some non-ASCII letters (e.g. the dotless i) onto ASCII ones, and
        # "publıc" must not be taken for PUBLIC.
        if isinstance(value, str) and value.isascii():
            return cls.__members__.get(value.upper())
        return None


@runtime_checkable
class CommunicationIdentifier(Protocol):
    """What every communication identifier offers: its kind, its raw id and its properties."""

    @property
    def kind(self) -> CommunicationIdentifierKind:
        """The kind of identifier."""
        ...

    @property
    def raw_id(self) -> str:
        """The raw id: the one string that names this identifier in the service."""
        ...

    @property
    def properties(self) -> Mapping[str, Any]:
        """The identifier's fields as a dictionary (the ``_shared`` keys)."""
        ...


_PUBLIC: Final = CommunicationCloudEnvironment.PUBLIC
_DOD: Final = CommunicationCloudEnvironment.DOD
_GCCH: Final = CommunicationCloudEnvironment.GCCH

_PHONE_PREFIX: Final = "4:"
_PHONE_ANONYMOUS: Final = "anonymous"
_TEAMS_VISITOR_PREFIX: Final = "8:teamsvisitor:"
_SPOOL_PREFIX: Final = "8:spool:"
_TEAMS_USER_PREFIXES: Final = {_PUBLIC: "8:orgid:", _DOD: "8:dod:", _GCCH: "8:gcch:"}
_TEAMS_APP_PREFIXES: Final = {_PUBLIC: "28:orgid:", _DOD: "28:dod:", _GCCH: "28:gcch:"}
_ACS_PREFIXES: Final = {_PUBLIC: "8:acs:", _DOD: "8:dod-acs:", _GCCH: "8:gcch-acs:"}


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    return value


def _check_optional_str(name: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {type(value).__name__}")
    return value


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _check_cloud(value: object) -> CommunicationCloudEnvironment:
    # None is PUBLIC, as in the _shared classes (``cloud or PUBLIC``), so code that passes an optional
    # cloud through keeps working after switching imports.
    if value is None:
        return _PUBLIC
    if not isinstance(value, str):
        raise TypeError(
            "cloud must be a CommunicationCloudEnvironment or one of the strings "
            f"'PUBLIC', 'DOD', 'GCCH', got {type(value).__name__}"
        )
    try:
        return CommunicationCloudEnvironment(value)
    except ValueError:
        raise ValueError(f"cloud must be one of 'PUBLIC', 'DOD', 'GCCH' (any case), got {value!r}") from None


def _phone_details_from_raw_id(raw_id: str) -> tuple[bool, str | None]:
    """What a phone number's raw id says about it: (is_anonymous, asserted_id).

    JS 2.5.0 rule: anonymous iff the text after ``4:`` is exactly ``anonymous``; otherwise the asserted
    id is the text after the last ``_`` when that text is non-empty. A raw id without the ``4:`` prefix
    (only possible when given explicitly) says nothing: not anonymous, no asserted id.
    """
    if not raw_id.startswith(_PHONE_PREFIX):
        return False, None
    number = raw_id[2:]
    if number == _PHONE_ANONYMOUS:
        return True, None
    cut = number.rfind("_") + 1
    if 0 < cut < len(number):
        return False, number[cut:]
    return False, None


class _Identifier:
    """Base of the identifier classes: raw-id equality and hashing, immutability, pickling."""

    __slots__ = ("_raw_id",)

    kind: ClassVar[CommunicationIdentifierKind]
    _raw_id: str

    @property
    def raw_id(self) -> str:
        """The raw id: the one string that names this identifier in the service."""
        return self._raw_id

    @property
    def properties(self) -> dict[str, Any]:
        """The identifier's fields as a new dictionary (the ``_shared`` keys)."""
        return {}

    def _init_args(self) -> dict[str, Any]:
        """The public constructor's keyword arguments that rebuild this identifier (pickle, repr)."""
        raise NotImplementedError

    # Equality by raw id across classes: the raw id is the identity of a participant in the service,
    # so UnknownIdentifier("8:acs:x") == CommunicationUserIdentifier("8:acs:x"), and they hash alike.
    def __eq__(self, other: object) -> bool:
        if isinstance(other, _Identifier):
            return self._raw_id == other._raw_id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._raw_id)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle the public constructor arguments (plain str/bool values), not the slot layout, so
        # pickles survive internal changes and are validated again when loaded.
        kwargs = {
            name: value.value if isinstance(value, CommunicationCloudEnvironment) else value
            for name, value in self._init_args().items()
        }
        return (_rebuild, (type(self), kwargs))

    def __copy__(self) -> _Identifier:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> _Identifier:
        return self

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={_repr_value(value)}" for name, value in self._init_args().items())
        return f"{type(self).__name__}({fields})"


def _repr_value(value: object) -> str:
    if isinstance(value, CommunicationCloudEnvironment):
        return "CommunicationCloudEnvironment." + value.name
    return repr(value)


def _rebuild(cls: type[Any], kwargs: dict[str, Any]) -> Any:
    """Unpickle an identifier through its public (validating) constructor."""
    return cls(**kwargs)


class CommunicationUserIdentifier(_Identifier):
    """A user of an Azure Communication Services resource (``8:acs:...``, ``8:spool:...``).

    Args:
        id: The user id as returned by the Identity service; it is also the raw id.
        raw_id: Accepted for compatibility with the ``_shared`` class; it must equal ``id``.

    Raises:
        TypeError: ``id`` or ``raw_id`` is not a str.
        ValueError: ``raw_id`` differs from ``id``.
    """

    __slots__ = ()

    kind: ClassVar[Literal[CommunicationIdentifierKind.COMMUNICATION_USER]] = (
        CommunicationIdentifierKind.COMMUNICATION_USER
    )

    def __init__(self, id: str, *, raw_id: str | None = None) -> None:
        _check_str("id", id)
        if raw_id is not None and _check_str("raw_id", raw_id) != id:
            raise ValueError(f"a communication user's raw_id must equal its id; got id={id!r}, raw_id={raw_id!r}")
        self._raw_id = id

    @property
    def id(self) -> str:
        """The user id (equal to the raw id)."""
        return self._raw_id

    @property
    def properties(self) -> dict[str, Any]:
        """``{"id": ...}`` as a new dictionary."""
        return {"id": self._raw_id}

    def _init_args(self) -> dict[str, Any]:
        return {"id": self._raw_id}


class PhoneNumberIdentifier(_Identifier):
    """A phone number (raw id ``4:`` + the number, verbatim).

    Args:
        value: The phone number, normally in E.164 form (not validated: the service decides).
        raw_id: The raw id; defaults to ``"4:" + value``.
        is_anonymous: Whether this is an anonymous (hidden) caller; ``None`` means what the raw id says.
        asserted_id: The id that tells apart several connections over the same number; ``None`` means
            what the raw id says (the text after its last ``_``, if any).

    Raises:
        TypeError: An argument has the wrong type.
    """

    __slots__ = ("_asserted_id", "_is_anonymous", "_value")

    kind: ClassVar[Literal[CommunicationIdentifierKind.PHONE_NUMBER]] = CommunicationIdentifierKind.PHONE_NUMBER
    _value: str
    _is_anonymous: bool
    _asserted_id: str | None

    def __init__(
        self,
        value: str,
        *,
        raw_id: str | None = None,
        is_anonymous: bool | None = None,
        asserted_id: str | None = None,
    ) -> None:
        _check_str("value", value)
        raw_id = _PHONE_PREFIX + value if raw_id is None else _check_str("raw_id", raw_id)
        if is_anonymous is not None:
            _check_bool("is_anonymous", is_anonymous)
        _check_optional_str("asserted_id", asserted_id)
        if is_anonymous is None or asserted_id is None:
            said_anonymous, said_asserted_id = _phone_details_from_raw_id(raw_id)
            if is_anonymous is None:
                is_anonymous = said_anonymous
            if asserted_id is None:
                asserted_id = said_asserted_id
        self._raw_id = raw_id
        self._value = value
        self._is_anonymous = is_anonymous
        self._asserted_id = asserted_id

    @property
    def value(self) -> str:
        """The phone number."""
        return self._value

    @property
    def is_anonymous(self) -> bool:
        """Whether this is an anonymous (hidden) caller."""
        return self._is_anonymous

    @property
    def asserted_id(self) -> str | None:
        """The id that tells apart several connections over the same number, if any."""
        return self._asserted_id

    @property
    def properties(self) -> dict[str, Any]:
        """``value``, ``is_anonymous`` and, when not None, ``asserted_id``, as a new dictionary."""
        props: dict[str, Any] = {"value": self._value, "is_anonymous": self._is_anonymous}
        if self._asserted_id is not None:
            props["asserted_id"] = self._asserted_id
        return props

    def _init_args(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"value": self._value, "raw_id": self._raw_id, "is_anonymous": self._is_anonymous}
        if self._asserted_id is not None:
            kwargs["asserted_id"] = self._asserted_id
        return kwargs


class MicrosoftTeamsUserIdentifier(_Identifier):
    """A Microsoft Teams user (``8:orgid:``, ``8:dod:``, ``8:gcch:``) or anonymous visitor (``8:teamsvisitor:``).

    Args:
        user_id: The Entra object id of the user (for an anonymous user, the visitor id).
        is_anonymous: Whether the user joined anonymously (e.g. through a meeting link).
        cloud: The cloud of the user: a :class:`CommunicationCloudEnvironment` or its name in any case;
            ``None`` means ``PUBLIC`` (as in the ``_shared`` class). It does not enter the raw id of an
            anonymous user.
        raw_id: The raw id; built from the other fields when not given.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``cloud`` is not a known cloud.
    """

    __slots__ = ("_cloud", "_is_anonymous", "_user_id")

    kind: ClassVar[Literal[CommunicationIdentifierKind.MICROSOFT_TEAMS_USER]] = (
        CommunicationIdentifierKind.MICROSOFT_TEAMS_USER
    )
    _user_id: str
    _is_anonymous: bool
    _cloud: CommunicationCloudEnvironment

    def __init__(
        self,
        user_id: str,
        *,
        is_anonymous: bool = False,
        cloud: CommunicationCloudEnvironment | str | None = _PUBLIC,
        raw_id: str | None = None,
    ) -> None:
        _check_str("user_id", user_id)
        _check_bool("is_anonymous", is_anonymous)
        cloud = _check_cloud(cloud)
        if raw_id is None:
            prefix = _TEAMS_VISITOR_PREFIX if is_anonymous else _TEAMS_USER_PREFIXES[cloud]
            raw_id = prefix + user_id
        else:
            _check_str("raw_id", raw_id)
        self._raw_id = raw_id
        self._user_id = user_id
        self._is_anonymous = is_anonymous
        self._cloud = cloud

    @property
    def user_id(self) -> str:
        """The Entra object id of the user (for an anonymous user, the visitor id)."""
        return self._user_id

    @property
    def is_anonymous(self) -> bool:
        """Whether the user joined anonymously."""
        return self._is_anonymous

    @property
    def cloud(self) -> CommunicationCloudEnvironment:
        """The cloud of the user."""
        return self._cloud

    @property
    def properties(self) -> dict[str, Any]:
        """``user_id``, ``is_anonymous`` and ``cloud`` as a new dictionary."""
        return {"user_id": self._user_id, "is_anonymous": self._is_anonymous, "cloud": self._cloud}

    def _init_args(self) -> dict[str, Any]:
        return {
            "user_id": self._user_id,
            "is_anonymous": self._is_anonymous,
            "cloud": self._cloud,
            "raw_id": self._raw_id,
        }


class MicrosoftTeamsAppIdentifier(_Identifier):
    """A Microsoft Teams application, such as a bot (``28:orgid:``, ``28:dod:``, ``28:gcch:``).

    Args:
        app_id: The id of the Teams application.
        cloud: The cloud of the application: a :class:`CommunicationCloudEnvironment` or its name in any
            case; ``None`` means ``PUBLIC``.
        raw_id: The raw id; built from the other fields when not given.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``cloud`` is not a known cloud.
    """

    __slots__ = ("_app_id", "_cloud")

    kind: ClassVar[Literal[CommunicationIdentifierKind.MICROSOFT_TEAMS_APP]] = (
        CommunicationIdentifierKind.MICROSOFT_TEAMS_APP
    )
    _app_id: str
    _cloud: CommunicationCloudEnvironment

    def __init__(
        self,
        app_id: str,
        *,
        cloud: CommunicationCloudEnvironment | str | None = _PUBLIC,
        raw_id: str | None = None,
    ) -> None:
        _check_str("app_id", app_id)
        cloud = _check_cloud(cloud)
        if raw_id is None:
            raw_id = _TEAMS_APP_PREFIXES[cloud] + app_id
        else:
            _check_str("raw_id", raw_id)
        self._raw_id = raw_id
        self._app_id = app_id
        self._cloud = cloud

    @property
    def app_id(self) -> str:
        """The id of the Teams application."""
        return self._app_id

    @property
    def cloud(self) -> CommunicationCloudEnvironment:
        """The cloud of the application."""
        return self._cloud

    @property
    def properties(self) -> dict[str, Any]:
        """``app_id`` and ``cloud`` as a new dictionary."""
        return {"app_id": self._app_id, "cloud": self._cloud}

    def _init_args(self) -> dict[str, Any]:
        return {"app_id": self._app_id, "cloud": self._cloud, "raw_id": self._raw_id}


class TeamsExtensionUserIdentifier(_Identifier):
    """A Teams Phone user extended through a Communication Services resource.

    The raw id is ``8:acs:`` (``8:dod-acs:``, ``8:gcch-acs:`` by cloud) followed by
    ``{resource_id}_{tenant_id}_{user_id}``.

    Args:
        user_id: The Entra object id of the user.
        tenant_id: The Entra tenant id of the user.
        resource_id: The id of the Communication Services resource.
        cloud: The cloud of the user: a :class:`CommunicationCloudEnvironment` or its name in any case;
            ``None`` means ``PUBLIC``.
        raw_id: The raw id; built from the other fields when not given.

    Raises:
        TypeError: An argument has the wrong type.
        ValueError: ``cloud`` is not a known cloud.
    """

    __slots__ = ("_cloud", "_resource_id", "_tenant_id", "_user_id")

    kind: ClassVar[Literal[CommunicationIdentifierKind.TEAMS_EXTENSION_USER]] = (
        CommunicationIdentifierKind.TEAMS_EXTENSION_USER
    )
    _user_id: str
    _tenant_id: str
    _resource_id: str
    _cloud: CommunicationCloudEnvironment

    def __init__(
        self,
        *,
        user_id: str,
        tenant_id: str,
        resource_id: str,
        cloud: CommunicationCloudEnvironment | str | None = _PUBLIC,
        raw_id: str | None = None,
    ) -> None:
        _check_str("user_id", user_id)
        _check_str("tenant_id", tenant_id)
        _check_str("resource_id", resource_id)
        cloud = _check_cloud(cloud)
        if raw_id is None:
            raw_id = _ACS_PREFIXES[cloud] + resource_id + "_" + tenant_id + "_" + user_id
        else:
            _check_str("raw_id", raw_id)
        self._raw_id = raw_id
        self._user_id = user_id
        self._tenant_id = tenant_id
        self._resource_id = resource_id
        self._cloud = cloud

    @property
    def user_id(self) -> str:
        """The Entra object id of the user."""
        return self._user_id

    @property
    def tenant_id(self) -> str:
        """The Entra tenant id of the user."""
        return self._tenant_id

    @property
    def resource_id(self) -> str:
        """The id of the Communication Services resource."""
        return self._resource_id

    @property
    def cloud(self) -> CommunicationCloudEnvironment:
        """The cloud of the user."""
        return self._cloud

    @property
    def properties(self) -> dict[str, Any]:
        """``user_id``, ``tenant_id``, ``resource_id`` and ``cloud`` as a new dictionary."""
        return {
            "user_id": self._user_id,
            "tenant_id": self._tenant_id,
            "resource_id": self._resource_id,
            "cloud": self._cloud,
        }

    def _init_args(self) -> dict[str, Any]:
        return {
            "user_id": self._user_id,
            "tenant_id": self._tenant_id,
            "resource_id": self._resource_id,
            "cloud": self._cloud,
            "raw_id": self._raw_id,
        }


class UnknownIdentifier(_Identifier):
    """An identifier of a kind this version does not recognise; only its raw id is known.

    Like every identifier it compares and hashes by raw id, so ``UnknownIdentifier("8:acs:x")`` equals
    ``CommunicationUserIdentifier("8:acs:x")``: both name the same participant.

    Args:
        identifier: The raw id.

    Raises:
        TypeError: ``identifier`` is not a str.
    """

    __slots__ = ()

    kind: ClassVar[Literal[CommunicationIdentifierKind.UNKNOWN]] = CommunicationIdentifierKind.UNKNOWN

    def __init__(self, identifier: str) -> None:
        self._raw_id = _check_str("identifier", identifier)

    def _init_args(self) -> dict[str, Any]:
        return {"identifier": self._raw_id}


_new = object.__new__

# What the first two segments ("8:acs", the prefix without its last colon) of a three-segment raw id
# mean: (kind code, cloud). The codes select the branch in identifier_from_raw_id; one dict lookup
# replaces a chain of string comparisons.
_TEAMS_USER: Final = 1
_TEAMS_VISITOR: Final = 2
_TEAMS_APP: Final = 3
_ACS: Final = 4
_SPOOL: Final = 5
_HEAD_TABLE: Final[dict[str, tuple[int, CommunicationCloudEnvironment]]] = {
    _TEAMS_VISITOR_PREFIX[:-1]: (_TEAMS_VISITOR, _PUBLIC),
    _SPOOL_PREFIX[:-1]: (_SPOOL, _PUBLIC),
    **{prefix[:-1]: (_TEAMS_USER, cloud) for cloud, prefix in _TEAMS_USER_PREFIXES.items()},
    **{prefix[:-1]: (_TEAMS_APP, cloud) for cloud, prefix in _TEAMS_APP_PREFIXES.items()},
    **{prefix[:-1]: (_ACS, cloud) for cloud, prefix in _ACS_PREFIXES.items()},
}


def identifier_from_raw_id(raw_id: str) -> CommunicationIdentifier:
    """Build the identifier that a raw id names (the JS 2.5.0 ``createIdentifierFromRawId`` rules).

    Total over strings: a string that matches no known form gives an :class:`UnknownIdentifier`, and
    ``identifier_from_raw_id(x).raw_id == x`` for every string ``x``.

    Args:
        raw_id: The raw id, e.g. ``"8:acs:..."`` or ``"4:+14255550123"``.

    Returns:
        The identifier: a phone number for ``4:``; for exactly three ``:``-separated segments, a Teams
        user, Teams app, Teams extension user or communication user by prefix (case-sensitive);
        otherwise an :class:`UnknownIdentifier`.

    Raises:
        TypeError: ``raw_id`` is not a str.
    """
    if type(raw_id) is not str and not isinstance(raw_id, str):
        raise TypeError(f"raw_id must be a str, got {type(raw_id).__name__}")
    # Trusted construction: fields are stored straight into the slots of a bare instance. The parser
    # only produces well-typed fields, so the constructors' validation would be wasted work here.
    if raw_id.startswith(_PHONE_PREFIX):
        number = raw_id[2:]
        phone = _new(PhoneNumberIdentifier)
        phone._raw_id = raw_id
        phone._value = number
        if number == _PHONE_ANONYMOUS:
            phone._is_anonymous = True
            phone._asserted_id = None
        else:
            phone._is_anonymous = False
            cut = number.rfind("_") + 1
            phone._asserted_id = number[cut:] if 0 < cut < len(number) else None
        return phone
    # Every known head ("8:acs", "28:orgid", ...) holds exactly one colon, so a table hit on the text
    # before the last colon means the id has exactly three segments and ``tail`` is the third one.
    head, _, tail = raw_id.rpartition(":")
    entry = _HEAD_TABLE.get(head)
    if entry is not None:
        code, cloud = entry
        # Most common first: ACS users dominate chat and calling traffic.
        if code == _ACS:
            if tail.count("_") == 2:
                resource_id, tenant_id, user_id = tail.split("_")
                extension_user = _new(TeamsExtensionUserIdentifier)
                extension_user._raw_id = raw_id
                extension_user._resource_id = resource_id
                extension_user._tenant_id = tenant_id
                extension_user._user_id = user_id
                extension_user._cloud = cloud
                return extension_user
        elif code in (_TEAMS_USER, _TEAMS_VISITOR):
            user = _new(MicrosoftTeamsUserIdentifier)
            user._raw_id = raw_id
            user._user_id = tail
            user._is_anonymous = code == _TEAMS_VISITOR
            user._cloud = cloud
            return user
        elif code == _TEAMS_APP:
            app = _new(MicrosoftTeamsAppIdentifier)
            app._raw_id = raw_id
            app._app_id = tail
            app._cloud = cloud
            return app
        communication_user = _new(CommunicationUserIdentifier)
        communication_user._raw_id = raw_id
        return communication_user
    unknown = _new(UnknownIdentifier)
    unknown._raw_id = raw_id
    return unknown

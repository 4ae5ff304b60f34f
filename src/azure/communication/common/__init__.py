"""Authentication and communication identifiers for Azure Communication Services.

An independent implementation of ``@azure/communication-common`` for Python (not a Microsoft package).

Names are loaded on first use (a module ``__getattr__``, PEP 562): code that only works with identifiers
never imports azure-core, and neither do the CLI's offline commands. ``__all__``, ``dir()`` and type
checkers (through the ``TYPE_CHECKING`` imports below) see every name as if it were imported eagerly.
"""

from __future__ import annotations

from importlib import import_module as _import_module

from ._version import VERSION, __version__

# Not typing.TYPE_CHECKING: importing typing costs more than this whole module (type checkers treat any
# name TYPE_CHECKING as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._connection_string import (
        EndpointCredential,
        is_key_credential,
        parse_client_arguments,
        parse_connection_string,
    )
    from ._credential import (
        AzureCommunicationTokenCredential,
        CommunicationTokenCredential,
        TokenRefresher,
    )
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
        identifier_from_raw_id,
    )
    from ._policy import CommunicationAccessKeyCredentialPolicy, create_communication_auth_policy
    from ._wire import deserialize_identifier, serialize_identifier

__all__ = [  # noqa: RUF022 - plain sorted(), as tests/test_exports.py checks
    "AzureCommunicationTokenCredential",
    "CommunicationAccessKeyCredentialPolicy",
    "CommunicationCloudEnvironment",
    "CommunicationIdentifier",
    "CommunicationIdentifierKind",
    "CommunicationTokenCredential",
    "CommunicationUserIdentifier",
    "EndpointCredential",
    "MicrosoftTeamsAppIdentifier",
    "MicrosoftTeamsUserIdentifier",
    "PhoneNumberIdentifier",
    "TeamsExtensionUserIdentifier",
    "TokenRefresher",
    "UnknownIdentifier",
    "VERSION",
    "__version__",
    "create_communication_auth_policy",
    "deserialize_identifier",
    "identifier_from_raw_id",
    "is_key_credential",
    "parse_client_arguments",
    "parse_connection_string",
    "serialize_identifier",
]

# Where each lazily loaded name lives (tests/test_exports.py checks this table against __all__ and the
# TYPE_CHECKING block above).
_LAZY: dict[str, str] = {
    "AzureCommunicationTokenCredential": "._credential",
    "CommunicationAccessKeyCredentialPolicy": "._policy",
    "CommunicationCloudEnvironment": "._identifiers",
    "CommunicationIdentifier": "._identifiers",
    "CommunicationIdentifierKind": "._identifiers",
    "CommunicationTokenCredential": "._credential",
    "CommunicationUserIdentifier": "._identifiers",
    "EndpointCredential": "._connection_string",
    "MicrosoftTeamsAppIdentifier": "._identifiers",
    "MicrosoftTeamsUserIdentifier": "._identifiers",
    "PhoneNumberIdentifier": "._identifiers",
    "TeamsExtensionUserIdentifier": "._identifiers",
    "TokenRefresher": "._credential",
    "UnknownIdentifier": "._identifiers",
    "create_communication_auth_policy": "._policy",
    "deserialize_identifier": "._wire",
    "identifier_from_raw_id": "._identifiers",
    "is_key_credential": "._connection_string",
    "parse_client_arguments": "._connection_string",
    "parse_connection_string": "._connection_string",
    "serialize_identifier": "._wire",
}


def _lazy_attributes(namespace: dict[str, object], table: dict[str, str], public: list[str]) -> tuple[object, object]:
    """A package's PEP 562 ``__getattr__`` and ``__dir__``: ``table`` maps each lazy name to its module.

    Shared with :mod:`.aio`. A loaded name is cached in ``namespace``, so later lookups are plain attribute
    reads, without the function.
    """
    package = str(namespace["__name__"])

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(_import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__


# Hidden from type checkers, so that they report a misspelt name instead of typing it as Any.
if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy_attributes(globals(), _LAZY, __all__)


del TYPE_CHECKING

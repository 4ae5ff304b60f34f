"""Authentication and communication identifiers for Azure Communication Services.

An independent implementation of ``@azure/communication-common`` for Python (not a Microsoft package).
"""

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
from ._version import VERSION, __version__
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

"""The asyncio flavour of :mod:`azure.communication.common` (same names, awaitable methods)."""

from ._credential import (
    AsyncTokenRefresher,
    AzureCommunicationTokenCredential,
    CommunicationTokenCredential,
)
from ._policy import create_communication_auth_policy

__all__: list[str] = [
    "AsyncTokenRefresher",
    "AzureCommunicationTokenCredential",
    "CommunicationTokenCredential",
    "create_communication_auth_policy",
]

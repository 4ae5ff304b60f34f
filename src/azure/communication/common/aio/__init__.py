"""The asyncio flavour of :mod:`azure.communication.common` (same names, awaitable methods).

Names are loaded on first use, as in :mod:`azure.communication.common`.
"""

from __future__ import annotations

from .. import _lazy_attributes

# Not typing.TYPE_CHECKING: importing typing costs more than this whole module (type checkers treat any
# name TYPE_CHECKING as true).
TYPE_CHECKING = False
if TYPE_CHECKING:
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

_LAZY: dict[str, str] = {
    "AsyncTokenRefresher": "._credential",
    "AzureCommunicationTokenCredential": "._credential",
    "CommunicationTokenCredential": "._credential",
    "create_communication_auth_policy": "._policy",
}


# Hidden from type checkers, so that they report a misspelt name instead of typing it as Any.
if not TYPE_CHECKING:
    __getattr__, __dir__ = _lazy_attributes(globals(), _LAZY, __all__)


del TYPE_CHECKING

"""The asyncio flavour of :mod:`azure.communication.common` (same names, awaitable methods).

Names are loaded on first use, as in :mod:`azure.communication.common`.
"""

import typing as _typing
from importlib import import_module as _import_module

if _typing.TYPE_CHECKING:
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


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

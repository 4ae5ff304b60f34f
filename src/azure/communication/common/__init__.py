"""Authentication and communication identifiers for Azure Communication Services.

An independent implementation of ``@azure/communication-common`` for Python (not a Microsoft package).
"""

from ._version import VERSION, __version__

__all__ = [
    "VERSION",
    "__version__",
]

"""Timestamps in the service's format: ``2023-10-10T12:46:29.5390605+00:00`` (7 fraction digits, ``+00:00``).

The emulator's own small formatter (the library's parser is what clients use to read them back).
"""

from __future__ import annotations

import time

__all__ = ["format_service_time"]

# Concurrent token requests in one second share their expiry: one cached (timestamp, text) pair.
_last: tuple[float, str] = (-1.0, "")


def format_service_time(timestamp: float) -> str:
    """Format a POSIX time as the service writes ``expiresOn`` and ``lastTokenIssuedAt``.

    Args:
        timestamp: seconds since the epoch (UTC); the fraction is kept to 100 ns, as .NET's ticks are.
    """
    global _last
    cached = _last
    if cached[0] == timestamp:
        return cached[1]
    ticks = round(timestamp * 10_000_000)
    seconds, fraction = divmod(ticks, 10_000_000)
    text = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{fraction:07d}+00:00"
    _last = (timestamp, text)
    return text

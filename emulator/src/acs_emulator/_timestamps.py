"""Timestamps in the service's format: ``2023-10-10T12:46:29.5390605+00:00`` (7 fraction digits, ``+00:00``).

The emulator's own small formatter (the library's parser is what clients use to read them back).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import Final

__all__ = ["format_chat_time", "format_service_time", "parse_rfc3339"]

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


# RFC 3339 as clients send it in queries (``startTime``): any number of fraction digits, ``Z`` or an offset.
# Python 3.10's ``datetime.fromisoformat`` accepts neither ``Z`` nor 7 digits, so the fields are read here.
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


def format_chat_time(timestamp: float) -> str:
    """Format a POSIX time as Chat responses carry it: ``2024-03-07T10:00:00.1234567Z``."""
    ticks = round(timestamp * 10_000_000)
    seconds, fraction = divmod(ticks, 10_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds))}.{fraction:07d}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp.

    Raises:
        ValueError: ``text`` is not one (the message does not quote it).
    """
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError("not an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(match[n]) for n in range(1, 7))
    try:
        moment = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=timezone.utc)
    except ValueError:
        raise ValueError("not an RFC 3339 timestamp") from None
    offset = 0
    if match[8] is None:
        offset = (int(match[10]) * 60 + int(match[11])) * 60
        if match[9] == "-":
            offset = -offset
    fraction = float(f"0.{match[7]}") if match[7] else 0.0
    return moment.timestamp() - offset + fraction

"""ACS timestamps: parsing the service's RFC 3339 strings and writing them back.

The service writes .NET round-trip timestamps such as ``2026-11-27T10:00:00.1234567Z`` (seven fractional
digits). Python 3.10's ``datetime.fromisoformat`` rejects anything but 0, 3 or 6 digits, so this module has
its own small parser that behaves the same on every supported Python version.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone

__all__ = ["format_timestamp", "parse_timestamp", "parse_timestamp_seconds"]

# [0-9] rather than \d: \d also matches non-ASCII digits such as "٣", which no timestamp contains.
_TIMESTAMP = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<offset_hour>[0-9]{2}):(?P<offset_minute>[0-9]{2}))"
)

# 10**n per number of fractional digits, as ints so the division is the only rounding step.
_FRACTION_SCALE: tuple[int, ...] = tuple(10**n for n in range(10))

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_ORDINAL = _EPOCH.date().toordinal()

# Longest input quoted back in an error message; the rest is elided so a huge string cannot flood a log.
_MAX_QUOTED = 64


def _quote(text: str) -> str:
    if len(text) <= _MAX_QUOTED:
        return repr(text)
    return repr(text[:_MAX_QUOTED]) + "..."


def _parse(text: str) -> tuple[int, str | None]:
    """Whole seconds since the epoch (exact) and the fractional digits, if any."""
    if not isinstance(text, str):
        raise TypeError(f"An ACS timestamp must be a str, not {type(text).__name__}.")
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        raise ValueError(
            f"Expected an RFC 3339 timestamp such as '2026-11-27T10:00:00.1234567Z' "
            f"(0 to 9 fractional digits, 'Z' or a '+HH:MM' offset), got {_quote(text)}."
        )
    fields = match.groupdict()
    try:
        day = date(int(fields["year"]), int(fields["month"]), int(fields["day"]))
    except ValueError as exc:
        raise ValueError(f"The timestamp {_quote(text)} names a day that does not exist.") from exc
    hour, minute, second = int(fields["hour"]), int(fields["minute"]), int(fields["second"])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"The timestamp {_quote(text)} names a time of day that does not exist.")
    offset = 0
    if fields["utc"] is None:
        offset_hour, offset_minute = int(fields["offset_hour"]), int(fields["offset_minute"])
        if offset_hour > 23 or offset_minute > 59:
            raise ValueError(f"The timestamp {_quote(text)} has an offset that does not exist.")
        offset = offset_hour * 3600 + offset_minute * 60
        if fields["sign"] == "-":
            offset = -offset
    # Integers only: the whole seconds are exact, whatever the year.
    whole = (day.toordinal() - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second - offset
    return whole, fields["fraction"]


def parse_timestamp(text: str) -> float:
    """Parse an RFC 3339 timestamp as the service writes it into seconds since the Unix epoch.

    Accepted: ``YYYY-MM-DDTHH:MM:SS``, an optional fraction of 1 to 9 digits, then ``Z`` or a ``+HH:MM`` /
    ``-HH:MM`` offset (``T`` and ``Z`` may be lower case, as RFC 3339 allows). Nothing else: no missing offset,
    no space separator, no leap second, no surrounding whitespace.

    Args:
        text: The timestamp, e.g. ``"2026-11-27T10:00:00.1234567Z"`` or ``"2026-11-27T02:30:00-07:30"``.

    Returns:
        Seconds since 1970-01-01T00:00:00Z (negative before it).

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``text`` is not such a timestamp, or names a day or time that does not exist.
    """
    whole, fraction = _parse(text)
    if fraction is None:
        return float(whole)
    # Exact integers until this one division and addition, so the result is as close as a float gets.
    return whole + int(fraction) / _FRACTION_SCALE[len(fraction)]


def parse_timestamp_seconds(text: str) -> int:
    """Parse a timestamp like :func:`parse_timestamp`, rounded down to whole seconds, exactly.

    ``int(parse_timestamp(s))`` can be one second late: near today's epoch a float cannot hold
    ``.9999999`` and rounds it up to the next second. This computes on integers only.

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``text`` is not a timestamp :func:`parse_timestamp` accepts.
    """
    return _parse(text)[0]


def format_timestamp(timestamp: float) -> str:
    """Write seconds since the Unix epoch in the service's form, e.g. ``2026-11-27T10:00:00.1234560Z``.

    Always UTC (``Z``) with seven fractional digits, as the service writes them. The value is rounded to
    the microsecond, so the seventh digit is always ``0``: a float near today's epoch only resolves about
    0.24 microseconds, so a seventh digit computed from it would be noise, and rounding to the microsecond
    makes ``format_timestamp(parse_timestamp(s)) == s`` hold for every ``s`` this function can write
    within about 2**33 seconds of the epoch (the years 1698 to 2242), and for those on whole seconds
    in all the years 1 to 9999 (farther out, a float cannot hold every microsecond).

    Args:
        timestamp: Seconds since 1970-01-01T00:00:00Z, an ``int`` or a finite ``float``.

    Returns:
        The timestamp text.

    Raises:
        TypeError: ``timestamp`` is not an ``int`` or ``float`` (``bool`` included).
        ValueError: ``timestamp`` is not finite or lies outside the years 1 to 9999.
    """
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)):
        raise TypeError(f"A timestamp must be seconds since the epoch as int or float, not {type(timestamp).__name__}.")
    if isinstance(timestamp, float) and not math.isfinite(timestamp):
        raise ValueError(f"A timestamp must be finite, got {timestamp!r}.")
    whole = math.floor(timestamp)
    # timestamp - floor(timestamp) is exact in binary floating point, so the rounding happens only here.
    micro = round((timestamp - whole) * 1_000_000)
    if micro == 1_000_000:
        whole, micro = whole + 1, 0
    try:
        moment = _EPOCH + timedelta(seconds=whole)
    except OverflowError as exc:
        raise ValueError(f"The timestamp {timestamp!r} lies outside the years 1 to 9999.") from exc
    # Built by hand: strftime's %Y does not zero-pad years before 1000 on every platform.
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.{micro:06d}0Z"
    )

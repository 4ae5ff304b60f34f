"""ACS timestamps: parse_timestamp / parse_timestamp_seconds / format_timestamp, with property tests."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from azure.communication.common._timestamps import (
    format_timestamp,
    parse_timestamp,
    parse_timestamp_seconds,
)

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _seconds(moment: datetime) -> int:
    """Whole seconds since the epoch of an aware datetime, in integer arithmetic."""
    delta = moment - EPOCH
    return delta.days * 86400 + delta.seconds


def _expected(moment: datetime, fraction: str = "") -> float:
    """What parse_timestamp should return: whole seconds plus the fraction, computed independently."""
    whole = _seconds(moment)
    return whole + int(fraction) / 10 ** len(fraction) if fraction else float(whole)


# ---------------------------------------------------------------------------------------------------------
# parse_timestamp: examples
# ---------------------------------------------------------------------------------------------------------

NOV27 = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "moment", "fraction"),
    [
        ("2026-11-27T10:00:00.1234567Z", NOV27, "1234567"),
        ("2026-11-27T10:00:00Z", NOV27, ""),
        ("2026-11-27T10:00:00+00:00", NOV27, ""),
        ("2026-11-27T10:00:00-00:00", NOV27, ""),
        ("2026-11-27T02:30:00-07:30", NOV27, ""),
        ("2026-11-27T15:45:00.5+05:45", NOV27, "5"),
        ("2026-11-28T09:59:00+23:59", NOV27, ""),
        ("2026-11-27t10:00:00z", NOV27, ""),
        ("1970-01-01T00:00:00Z", EPOCH, ""),
        ("1969-12-31T23:59:59.75Z", EPOCH - timedelta(seconds=1), "75"),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC), ""),
        ("9999-12-31T23:59:59.999999999Z", datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "999999999"),
        ("2024-02-29T12:00:00Z", datetime(2024, 2, 29, 12, tzinfo=UTC), ""),
    ],
)
def test_parse_examples(text: str, moment: datetime, fraction: str) -> None:
    assert parse_timestamp(text) == _expected(moment, fraction)
    assert parse_timestamp_seconds(text) == _seconds(moment)


@pytest.mark.parametrize("digits", range(1, 10))
def test_parse_takes_one_to_nine_fractional_digits(digits: int) -> None:
    fraction = "123456789"[:digits]
    text = f"2026-11-27T10:00:00.{fraction}Z"

    assert parse_timestamp(text) == _expected(NOV27, fraction)
    assert parse_timestamp(text) - parse_timestamp("2026-11-27T10:00:00Z") == pytest.approx(
        int(fraction) / 10**digits, abs=1e-6
    )


def test_parse_seconds_rounds_down_exactly_where_a_float_cannot() -> None:
    text = "2031-05-06T07:08:09.9999999Z"
    whole = _seconds(datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC))

    # The float rounds up to the next second: this is why parse_timestamp_seconds exists.
    assert math.floor(parse_timestamp(text)) == whole + 1
    assert parse_timestamp_seconds(text) == whole


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2026-11-27",
        "2026-11-27T10:00:00",
        "2026-11-27T10:00Z",
        "2026-11-27 10:00:00Z",
        " 2026-11-27T10:00:00Z",
        "2026-11-27T10:00:00Z ",
        "2026-11-27T10:00:00Z\n",
        "2026-11-27T10:00:00.Z",
        "2026-11-27T10:00:00.1234567890Z",
        "2026-11-27T10:00:00,5Z",
        "2026-11-27T10:00:00+0500",
        "2026-11-27T10:00:00+05",
        "2026-11-27T10:00:00+05:00:00",
        "2026-11-27T10:00:00UTC",
        "26-11-27T10:00:00Z",
        "+2026-11-27T10:00:00Z",
        "20261127T100000Z",
        "٢٠٢٦-11-27T10:00:00Z",
        "2026-11-27T10:00:00.１Z",
    ],
)
def test_parse_rejects_other_shapes(text: str) -> None:
    with pytest.raises(ValueError, match="Expected an RFC 3339 timestamp"):
        parse_timestamp(text)
    with pytest.raises(ValueError, match="Expected an RFC 3339 timestamp"):
        parse_timestamp_seconds(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-13-01T00:00:00Z", "day that does not exist"),
        ("2026-00-10T00:00:00Z", "day that does not exist"),
        ("2026-02-29T00:00:00Z", "day that does not exist"),
        ("2026-04-31T00:00:00Z", "day that does not exist"),
        ("0000-01-01T00:00:00Z", "day that does not exist"),
        ("2026-11-27T24:00:00Z", "time of day"),
        ("2026-11-27T10:60:00Z", "time of day"),
        ("2026-12-31T23:59:60Z", "time of day"),
        ("2026-11-27T10:00:00+24:00", "offset"),
        ("2026-11-27T10:00:00-05:60", "offset"),
    ],
)
def test_parse_rejects_days_and_times_that_do_not_exist(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        parse_timestamp(text)
    assert repr(text) in str(raised.value)


def test_parse_error_quotes_a_long_input_only_in_part() -> None:
    text = "2026-11-27T10:00:00Z" + "x" * 10_000

    with pytest.raises(ValueError, match="Expected an RFC 3339 timestamp") as raised:
        parse_timestamp(text)

    assert len(str(raised.value)) < 300
    assert str(raised.value).endswith("....")


@pytest.mark.parametrize("value", [None, b"2026-11-27T10:00:00Z", 1795773600, NOV27])
def test_parse_of_a_non_string_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="must be a str"):
        parse_timestamp(value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be a str"):
        parse_timestamp_seconds(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# format_timestamp: examples
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        (0, "1970-01-01T00:00:00.0000000Z"),
        (0.0, "1970-01-01T00:00:00.0000000Z"),
        (-0.5, "1969-12-31T23:59:59.5000000Z"),
        (0.9999996, "1970-01-01T00:00:01.0000000Z"),
        (0.0000004, "1970-01-01T00:00:00.0000000Z"),
        (0.0000006, "1970-01-01T00:00:00.0000010Z"),
        (_seconds(NOV27) + 0.123456, "2026-11-27T10:00:00.1234560Z"),
        (_seconds(datetime(1, 1, 1, tzinfo=UTC)), "0001-01-01T00:00:00.0000000Z"),
        (_seconds(datetime(999, 3, 4, 5, 6, 7, tzinfo=UTC)), "0999-03-04T05:06:07.0000000Z"),
        (_seconds(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)) + 0.5, "9999-12-31T23:59:59.5000000Z"),
    ],
)
def test_format_examples(timestamp: float, text: str) -> None:
    assert format_timestamp(timestamp) == text


@pytest.mark.parametrize(
    "timestamp",
    [
        math.nan,
        math.inf,
        -math.inf,
        float(_seconds(datetime(1, 1, 1, tzinfo=UTC)) - 1),
        float(_seconds(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)) + 1),
        10**30,
        -(10**30),
        1e300,
    ],
)
def test_format_rejects_values_outside_the_calendar(timestamp: float) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        format_timestamp(timestamp)


@pytest.mark.parametrize("value", [True, "0", None, NOV27])
def test_format_of_a_non_number_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="int or float"):
        format_timestamp(value)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------------------

# Minute offsets from -23:59 to +23:59 (what the grammar allows), as fixed-offset zones.
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
# Instants far enough from years 1 and 9999 that no offset moves the local date out of the calendar.
moments = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=offsets)
near_moments = st.datetimes(min_value=datetime(1700, 1, 1), max_value=datetime(2240, 1, 1), timezones=st.just(UTC))


@given(moments)
def test_parse_agrees_with_the_standard_library(moment: datetime) -> None:
    # isoformat writes "+HH:MM" (or "+00:00") and 0 or 6 fractional digits: a subset of the grammar.
    text = moment.isoformat()
    fraction = f"{moment.microsecond:06d}" if moment.microsecond else ""

    assert parse_timestamp(text) == _expected(moment.replace(microsecond=0), fraction)
    assert parse_timestamp_seconds(text) == _seconds(moment.replace(microsecond=0))


@given(moments, st.text(alphabet="0123456789", min_size=1, max_size=9))
def test_parse_of_any_fraction_and_offset(moment: datetime, fraction: str) -> None:
    base = moment.replace(microsecond=0)
    offset = base.utcoffset()
    assert offset is not None
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    text = (
        f"{base.year:04d}-{base.month:02d}-{base.day:02d}T{base.hour:02d}:{base.minute:02d}:{base.second:02d}"
        f".{fraction}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    )

    assert parse_timestamp(text) == _expected(base, fraction)
    assert parse_timestamp_seconds(text) == _seconds(base)


@given(st.floats(min_value=-6.2e10, max_value=2.5e11, allow_nan=False))
def test_format_then_parse_is_within_half_a_microsecond(timestamp: float) -> None:
    text = format_timestamp(timestamp)

    assert len(text) == len("2026-11-27T10:00:00.1234567Z")
    assert text.endswith("0Z")
    assert abs(parse_timestamp(text) - timestamp) <= 5e-7 + math.ulp(timestamp)


@given(near_moments)
def test_microsecond_text_round_trips_near_the_epoch(moment: datetime) -> None:
    text = f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond:06d}0Z"

    assert format_timestamp(parse_timestamp(text)) == text


@given(moments.map(lambda m: m.astimezone(UTC)))
def test_whole_second_text_round_trips_in_every_year(moment: datetime) -> None:
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}.0000000Z"
    )

    assert format_timestamp(parse_timestamp(text)) == text


timestamp_like = st.from_regex(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{0,10})?([Zz]|[+-][0-9]{2}:?[0-9]{2})?",
    fullmatch=True,
)


@given(st.one_of(st.text(), timestamp_like))
def test_parse_returns_a_float_or_raises_value_error(text: str) -> None:
    try:
        value = parse_timestamp(text)
    except ValueError:
        with pytest.raises(ValueError):
            parse_timestamp_seconds(text)
        return
    assert isinstance(value, float)
    # Exact floor, so at most the float's own rounding (up to the next second) separates them.
    assert parse_timestamp_seconds(text) <= value <= parse_timestamp_seconds(text) + 1

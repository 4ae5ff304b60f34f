"""The emulator's own timestamp reader and writers, checked against the library's parser and by hand."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acs_emulator._timestamps import format_chat_time, format_service_time, parse_rfc3339
from azure.communication.common._timestamps import parse_timestamp

BASE = calendar.timegm((2024, 3, 7, 10, 0, 0))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-07T10:00:00Z", BASE),
        ("2024-03-07t10:00:00z", BASE),
        ("2024-03-07T10:00:00.1234567Z", BASE + 0.1234567),
        ("2024-03-07T12:00:00+02:00", BASE),
        ("2024-03-07T08:30:00.5-01:30", BASE + 0.5),
        (" 2024-03-07 10:00:00Z ", BASE),
    ],
)
def test_rfc3339_forms_clients_send(text: str, expected: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize(
    "text",
    ["", "2024-03-07", "2024-03-07T10:00:00", "2024-13-07T10:00:00Z", "2024-02-30T10:00:00Z", "yesterday"],
)
def test_anything_else_is_a_value_error_that_does_not_quote_it(text: str) -> None:
    with pytest.raises(ValueError, match="not an RFC 3339 timestamp") as raised:
        parse_rfc3339(text)
    assert text.strip() not in str(raised.value) or not text.strip()


@given(st.integers(min_value=0, max_value=4_102_444_800), st.integers(min_value=0, max_value=9_999_999))
def test_both_writers_round_trip_through_the_library_parser(seconds: int, ticks: int) -> None:
    moment = seconds + ticks / 10_000_000
    chat, service = format_chat_time(moment), format_service_time(moment)
    assert chat.endswith("Z")
    assert service.endswith("+00:00")
    assert parse_timestamp(chat) == pytest.approx(moment, abs=1e-6)
    assert parse_rfc3339(service) == pytest.approx(moment, abs=1e-6)

"""Device timestamps: RFC 3339 with an offset, or epoch seconds/milliseconds, read exactly."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.timestamps import NS_PER_S, TimestampError, format_rfc3339, parse_timestamp_ns

NEW_YEAR_2024_S = 1_704_067_200  # 2024-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("2024-01-01T00:00:00Z", NEW_YEAR_2024_S * NS_PER_S),
        ("2024-01-01T00:00:00+00:00", NEW_YEAR_2024_S * NS_PER_S),
        ("2024-01-01T07:00:00+07:00", NEW_YEAR_2024_S * NS_PER_S),  # WIB
        ("2024-01-01T08:00:00+08:00", NEW_YEAR_2024_S * NS_PER_S),  # WITA
        ("2023-12-31T19:00:00-05:00", NEW_YEAR_2024_S * NS_PER_S),
        ("2024-03-15T08:30:00.123456+07:00", 1_710_466_200_123_456_000),
        ("2024-03-15T01:30:00.5Z", 1_710_466_200_500_000_000),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T07:00:00.000001+07:00", 1_000),
        ("2024-01-01t00:00:00z", NEW_YEAR_2024_S * NS_PER_S),  # RFC 3339 allows lower case
        ("2024-01-01 07:00:00+07:00", NEW_YEAR_2024_S * NS_PER_S),  # ... and a space for "T"
    ],
)
def test_rfc3339_with_z_or_offset(text: str, expected_ns: int) -> None:
    assert parse_timestamp_ns(text) == expected_ns


def test_rfc3339_microseconds_are_exact_where_float_seconds_would_round() -> None:
    ns = parse_timestamp_ns("2024-01-01T00:00:00.000001Z")
    assert ns == 1_704_067_200_000_001_000
    assert round(1_704_067_200.000001 * NS_PER_S) != ns  # what float arithmetic would give
    assert parse_timestamp_ns("2024-01-01T06:59:59.999999+07:00") == 1_704_067_199_999_999_000


@given(
    st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 12, 31),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-9, minutes=-30))]
        ),
    )
)
def test_rfc3339_equals_exact_integer_arithmetic(moment: datetime) -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    expected = (moment - epoch) // timedelta(microseconds=1) * 1000
    assert parse_timestamp_ns(moment.isoformat()) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-01-01T00:00:00", "no UTC offset"),
        ("2024-01-01T07:00:00.123456", "no UTC offset"),
        ("2024-01-01", "no UTC offset"),
        ("yesterday", "is not RFC 3339"),
        ("", "is not RFC 3339"),
        ("2024-13-01T00:00:00Z", "is not RFC 3339"),
        ("2024-02-30T00:00:00Z", "is not RFC 3339"),
        ("2024-01-01T25:00:00Z", "is not RFC 3339"),
        ("2024-01-01T00:00:00+25:00", "is not RFC 3339"),
        ("1704067200", "is not RFC 3339"),  # epoch numbers must be JSON numbers
        ("2024-01-01T00:00:00.000000000000000000000Z", "too long"),
    ],
)
def test_bad_rfc3339_strings_are_refused(text: str, message: str) -> None:
    with pytest.raises(TimestampError, match=message):
        parse_timestamp_ns(text)


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+07:00", "9999-12-31T23:59:59-07:00"])
def test_rfc3339_at_the_edge_of_datetime_raises_only_timestamp_error(text: str) -> None:
    with contextlib.suppress(TimestampError):
        parse_timestamp_ns(text)


@pytest.mark.parametrize(
    ("value", "expected_ns"),
    [
        (0, 0),
        (1, NS_PER_S),
        (1_700_000_000, 1_700_000_000 * NS_PER_S),
        (1_700_000_000.5, 1_700_000_000_500_000_000),
        (9_200_000_000, 9_200_000_000 * NS_PER_S),  # year 2261: still storable seconds
        (100_000_000_000, 100_000_000_000 * 1_000_000),  # 1e11 exactly: milliseconds
        (1e11, 100_000_000_000 * 1_000_000),
        (1_700_000_000_123, 1_700_000_000_123_000_000),
        (9_200_000_000_000, 9_200_000_000_000 * 1_000_000),  # year 2261 in milliseconds
    ],
)
def test_epoch_seconds_below_1e11_milliseconds_from_it(value: float, expected_ns: int) -> None:
    result = parse_timestamp_ns(value)
    assert result == expected_ns
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        99_999_999_999,
        9_300_000_000,
        99_999_999_999_999,
        "2263-01-01T00:00:00Z",
        "1600-01-01T00:00:00Z",
    ],
)
def test_instants_influxdb_cannot_store_are_refused(value: object) -> None:
    # Seconds just below 1e11 (year 5138) still read as seconds, but InfluxDB stores int64 ns.
    with pytest.raises(TimestampError, match="cannot be stored"):
        parse_timestamp_ns(value)


@pytest.mark.parametrize(
    "value",
    [
        100_000_000_000_000,  # 1e14: neither seconds nor milliseconds
        1e14,
        1_700_000_000_000_000,  # microseconds
        1_700_000_000_000_000_000,  # nanoseconds
        2**64 - 1,  # the largest integer orjson returns as an int
    ],
)
def test_epoch_too_large_for_milliseconds_is_refused(value: float) -> None:
    with pytest.raises(TimestampError, match=r"too large .*µs/ns are not accepted"):
        parse_timestamp_ns(value)


def test_epoch_integer_beyond_float_range_is_refused_as_timestamp_error() -> None:
    with pytest.raises(TimestampError):
        parse_timestamp_ns(10**400)


@pytest.mark.parametrize(
    ("value", "expected_ns"),
    [
        (1_700_000_000.25, 1_700_000_000_250_000_000),
        (1_700_000_000.123456, 1_700_000_000_123_456_000),
        (1_700_000_000_123.0, 1_700_000_000_123_000_000),
        (1_700_000_000_123.456, 1_700_000_000_123_456_000),
    ],
)
def test_float_epochs_are_exact_to_the_spacing_of_a_double(value: float, expected_ns: int) -> None:
    # value * 1e9 (or * 1e6) is a double near 1.7e18, where doubles are 256 ns apart: float
    # epochs are read to within half of that, integers exactly.
    result = parse_timestamp_ns(value)
    assert type(result) is int
    assert abs(result - expected_ns) <= 128


@pytest.mark.parametrize(
    "value", [-1, -0.001, -1_700_000_000, float("nan"), float("inf"), float("-inf")]
)
def test_epoch_negative_or_non_finite_is_refused(value: float) -> None:
    with pytest.raises(TimestampError, match="not a non-negative finite epoch number"):
        parse_timestamp_ns(value)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (True, "a boolean"),
        (False, "a boolean"),
        (None, "NoneType"),
        ([1_700_000_000], "list"),
        ({"s": 1}, "dict"),
        (b"2024-01-01T00:00:00Z", "bytes"),
    ],
)
def test_other_types_are_refused_by_name(value: object, type_name: str) -> None:
    with pytest.raises(TimestampError, match=f"got {type_name}"):
        parse_timestamp_ns(value)


@pytest.mark.parametrize(
    ("ts_ns", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (NEW_YEAR_2024_S * NS_PER_S, "2024-01-01T00:00:00.000Z"),
        (1_710_466_200_123_456_789, "2024-03-15T01:30:00.123Z"),
        (1_710_466_200_999_999_999, "2024-03-15T01:30:00.999Z"),  # truncated, never rounded up
        (-1, "1969-12-31T23:59:59.999Z"),
    ],
)
def test_format_rfc3339_is_utc_with_milliseconds(ts_ns: int, text: str) -> None:
    assert format_rfc3339(ts_ns) == text


@given(st.integers(min_value=0, max_value=2**62))
def test_format_then_parse_keeps_the_millisecond(ts_ns: int) -> None:
    assert parse_timestamp_ns(format_rfc3339(ts_ns)) == ts_ns // 1_000_000 * 1_000_000

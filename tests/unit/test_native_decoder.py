"""The native JSON decoder: every reason it gives, and no input that makes it raise."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import MetricSpec, Station
from devices.formats import DECODERS, DecodeContext, decode_native
from devices.formats.native import RESERVED_KEYS
from devices.readings import Decoded, Reading, Reason, Rejection
from devices.topics import Route
from tests.helpers import json_scalars, json_values, only_rejection

STATION = "tb-menggala"
TS_S = 1_700_000_000
TS_NS = TS_S * 1_000_000_000


def decode(payload: bytes | str, max_readings: int = 10) -> Decoded:
    raw = payload.encode() if isinstance(payload, str) else payload
    return decode_native(raw, STATION, max_readings)


def test_native_is_registered_by_name_and_reads_the_context() -> None:
    station = Station(
        id=STATION, name="Menggala", regency="Tulang Bawang", latitude=-4.47, longitude=105.24,
        metrics={"level": MetricSpec(unit="cm", min=0, max=10)},
    )  # fmt: skip
    context = DecodeContext(station, None, None, Route("native", STATION), max_readings=1)
    payload = b'[{"ts": 1700000000, "level": 1}, {"ts": 1700000001, "level": 2}]'
    assert DECODERS["native"](payload, context) == decode_native(payload, STATION, 1)
    assert DECODERS["native"](payload[1:31], context).readings == [
        Reading(STATION, TS_NS, {"level": 1.0})
    ]


def test_object_payload_becomes_one_reading_with_float_values() -> None:
    decoded = decode(
        '{"ts": 1700000000, "seq": 17, "station": "tb-menggala", '
        '"water_level_cm": 182.4, "battery_v": 12, "rssi_dbm": -71}'
    )
    assert decoded.rejections == []
    assert decoded.readings == [
        Reading(STATION, TS_NS, {"water_level_cm": 182.4, "battery_v": 12.0, "rssi_dbm": -71.0}, 17)
    ]
    assert all(type(v) is float for v in decoded.readings[0].values.values())


def test_rfc3339_and_millisecond_timestamps() -> None:
    decoded = decode(
        '[{"ts": "2023-11-15T05:13:20+07:00", "level": 1}, {"ts": 1700000000250, "level": 2}]'
    )
    assert decoded.rejections == []
    assert decoded.readings == [
        Reading(STATION, TS_NS, {"level": 1.0}),  # 2023-11-14T22:13:20Z
        Reading(STATION, TS_NS + 250_000_000, {"level": 2.0}),
    ]


def test_array_payload_keeps_order_and_optional_fields() -> None:
    decoded = decode(
        '[{"ts": 1700000000, "level": 1.5},'
        ' {"ts": 1700000060, "seq": 0, "level": 2.5, "station": null},'
        ' {"ts": 1700000120, "seq": null, "level": -0.5}]'
    )
    assert decoded.rejections == []
    assert decoded.readings == [
        Reading(STATION, TS_NS, {"level": 1.5}, None),
        Reading(STATION, TS_NS + 60_000_000_000, {"level": 2.5}, 0),
        Reading(STATION, TS_NS + 120_000_000_000, {"level": -0.5}, None),
    ]


def test_large_integers_become_floats() -> None:
    decoded = decode('{"ts": 1700000000, "a": 18446744073709551615, "b": -9223372036854775808}')
    assert decoded.readings[0].values == {"a": 18446744073709551615.0, "b": -9223372036854775808.0}
    assert all(type(v) is float for v in decoded.readings[0].values.values())


def test_undecodable_bytes() -> None:
    payload = b'{"ts": 1, "level": 1, "name": "\xff\xfe"}'
    assert payload.index(b"\xff") == 31
    rejection = only_rejection(decode(payload))
    assert rejection == Rejection(Reason.UNDECODABLE, "payload is not UTF-8 (byte 31)", STATION)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "{",
        "}",
        '{"ts": 1,}',
        "{'ts': 1}",
        "nul",
        '{"ts": 1, "a": 1} trailing',
        "[1, 2",
        '{"a": 01}',
        "{ts: 1}",
    ],
)
def test_invalid_json(payload: str) -> None:
    rejection = only_rejection(decode(payload))
    assert rejection.reason is Reason.INVALID_JSON
    assert rejection.station_id == STATION
    assert rejection.detail  # orjson's message, for a person to read


def test_invalid_json_detail_is_bounded() -> None:
    rejection = only_rejection(decode('{"' + "k" * 5000))
    assert rejection.reason is Reason.INVALID_JSON
    assert len(rejection.detail) <= 200


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ('{"ts": 1700000000, "level": NaN}', "NaN is not a number JSON allows"),
        ('{"ts": 1700000000, "level": Infinity}', "Infinity is not a number JSON allows"),
        ('{"ts": 1700000000, "level": -Infinity}', "-Infinity is not a number JSON allows"),
        (
            '[{"ts": 1700000000, "level": 1}, {"ts": NaN, "level": 1}]',
            "NaN is not a number JSON allows",
        ),
        ('{"ts": 1700000000, "level": 1e999}', "a number overflows to infinity (1e999)"),
        ('{"ts": 1700000000, "level": -1e999}', "a number overflows to infinity (-1e999)"),
    ],
)
def test_non_finite_numbers_reject_the_whole_message(payload: str, detail: str) -> None:
    assert only_rejection(decode(payload)) == Rejection(Reason.NON_FINITE, detail, STATION)


def test_lone_surrogate_escape_is_invalid_json_not_non_finite() -> None:
    rejection = only_rejection(decode('{"ts": 1700000000, "level": 1, "note": "\\ud800"}'))
    assert rejection.reason is Reason.INVALID_JSON


def test_nesting_beyond_orjson_depth_is_invalid_json() -> None:
    rejection = only_rejection(decode("[" * 2000 + "]" * 2000))
    assert rejection.reason is Reason.INVALID_JSON


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ("[]", "empty array carries no readings"),
        ('"text"', "payload must be a JSON object or array of objects, got string"),
        ("42", "payload must be a JSON object or array of objects, got number"),
        ("4.2", "payload must be a JSON object or array of objects, got number"),
        ("null", "payload must be a JSON object or array of objects, got null"),
        ("true", "payload must be a JSON object or array of objects, got boolean"),
        ("[3]", "expected a JSON object, got number"),  # a single reading has no index
        ("[[]]", "expected a JSON object, got array"),
    ],
)
def test_bad_shape(payload: str, detail: str) -> None:
    assert only_rejection(decode(payload)) == Rejection(Reason.BAD_SHAPE, detail, STATION)


def test_bad_shape_of_one_item_keeps_the_others() -> None:
    decoded = decode('[{"ts": 1700000000, "level": 1}, "oops", {"ts": 1700000001, "level": 2}]')
    assert decoded.readings == [
        Reading(STATION, TS_NS, {"level": 1.0}),
        Reading(STATION, TS_NS + 1_000_000_000, {"level": 2.0}),
    ]
    assert decoded.rejections == [
        Rejection(Reason.BAD_SHAPE, "reading 1: expected a JSON object, got string", STATION)
    ]


def test_too_many_readings_rejects_the_whole_array() -> None:
    item = '{"ts": 1700000000, "level": 1}'
    at_limit = decode_native(f"[{item}, {item}, {item}]".encode(), STATION, 3)
    assert len(at_limit.readings) == 3
    assert at_limit.rejections == []
    over = decode_native(f"[{item}, {item}, {item}, {item}]".encode(), STATION, 3)
    assert only_rejection(over) == Rejection(
        Reason.TOO_MANY_READINGS, "4 readings in one message; the limit is 3", STATION
    )


def test_station_mismatch() -> None:
    rejection = only_rejection(decode('{"ts": 1700000000, "station": "jr-arjasa", "level": 1}'))
    assert rejection == Rejection(
        Reason.STATION_MISMATCH,
        "payload names station 'jr-arjasa' but was published on 'tb-menggala''s topic",
        STATION,
    )


def test_station_mismatch_in_an_array_names_the_reading_and_keeps_the_rest() -> None:
    decoded = decode(
        '[{"ts": 1700000000, "level": 1}, {"ts": 1700000000, "station": 7, "level": 2}]'
    )
    assert decoded.readings == [Reading(STATION, TS_NS, {"level": 1.0})]
    assert decoded.rejections == [
        Rejection(
            Reason.STATION_MISMATCH,
            "reading 1: payload names station '7' but was published on 'tb-menggala''s topic",
            STATION,
        )
    ]


def test_station_mismatch_detail_truncates_the_claimed_name() -> None:
    rejection = only_rejection(decode(json.dumps({"ts": TS_S, "station": "x" * 500, "a": 1})))
    assert rejection.reason is Reason.STATION_MISMATCH
    assert "'" + "x" * 64 + "'" in rejection.detail
    assert "x" * 65 not in rejection.detail


def test_missing_timestamp() -> None:
    assert only_rejection(decode('{"level": 1}')) == Rejection(
        Reason.MISSING_TIMESTAMP, "no 'ts' field", STATION
    )
    decoded = decode('[{"ts": 1700000000, "level": 1}, {"level": 2}]')
    assert decoded.rejections == [
        Rejection(Reason.MISSING_TIMESTAMP, "reading 1: no 'ts' field", STATION)
    ]


@pytest.mark.parametrize(
    ("ts", "detail_part"),
    [
        ('"yesterday"', "is not RFC 3339"),
        ('"2024-01-01T00:00:00"', "has no UTC offset"),
        ("true", "got a boolean"),
        ("null", "got NoneType"),
        ("[1700000000]", "got list"),
        ("-5", "is not a non-negative finite epoch number"),
        ("1700000000000000", "too large"),
    ],
)
def test_bad_timestamp(ts: str, detail_part: str) -> None:
    rejection = only_rejection(decode(f'{{"ts": {ts}, "level": 1}}'))
    assert rejection.reason is Reason.BAD_TIMESTAMP
    assert rejection.station_id == STATION
    assert detail_part in rejection.detail


def test_bad_timestamp_in_an_array_names_the_reading() -> None:
    decoded = decode('[{"ts": 1700000000, "level": 1}, {"ts": "soon", "level": 2}]')
    assert decoded.readings == [Reading(STATION, TS_NS, {"level": 1.0})]
    assert decoded.rejections == [
        Rejection(Reason.BAD_TIMESTAMP, "reading 1: ts 'soon' is not RFC 3339", STATION)
    ]


def test_timestamp_at_the_edge_of_datetime_is_a_rejection_not_an_exception() -> None:
    decoded = decode('{"ts": "0001-01-01T00:00:00+07:00", "level": 1}')
    assert only_rejection(decoded).reason is Reason.BAD_TIMESTAMP


def test_wrong_type_rejects_only_that_metric() -> None:
    decoded = decode(
        '{"ts": 1700000000, "a": 1.5, "b": "high", "c": null, "d": true, "e": [1], "f": {}, "g": 2}'
    )
    assert decoded.readings == [Reading(STATION, TS_NS, {"a": 1.5, "g": 2.0})]
    assert decoded.rejections == [
        Rejection(Reason.WRONG_TYPE, "b must be a number, got string", STATION),
        Rejection(Reason.WRONG_TYPE, "c must be a number, got null", STATION),
        Rejection(Reason.WRONG_TYPE, "d must be a number, got boolean", STATION),
        Rejection(Reason.WRONG_TYPE, "e must be a number, got array", STATION),
        Rejection(Reason.WRONG_TYPE, "f must be a number, got object", STATION),
    ]


def test_wrong_type_detail_truncates_the_metric_name() -> None:
    decoded = decode(json.dumps({"ts": TS_S, "k" * 300: "x", "level": 1}))
    assert decoded.rejections == [
        Rejection(Reason.WRONG_TYPE, "k" * 64 + " must be a number, got string", STATION)
    ]


def test_wrong_type_in_an_array_names_the_reading() -> None:
    decoded = decode('[{"ts": 1700000000, "a": 1}, {"ts": 1700000000, "a": "x", "b": 2}]')
    assert decoded.readings == [
        Reading(STATION, TS_NS, {"a": 1.0}),
        Reading(STATION, TS_NS, {"b": 2.0}),
    ]
    assert decoded.rejections == [
        Rejection(Reason.WRONG_TYPE, "reading 1: a must be a number, got string", STATION)
    ]


def test_a_reading_with_no_valid_metric_value_is_not_returned() -> None:
    decoded = decode('{"ts": 1700000000, "seq": 4, "level": "high", "rain_mm": null}')
    assert decoded.readings == []
    assert decoded.rejections == [
        Rejection(Reason.WRONG_TYPE, "level must be a number, got string", STATION),
        Rejection(Reason.WRONG_TYPE, "rain_mm must be a number, got null", STATION),
    ]


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        ('{"ts": 1700000000}', "no metric values"),
        ('{"ts": 1700000000, "seq": 3, "station": "tb-menggala"}', "no metric values"),
        ('[{"ts": 1700000000, "a": 1}, {"ts": 1700000000}]', "reading 1: no metric values"),
    ],
)
def test_no_metrics(payload: str, detail: str) -> None:
    decoded = decode(payload)
    assert decoded.rejections == [Rejection(Reason.NO_METRICS, detail, STATION)]
    assert len(decoded.readings) == payload.count('"a"')


@pytest.mark.parametrize("seq", ["-1", "1.5", "1.0", '"7"', "true", "[1]", "{}"])
def test_seq_must_be_a_non_negative_integer(seq: str) -> None:
    rejection = only_rejection(decode(f'{{"ts": 1700000000, "seq": {seq}, "level": 1}}'))
    assert rejection == Rejection(
        Reason.WRONG_TYPE, "seq must be an integer from 0 to 2**63-1", STATION
    )


@pytest.mark.parametrize("seq", [0, 1, 2**63 - 1])
def test_seq_in_range_is_kept(seq: int) -> None:
    decoded = decode(f'{{"ts": 1700000000, "seq": {seq}, "level": 1}}')
    assert decoded.readings == [Reading(STATION, TS_NS, {"level": 1.0}, seq)]


def test_seq_beyond_a_signed_64_bit_integer_is_refused() -> None:
    rejection = only_rejection(decode(f'{{"ts": 1700000000, "seq": {2**63}, "level": 1}}'))
    assert rejection.reason is Reason.WRONG_TYPE


def test_structural_faults_are_checked_before_the_timestamp() -> None:
    # One rejection per reading: the first structural fault, nothing after it.
    assert only_rejection(decode('{"station": "other", "seq": -1, "a": 1}')).reason is (
        Reason.STATION_MISMATCH
    )
    assert only_rejection(decode('{"seq": -1, "a": 1}')).reason is Reason.MISSING_TIMESTAMP
    assert only_rejection(decode('{"ts": "bad", "seq": -1, "a": 1}')).reason is Reason.WRONG_TYPE


# -- fuzzing -------------------------------------------------------------------------------------


def check_well_formed(decoded: Decoded) -> None:
    assert isinstance(decoded, Decoded)
    for reading in decoded.readings:
        assert reading.station_id == STATION
        assert type(reading.ts_ns) is int
        assert reading.seq is None or (type(reading.seq) is int and reading.seq >= 0)
        assert not RESERVED_KEYS.intersection(reading.values)
        for value in reading.values.values():
            assert type(value) is float
            assert math.isfinite(value)
    for rejection in decoded.rejections:
        assert isinstance(rejection.reason, Reason)
        assert rejection.station_id == STATION


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    check_well_formed(decode_native(payload, STATION, 5))


JSON_SCALARS = json_scalars(20)
JSON_VALUES = json_values(text_size=20, key_size=10, max_leaves=20)
# Timestamps that parse, and some that do not (years 1 and 9999 have tests of their own).
GOOD_TIMESTAMPS = st.integers(min_value=0, max_value=10**14 - 1) | st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.timezones()
).map(lambda moment: moment.isoformat())
TIMESTAMPS = st.one_of(
    GOOD_TIMESTAMPS, GOOD_TIMESTAMPS, GOOD_TIMESTAMPS, st.integers() | st.floats(), JSON_SCALARS
)
METRIC_VALUES = st.one_of(
    st.integers(), st.floats(), st.floats(allow_nan=False, allow_infinity=False), JSON_VALUES
)
READING_LIKE = st.fixed_dictionaries(
    {"ts": TIMESTAMPS},
    optional={
        "seq": st.none() | st.integers(min_value=-5, max_value=2**63 - 1) | JSON_SCALARS,
        "station": st.one_of(st.just(STATION), st.none(), st.just("other"), JSON_SCALARS),
    },
).flatmap(
    lambda fixed: st.dictionaries(st.text(max_size=8), METRIC_VALUES, min_size=1, max_size=5).map(
        lambda metrics: {**metrics, **fixed}
    )
)
DOCUMENTS = st.one_of(
    READING_LIKE,
    st.lists(READING_LIKE, min_size=1, max_size=6),
    st.lists(READING_LIKE | JSON_VALUES, max_size=6),
    JSON_VALUES,
)


def expected_values(item: dict[str, Any]) -> dict[str, float]:
    values = {}
    for key, value in item.items():
        if key not in RESERVED_KEYS and type(value) in {int, float}:
            try:
                values[key] = float(value)
            except OverflowError:  # such a message is rejected whole as non_finite
                continue
    return values


@settings(max_examples=300)
@given(DOCUMENTS)
def test_arbitrary_json_never_raises_and_keeps_exact_values(document: Any) -> None:
    decoded = decode_native(json.dumps(document).encode(), STATION, 5)
    check_well_formed(decoded)
    items = document if isinstance(document, list) else [document]
    candidates = [
        expected_values(item) for item in items if isinstance(item, dict) and "ts" in item
    ]
    for reading in decoded.readings:
        assert reading.values in candidates
    if decoded.readings:
        assert len(decoded.readings) <= len(items) <= 5

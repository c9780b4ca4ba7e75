"""SenML (RFC 8428) packs: base values resolved, units converted, every refusal explained."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import MetricSpec, Station
from devices.formats.context import DecodeContext
from devices.formats.senml import RECORDS_PER_READING, decode_senml
from devices.readings import Decoded, Reading, Reason, Rejection
from devices.registry import DeviceProfile, FieldMap
from devices.topics import Route
from tests.helpers import json_values, only_rejection

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "payloads"
STATION = "jr-bedadung-kota"
NS = 1_000_000_000
BT = 1_741_572_000  # 2025-03-10T02:00:00Z

RIVER_GAUGE = {
    "water_level_cm": MetricSpec(unit="cm", min=0, max=2000),
    "battery_v": MetricSpec(unit="V", min=0, max=15),
    "rssi_dbm": MetricSpec(unit="dBm", min=-150, max=0),
}
SENML_STAGE = DeviceProfile(
    fields={
        "level": FieldMap(metric="water_level_cm", unit="m"),
        "battery": FieldMap(metric="battery_v", unit="V"),
    }
)


def context(
    profile: DeviceProfile | None = SENML_STAGE,
    metrics: dict[str, MetricSpec] | None = None,
    max_readings: int = 10,
    mounting_height_cm: float | None = None,
) -> DecodeContext:
    station = Station(
        id=STATION,
        name="Kali Bedadung at Jember city",
        regency="Jember",
        latitude=-8.1724,
        longitude=113.6995,
        metrics=RIVER_GAUGE if metrics is None else metrics,
        mounting_height_cm=mounting_height_cm,
    )
    return DecodeContext(station, None, profile, Route("native", STATION), max_readings)


def decode(pack: Any, ctx: DecodeContext | None = None) -> Decoded:
    raw = pack if isinstance(pack, bytes) else json.dumps(pack).encode()
    return decode_senml(raw, ctx or context())


def rejected(reason: Reason, detail: str) -> Rejection:
    return Rejection(reason, detail, STATION)


def level(v: float, **extra: Any) -> dict[str, Any]:
    return {"n": "level", "v": v, **extra}


def test_stage_fixture_resolves_bases_and_converts_metres() -> None:
    decoded = decode((FIXTURES / "senml_stage.json").read_bytes())
    assert decoded.rejections == []
    assert decoded.readings == [
        Reading(STATION, (BT - 1800) * NS, {"water_level_cm": 226.2}),
        Reading(STATION, (BT - 900) * NS, {"water_level_cm": 228.1}),
        Reading(STATION, BT * NS, {"water_level_cm": 231.5, "battery_v": 3.61}),
    ]


RFC_METRICS = {
    "voltage_v": MetricSpec(unit="V", min=0, max=500),
    "current_a": MetricSpec(unit="A", min=0, max=100),
}
RFC_PROFILE = DeviceProfile(
    fields={"voltage": FieldMap(metric="voltage_v"), "current": FieldMap(metric="current_a")}
)


def test_rfc8428_multiple_datapoints_example() -> None:
    decoded = decode(
        (FIXTURES / "senml_rfc8428_multiple.json").read_bytes(),
        context(RFC_PROFILE, RFC_METRICS),
    )
    assert decoded.rejections == []
    base_us = 1_276_020_076_001_000  # bt 1.276020076001e+09 s, exact to the microsecond
    assert decoded.readings == [
        Reading(STATION, (base_us - offset * 1_000_000) * 1000, {"current_a": current})
        for offset, current in [(5, 1.2), (4, 1.3), (3, 1.4), (2, 1.5), (1, 1.6)]
    ] + [Reading(STATION, base_us * 1000, {"voltage_v": 120.1, "current_a": 1.7})]


def test_rfc8428_example_without_times_is_relative_to_now_and_refused() -> None:
    decoded = decode(
        (FIXTURES / "senml_relative_time.json").read_bytes(), context(RFC_PROFILE, RFC_METRICS)
    )
    assert decoded.readings == []
    assert decoded.rejections == [
        rejected(
            Reason.BAD_TIMESTAMP,
            f"record {index} ({name}): time 0 is relative to the receiver's clock "
            "(below 2**28 s); send absolute times, e.g. a bt for the pack",
        )
        for index, name in [(0, "voltage"), (1, "current")]
    ]


def test_relative_offsets_from_an_absolute_base_time_are_absolute() -> None:
    decoded = decode([{"bt": BT, "n": "level", "t": -60, "v": 1}, level(2, t=60.5)])
    assert [r.ts_ns for r in decoded.readings] == [(BT - 60) * NS, BT * NS + 60_500_000_000]


def test_time_from_t_alone_and_the_2_28_boundary() -> None:
    decoded = decode([level(1, t=BT), level(2, t=2**28), level(3, t=2**28 - 1)])
    assert [r.ts_ns for r in decoded.readings] == [2**28 * NS, BT * NS]
    assert decoded.rejections == [
        rejected(
            Reason.BAD_TIMESTAMP,
            "record 2 (level): time 2.68435e+08 is relative to the receiver's clock "
            "(below 2**28 s); send absolute times, e.g. a bt for the pack",
        )
    ]


def test_fractional_times_keep_microseconds() -> None:
    decoded = decode([{"bt": 1741572000.123456, "n": "level", "v": 1}, level(2, t=0.000001)])
    assert [r.ts_ns for r in decoded.readings] == [
        1_741_572_000_123_456_000,
        1_741_572_000_123_457_000,
    ]


@pytest.mark.parametrize(
    ("pack", "detail"),
    [
        ([level(1, t=1e11)], "time 1e+11 s is implausible"),
        ([level(1, bt=1e308, t=1e308)], "time inf s is implausible"),
        ([level(1, t="2025-03-10T02:00:00Z")], "t must be a finite number, got string"),
        ([level(1, t=True)], "t must be a finite number, got boolean"),
        ([level(1, bt=BT, t=None)], "t must be a finite number, got null"),
    ],
)
def test_bad_record_times(pack: list[Any], detail: str) -> None:
    expected = rejected(Reason.BAD_TIMESTAMP, f"record 0 (level): {detail}")
    assert only_rejection(decode(pack)) == expected


def test_base_values_apply_to_the_records_that_follow_until_replaced() -> None:
    decoded = decode(
        [
            {"bn": "urn:dev:mac:0024befffe804ff1:", "bt": BT, "bu": "cm", "bv": 100},
            {"n": "level", "v": 82.4},
            {"n": "level", "t": 60, "v": -1.5, "u": "m"},  # bv is added before conversion
            {"bu": "mm", "bv": 0, "n": "level", "t": 120, "v": 1824},
            {"bt": BT + 180, "n": "level", "v": 1825},
        ],
        context(max_readings=4),
    )
    assert decoded.rejections == []
    assert [(r.ts_ns, r.values) for r in decoded.readings] == [
        (BT * NS, {"water_level_cm": 182.4}),
        ((BT + 60) * NS, {"water_level_cm": 9850.0}),
        ((BT + 120) * NS, {"water_level_cm": 182.4}),
        ((BT + 180) * NS, {"water_level_cm": 182.5}),
    ]


def test_base_value_alone_is_the_value() -> None:
    decoded = decode([{"bt": BT, "bv": 2.5, "n": "level"}])
    assert decoded.readings == [Reading(STATION, BT * NS, {"water_level_cm": 250.0})]


def test_header_record_with_only_bases_is_not_a_measurement() -> None:
    decoded = decode([{"bn": "urn:dev:mac:0024befffe804ff1:", "bt": BT, "bu": "m"}, level(1.5)])
    assert decoded.rejections == []
    assert decoded.readings == [Reading(STATION, BT * NS, {"water_level_cm": 150.0})]


@pytest.mark.parametrize(
    "pack",
    [
        [{"bn": "urn:dev:ow:10e2073a01080063:level", "bt": BT, "v": 1.5}],
        [{"bn": "gauge/level", "bt": BT, "v": 1.5}],
        [{"bn": "urn:dev:ow:10e2073a01080063:", "bt": BT, "n": "level", "v": 1.5}],
        [{"bn": "stage-", "bt": BT, "n": "level", "v": 1.5}],  # n wins over the full name
        [{"bt": BT, "n": "level", "v": 1.5}],
    ],
)
def test_names_reach_the_profile_without_their_base_name(pack: list[Any]) -> None:
    decoded = decode(pack)
    assert decoded.rejections == []
    assert decoded.readings == [Reading(STATION, BT * NS, {"water_level_cm": 150.0})]


def test_a_profile_key_may_be_the_full_name() -> None:
    profile = DeviceProfile(
        fields={"urn:dev:ow:10e2073a01080063:level": FieldMap(metric="water_level_cm", unit="m")}
    )
    decoded = decode(
        [{"bn": "urn:dev:ow:10e2073a01080063:", "bt": BT, "n": "level", "v": 1.5}],
        context(profile),
    )
    assert decoded.readings == [Reading(STATION, BT * NS, {"water_level_cm": 150.0})]


def test_unmapped_names_are_ignored_whatever_they_carry() -> None:
    decoded = decode(
        [
            {"bt": BT, "n": "level", "v": 1.5},
            {"n": "firmware", "vs": "1.2.0"},
            {"n": "door", "vb": False},
            {"n": "temperature", "u": "Cel", "v": 27.1, "t": -5},
            {"n": "rain", "s": 12.5},
            {"n": "relative", "v": 1, "bt": 0},
        ]
    )
    assert decoded.rejections == []
    assert decoded.readings == [Reading(STATION, BT * NS, {"water_level_cm": 150.0})]


def test_only_unmapped_names_carry_no_metrics() -> None:
    decoded = decode([{"bt": BT, "n": "temperature", "u": "Cel", "v": 27.1}])
    assert only_rejection(decoded) == rejected(
        Reason.NO_METRICS, "no record names a metric of this station"
    )


def test_without_a_profile_names_are_metric_names() -> None:
    decoded = decode(
        [
            {"bn": "urn:dev:mac:0024befffe804ff1:", "bt": BT, "bu": "m"},
            {"n": "water_level_cm", "v": 1.5},
            {"n": "battery_v", "u": "mV", "v": 3610},
            {"n": "temperature", "u": "Cel", "v": 27.1},
            {"bn": "gauge/", "n": "rssi_dbm", "u": "dBm", "v": -97},
        ],
        context(profile=None),
    )
    assert decoded.rejections == []
    assert decoded.readings == [
        Reading(
            STATION,
            BT * NS,
            # temperature is not a station metric: the validator rejects it by name
            {"water_level_cm": 150.0, "battery_v": 3.61, "temperature": 27.1, "rssi_dbm": -97.0},
        )
    ]


def test_distance_sensors_speak_senml_too() -> None:
    profile = DeviceProfile(
        fields={"distance": FieldMap(metric="water_level_cm", kind="distance")},
        distance_absent_mm=0,
        distance_min_valid_mm=280,
    )
    decoded = decode(
        [
            {"bt": BT, "bu": "m", "n": "distance", "v": 1.234},
            {"n": "distance", "t": 60, "v": 0},
            {"n": "distance", "t": 120, "v": 0.2},
        ],
        context(profile, mounting_height_cm=600),
    )
    assert decoded.readings == [Reading(STATION, BT * NS, {"water_level_cm": 476.6})]
    assert decoded.rejections == [
        rejected(
            Reason.SENSOR_FAULT,
            "record 1 (distance): distance: no sensor connected (distance 0)",
        ),
        rejected(
            Reason.SENSOR_FAULT,
            "record 2 (distance): distance: invalid reading: 200 mm is below the 280 mm blind zone",
        ),
    ]


R1 = "record 1 (level): "
WRONG, SHAPE = Reason.WRONG_TYPE, Reason.BAD_SHAPE


@pytest.mark.parametrize(
    ("record", "reason", "detail"),
    [
        ({"n": "level", "vs": "high"}, WRONG, R1 + "string values (vs) are not measurements"),
        ({"n": "level", "vb": True}, WRONG, R1 + "boolean values (vb) are not measurements"),
        ({"n": "level", "vd": "aGk"}, WRONG, R1 + "data values (vd) are not measurements"),
        ({"n": "level", "s": 12.5}, WRONG, R1 + "sums (s) are not read; send the value in v"),
        ({"n": "level", "v": "1.5 m"}, WRONG, R1 + "v must be a number, got string"),
        ({"n": "level", "v": True}, WRONG, R1 + "v must be a number, got boolean"),
        ({"n": "level", "v": None}, WRONG, R1 + "v must be a number, got null"),
        ({"n": "level", "v": 1, "u": 3}, WRONG, R1 + "u must be a string, got number"),
        (
            {"n": "level", "v": 1, "u": "V"},
            WRONG,
            R1 + "level: cannot convert V (voltage) to cm (length)",
        ),
        (
            {"n": "level", "v": 1, "u": "ft"},
            WRONG,
            R1 + "level: unknown unit 'ft' (cannot convert 'ft' to 'cm')",
        ),
        (
            {"n": "level", "v": 1e307, "u": "m"},
            Reason.NON_FINITE,
            R1 + "level is not finite: 1e+307 m overflows when converted to cm",
        ),
        ({"n": "level"}, SHAPE, R1 + "record has no value"),
        ({"n": 7, "v": 1}, SHAPE, "record 1: n must be a string, got number"),
        (
            {"n": "level height", "v": 1},
            SHAPE,
            "record 1: 'level height' is not a valid SenML name",
        ),
        ({"n": "-level", "v": 1}, SHAPE, "record 1: '-level' is not a valid SenML name"),
        ({"v": 1}, SHAPE, "record 1: '' is not a valid SenML name"),
        ({"bn": "gauge/", "v": 1}, SHAPE, "record 1: name 'gauge/' ends in a separator"),
        (
            {"n": "level", "v": 1.6},
            SHAPE,
            R1 + "a second value for water_level_cm at the same time",
        ),
    ],
)
def test_bad_records_are_rejected_alone(
    record: dict[str, Any], reason: Reason, detail: str
) -> None:
    decoded = decode([{"bt": BT, "n": "level", "v": 1.5}, record])
    assert decoded.readings == [Reading(STATION, BT * NS, {"water_level_cm": 150.0})]
    assert decoded.rejections == [rejected(reason, detail)]


def test_a_record_that_is_not_an_object_is_rejected_alone() -> None:
    decoded = decode([{"bt": BT, "n": "level", "v": 1.5}, "level=1.6", None])
    assert len(decoded.readings) == 1
    assert decoded.rejections == [
        rejected(Reason.BAD_SHAPE, "record 1: expected a JSON object, got string"),
        rejected(Reason.BAD_SHAPE, "record 2: expected a JSON object, got null"),
    ]


@pytest.mark.parametrize(
    ("pack", "detail"),
    [
        ([level(1, bt=BT), {"bn": 7}], "record 1: bn must be a string, got number"),
        ([level(1, bu=["m"])], "record 0: bu must be a string, got array"),
        ([level(1, bt="now")], "record 0: bt must be a finite number, got string"),
        ([{"bt": BT, "bv": "1", "n": "level"}], "record 0: bv must be a finite number, got string"),
        ([level(1, bt=BT, bs=False)], "record 0: bs must be a finite number, got boolean"),
        ([level(1, bt=BT, bver=11)], "record 0: bver 11 is not a SenML version up to 10"),
        ([level(1, bt=BT, bver="10")], "record 0: bver 10 is not a SenML version up to 10"),
        (
            [level(1, bt=BT), level(2, t=1, crit_=1)],
            "record 1: label 'crit_' must be understood (it ends in '_') and is not a SenML "
            "label Siaga knows",
        ),
    ],
)
def test_pack_level_faults_reject_the_whole_pack(pack: list[Any], detail: str) -> None:
    assert only_rejection(decode(pack)) == rejected(Reason.BAD_SHAPE, detail)


def test_unknown_labels_without_underscore_are_ignored() -> None:
    decoded = decode([{"bt": BT, "n": "level", "v": 1.5, "ut": 900, "l": "x", "extra": [1]}])
    assert decoded.readings == [Reading(STATION, BT * NS, {"water_level_cm": 150.0})]


@pytest.mark.parametrize(
    ("payload", "detail"),
    [
        (b'{"n": "level", "v": 1}', "a SenML pack must be a JSON array of records, got object"),
        (b"17", "a SenML pack must be a JSON array of records, got number"),
        (b"[]", "empty SenML pack carries no records"),
    ],
)
def test_whole_message_faults(payload: bytes, detail: str) -> None:
    assert only_rejection(decode(payload)) == rejected(Reason.BAD_SHAPE, detail)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'[{"n": "level", "v": 1},]', Reason.INVALID_JSON),
        (b'[{"n": "level", "v": NaN}]', Reason.NON_FINITE),
        (b'[{"n": "level", "v": 1e999}]', Reason.NON_FINITE),
        (b"\xff[]", Reason.UNDECODABLE),
    ],
)
def test_json_faults_are_read_as_the_native_format_reads_them(
    payload: bytes, reason: Reason
) -> None:
    rejection = only_rejection(decode(payload))
    assert rejection.reason is reason
    assert rejection.detail
    assert rejection.station_id == STATION


def test_record_and_reading_limits() -> None:
    ctx = context(max_readings=2)
    limit = 2 * RECORDS_PER_READING
    at_limit = [{"bt": BT, "n": "level", "v": 1}] + [{"n": "other", "v": 1}] * (limit - 1)
    assert len(decode(at_limit, ctx).readings) == 1
    over = [*at_limit, {"n": "other", "v": 1}]
    assert only_rejection(decode(over, ctx)) == rejected(
        Reason.TOO_MANY_READINGS, f"{limit + 1} records in one pack; the limit is {limit}"
    )
    two_times = [level(1, bt=BT), level(2, t=60)]
    assert len(decode(two_times, ctx).readings) == 2
    three_times = [*two_times, level(3, t=120)]
    assert only_rejection(decode(three_times, ctx)) == rejected(
        Reason.TOO_MANY_READINGS, "3 distinct times in one pack; the limit is 2 readings"
    )


def check_well_formed(decoded: Decoded) -> None:
    assert isinstance(decoded, Decoded)
    for reading in decoded.readings:
        assert reading.station_id == STATION
        assert type(reading.ts_ns) is int
        assert reading.ts_ns >= 2**28 * NS
        assert reading.values
        assert all(type(v) is float and math.isfinite(v) for v in reading.values.values())
        assert reading.seq is None
    for rejection in decoded.rejections:
        assert isinstance(rejection.reason, Reason)
        assert rejection.detail
        assert len(rejection.detail) < 400
        assert rejection.station_id == STATION
    assert decoded.readings or decoded.rejections


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    check_well_formed(decode_senml(payload, context()))


JSON_VALUES = json_values(key_size=6)
LABELS = st.sampled_from(
    ["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut", "x_"]
)
RECORD_VALUES = (
    JSON_VALUES
    | st.sampled_from(["level", "battery", "urn:dev:ow:1:", "m", "cm", "V", "mV", "%", ""])
    | st.sampled_from([BT, BT + 0.5, -60, 0, 2**28, 1.5, 3384])
)
RECORDS = st.dictionaries(LABELS, RECORD_VALUES, max_size=6) | JSON_VALUES


@settings(max_examples=200)
@given(st.lists(RECORDS, max_size=8) | JSON_VALUES)
def test_arbitrary_json_never_raises(document: Any) -> None:
    check_well_formed(decode_senml(json.dumps(document).encode(), context(max_readings=4)))


@settings(max_examples=200)
@given(st.lists(RECORDS, max_size=8))
def test_arbitrary_packs_without_a_profile_never_raise(document: Any) -> None:
    check_well_formed(decode_senml(json.dumps(document).encode(), context(profile=None)))


@pytest.mark.parametrize("depth", [50, 5000])
def test_deep_nesting_never_raises(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    check_well_formed(decode_senml(nested.encode(), context()))
    record = f'[{{"bt": {BT}, "n": "level", "v": {nested}}}]'
    check_well_formed(decode_senml(record.encode(), context()))


def test_many_records_with_one_fault_are_counted_not_listed() -> None:
    pack = [level(1, bt=BT)] + [{"n": "level", "t": t, "v": 1, "bt": 0} for t in range(10)]
    decoded = decode(pack, context(max_readings=1))
    assert len(decoded.readings) == 1
    assert [r.reason for r in decoded.rejections] == [Reason.BAD_TIMESTAMP] * 5
    assert decoded.rejections[3].detail.startswith("record 4 (level): time 3 is relative")
    assert decoded.rejections[4] == rejected(
        Reason.BAD_TIMESTAMP, "6 more records refused for the same reason"
    )

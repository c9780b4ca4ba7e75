"""Device profiles: source fields to station metrics, units converted, distances to levels."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import MetricSpec, Station
from devices.formats.context import DecodeContext
from devices.formats.mapping import (
    RSSI_METRIC,
    SNR_METRIC,
    apply_profile,
    json_type,
    map_value,
    signal_values,
)
from devices.readings import Reason, Rejection
from devices.registry import DeviceProfile, FieldMap
from devices.topics import Route
from tests.helpers import json_values
from tests.unit.lorawan_fixtures import DDS75, DENTE_TELADAS, LORAWAN_METRICS, dente_teladas

STATION = DENTE_TELADAS


def context(
    profile: DeviceProfile | None = DDS75, the_station: Station | None = None
) -> DecodeContext:
    return DecodeContext(
        the_station or dente_teladas(),
        None,
        profile,
        Route("ttn", "dds75-dente-teladas", application_id="siaga-tulang-bawang"),
        max_readings=10,
    )


def apply(source: dict[str, Any], ctx: DecodeContext | None = None) -> tuple[Any, Any]:
    return apply_profile(source, ctx or context(), "")


def rejected(reason: Reason, detail: str) -> Rejection:
    return Rejection(reason, detail, STATION)


def test_dragino_strings_become_station_metrics() -> None:
    values, rejections = apply(
        {"Bat": "3.384 V", "distance": "1234 mm", "Interrupt_flag": 0, "TempC_DS18B20": "0.00"}
    )
    assert rejections == []
    assert values == {"battery_v": 3.384, "water_level_cm": 476.6}  # 600 cm - 123.4 cm


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"Bat": 3.384}, {"battery_v": 3.384}),  # bare number in the profile's unit (V)
        ({"Bat": "3384mV"}, {"battery_v": 3.384}),  # the string's unit wins
        ({"Bat": 3384, "distance": 1234}, {"battery_v": 3384.0, "water_level_cm": 476.6}),
        ({"distance": "1.234 m"}, {"water_level_cm": 476.6}),
        ({"distance": "123.4cm"}, {"water_level_cm": 476.6}),
        ({"distance": 280}, {"water_level_cm": 572.0}),  # exactly at the blind-zone edge
        ({"distance": 7000}, {"water_level_cm": -100.0}),  # range is the validator's job
        ({"batteryLevel": 86.61}, {"battery_pct": 86.61}),
        ({"batteryLevel": "0.8661 /"}, {"battery_pct": 86.61}),
    ],
)
def test_units_are_converted_to_the_station_unit(
    source: dict[str, Any], expected: dict[str, float]
) -> None:
    values, rejections = apply(source)
    assert rejections == []
    assert values == expected


def test_a_bare_number_falls_back_to_the_station_unit() -> None:
    profile = DeviceProfile(fields={"level": FieldMap(metric="water_level_cm")})
    values, rejections = apply({"level": 182.4}, context(profile))
    assert (values, rejections) == ({"water_level_cm": 182.4}, [])
    values, _ = apply({"level": "1.824 m"}, context(profile))
    assert values == {"water_level_cm": 182.4}


def test_levels_follow_the_station_unit() -> None:
    metrics = {"water_level_m": MetricSpec(unit="m", min=0, max=20)}
    profile = DeviceProfile(
        fields={"distance": FieldMap(metric="water_level_m", unit="mm", kind="distance")}
    )
    values, rejections = apply({"distance": 1234}, context(profile, dente_teladas(metrics)))
    assert (values, rejections) == ({"water_level_m": 4.766}, [])


@pytest.mark.parametrize(
    ("distance", "detail"),
    [
        (0, "distance: no sensor connected (distance 0)"),
        ("0 mm", "distance: no sensor connected (distance 0)"),
        ("0.0 m", "distance: no sensor connected (distance 0)"),
        (279, "distance: invalid reading: 279 mm is below the 280 mm blind zone"),
        ("27.9 cm", "distance: invalid reading: 279 mm is below the 280 mm blind zone"),
        (-5, "distance: invalid reading: -5 mm is below the 280 mm blind zone"),
    ],
)
def test_distance_sensor_faults(distance: object, detail: str) -> None:
    values, rejections = apply({"Bat": 3.384, "distance": distance})
    assert values == {"battery_v": 3.384}  # the battery reading is still good
    assert rejections == [rejected(Reason.SENSOR_FAULT, detail)]


def test_profile_without_fault_values_passes_every_distance() -> None:
    profile = DeviceProfile(
        fields={"distance": FieldMap(metric="water_level_cm", unit="mm", kind="distance")}
    )
    values, rejections = apply({"distance": 0}, context(profile))
    assert (values, rejections) == ({"water_level_cm": 600.0}, [])


def test_distance_needs_a_mounting_height() -> None:
    values, rejections = apply(
        {"distance": 1234}, context(the_station=dente_teladas(mounting_height_cm=None))
    )
    assert values == {}
    assert rejections == [
        rejected(
            Reason.UNDECODABLE,
            "distance: station 'tb-dente-teladas' has no mounting_height_cm to turn a distance "
            "into a level",
        )
    ]


NOT_A_QUANTITY = "must be a number or a string such as '3.384 V', got"
WRONG, NON_FINITE = Reason.WRONG_TYPE, Reason.NON_FINITE


@pytest.mark.parametrize(
    ("source", "reason", "detail"),
    [
        ({"Bat": None}, WRONG, f"Bat {NOT_A_QUANTITY} null"),
        ({"Bat": True}, WRONG, f"Bat {NOT_A_QUANTITY} boolean"),
        ({"Bat": [3.384]}, WRONG, f"Bat {NOT_A_QUANTITY} array"),
        ({"Bat": {"v": 1}}, WRONG, f"Bat {NOT_A_QUANTITY} object"),
        ({"Bat": "low"}, WRONG, "Bat: 'low' is not a number with an optional unit"),
        ({"Bat": "3.384 Volt"}, WRONG, "Bat: '3.384 Volt' has an unknown unit 'Volt'"),
        ({"Bat": "3.384 mm"}, WRONG, "Bat: cannot convert mm (length) to V (voltage)"),
        ({"distance": "3.384 V"}, WRONG, "distance: cannot convert V (voltage) to mm (length)"),
        ({"Bat": math.nan}, NON_FINITE, "Bat is not finite: nan is not a finite number"),
        ({"Bat": "1e999 V"}, NON_FINITE, "Bat is not finite: inf is not a finite number"),
        (
            {"distance": "1e308 m"},
            NON_FINITE,
            "distance is not finite: 1e+308 m overflows when converted to mm",
        ),
    ],
)
def test_unusable_values_are_rejected_alone(
    source: dict[str, Any], reason: Reason, detail: str
) -> None:
    values, rejections = apply({**source, "batteryLevel": 50})
    assert values == {"battery_pct": 50.0}
    assert rejections == [rejected(reason, detail)]


def test_rejection_details_carry_the_prefix_and_a_bounded_name() -> None:
    long_name = "x" * 200
    profile = DeviceProfile(fields={long_name: FieldMap(metric="battery_v")})
    _, rejections = apply_profile({long_name: None}, context(profile), "record 3: ")
    assert (
        rejections[0].detail
        == f"record 3: {'x' * 64} must be a number or a string such as '3.384 V', got null"
    )


def test_without_a_profile_station_metric_names_are_taken_as_they_are() -> None:
    values, rejections = apply(
        {"water_level_cm": "1.824 m", "battery_v": 12, "Interrupt_flag": 0, "snr_db": "x"},
        context(profile=None),
    )
    assert values == {"water_level_cm": 182.4, "battery_v": 12.0}
    assert rejections == [
        rejected(Reason.WRONG_TYPE, "snr_db: 'x' is not a number with an optional unit")
    ]


def test_a_metric_the_station_lacks_is_passed_on_for_the_validator() -> None:
    field = FieldMap(metric="temperature_c", unit="Cel")
    assert map_value("TempC_DS18B20", field, "24.5", context(), "") == 24.5
    assert map_value("TempC_DS18B20", field, "24.5 Cel", context(), "") == 24.5


def test_a_message_unit_overrides_the_profile_unit() -> None:
    field = FieldMap(metric="water_level_cm", unit="cm")
    assert map_value("level", field, 2.315, context(), "", unit="m") == 231.5
    assert map_value("level", field, "2315 mm", context(), "", unit="m") == 231.5


def test_signal_values_take_the_best_reception() -> None:
    receptions = [
        {"rssi": -112, "snr": -3.25},
        {"rssi": -97, "snr": 6.5},
        {"rssi": -120},  # an SNR of exactly 0 dB is omitted by the server
        "not an object",
        {"rssi": "strong", "snr": None},
        {"rssi": True, "snr": False},
        {},
    ]
    assert signal_values(receptions, context()) == ({RSSI_METRIC: -97.0, SNR_METRIC: 6.5}, [])
    only_rssi = [{"rssi": -101}]
    assert signal_values(only_rssi, context()) == ({RSSI_METRIC: -101.0}, [])
    assert signal_values(only_rssi, context(), snr_zero_when_absent=True) == (
        {RSSI_METRIC: -101.0, SNR_METRIC: 0.0},
        [],
    )
    assert signal_values([{"rssi": -90, "loRaSNR": 9}], context(), snr_keys=("snr", "loRaSNR")) == (
        {RSSI_METRIC: -90.0, SNR_METRIC: 9.0},
        [],
    )


@pytest.mark.parametrize("receptions", [None, {}, "rx", 3, [], [None], [[]]])
def test_signal_values_without_receptions(receptions: object) -> None:
    assert signal_values(receptions, context()) == ({}, [])


def test_signal_values_only_for_metrics_the_station_declares() -> None:
    metrics = {"water_level_cm": LORAWAN_METRICS["water_level_cm"]}
    assert signal_values(
        [{"rssi": -97, "snr": 6.5}], context(the_station=dente_teladas(metrics))
    ) == (
        {},
        [],
    )


def test_signal_values_refuse_a_station_unit_that_is_not_a_signal_unit() -> None:
    metrics = {"rssi_dbm": MetricSpec(unit="V", min=-150, max=0)}
    values, rejections = signal_values([{"rssi": -97}], context(the_station=dente_teladas(metrics)))
    assert values == {}
    assert rejections == [
        rejected(Reason.WRONG_TYPE, "rssi_dbm: cannot convert dBm (power level) to V (voltage)")
    ]


@pytest.mark.parametrize(
    ("value", "name"),
    [(None, "null"), (True, "boolean"), (1, "number"), (1.5, "number"), ("", "string"),
     ([], "array"), ({}, "object"), (b"", "bytes")],
)  # fmt: skip
def test_json_type(value: object, name: str) -> None:
    assert json_type(value) == name


JSON_VALUES = json_values(text_size=20, max_leaves=20)


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(["Bat", "distance", "batteryLevel", "other"]) | st.text(max_size=8),
        JSON_VALUES
        | st.from_regex(r"-?[0-9]{1,5}(\.[0-9]{1,3})? ?(mm|cm|m|V|mV|%|dB|x)?", fullmatch=True),
        max_size=6,
    )
)
def test_apply_profile_never_raises(source: dict[str, Any]) -> None:
    values, rejections = apply(source)
    assert set(values) <= {"battery_v", "water_level_cm", "battery_pct"}
    assert all(type(v) is float and math.isfinite(v) for v in values.values())
    assert all(r.station_id == STATION and r.detail for r in rejections)
    assert len(values) + len(rejections) == len(set(source) & set(DDS75.fields))

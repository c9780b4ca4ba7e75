"""ChirpStack up and status events (v4, and v3 names): readings through the profile, refusals."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import MetricSpec, Station
from devices.formats.chirpstack import decode_chirpstack
from devices.formats.context import DecodeContext
from devices.readings import Decoded, Reading, Reason, Rejection
from devices.registry import DeviceProfile, FieldMap, load_registry
from devices.topics import Route, TopicScheme, parse_route
from tests.helpers import json_values, only_rejection
from tests.unit import lorawan_fixtures
from tests.unit.lorawan_fixtures import DDS75, DDS75_FIELDS, LORAWAN_METRICS

REPO = Path(__file__).resolve().parent.parent.parent
PAYLOADS = REPO / "tests" / "fixtures" / "payloads"
UP = json.loads((PAYLOADS / "chirpstack_up.json").read_text(encoding="utf-8"))
STATUS = json.loads((PAYLOADS / "chirpstack_status.json").read_text(encoding="utf-8"))
STATION = "rb-lasem"
APPLICATION = "5d3b6e1c-2f0a-4f7e-9a51-3c7b0b1e9d42"
DEV_EUI = "a84041000181c7b2"
UP_NS = 1_736_891_225_118_293_000
STATUS_NS = 1_736_891_225_204_518_000

METRICS = {**LORAWAN_METRICS, "margin_db": MetricSpec(unit="dB", min=-32, max=31)}
WITH_MARGIN = DeviceProfile(
    fields={**DDS75_FIELDS, "margin": FieldMap(metric="margin_db", unit="dB")},
    distance_absent_mm=0,
    distance_min_valid_mm=280,
)
UP_ONLY = DeviceProfile(fields={"Bat": FieldMap(metric="battery_v", unit="V")})


def route(event: str = "up", application: str = APPLICATION, dev_eui: str = DEV_EUI) -> Route:
    parsed = parse_route(f"application/{application}/device/{dev_eui}/event/{event}", TopicScheme())
    assert parsed is not None
    return parsed


def context(
    event: str = "up", profile: DeviceProfile | None = DDS75, the_route: Route | None = None
) -> DecodeContext:
    station = Station(
        id=STATION,
        name="Kali Lasem at Lasem",
        regency="Rembang",
        latitude=-6.6948,
        longitude=111.44,
        metrics=METRICS,
        mounting_height_cm=450,
    )
    return DecodeContext(station, None, profile, the_route or route(event), max_readings=10)


def changed(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy with top-level fields replaced (``...`` removes one)."""
    result = copy.deepcopy(document)
    for key, value in changes.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def decode(document: Any, ctx: DecodeContext | None = None) -> Decoded:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return decode_chirpstack(raw, ctx or context())


def status(document: Any, profile: DeviceProfile | None = DDS75) -> Decoded:
    return decode(document, context("status", profile))


def rejected(reason: Reason, detail: str) -> Rejection:
    return Rejection(reason, detail, STATION)


UP_VALUES = {"battery_v": 3.312, "water_level_cm": 163.0, "rssi_dbm": -89.0, "snr_db": 2.75}


def test_up_fixture_becomes_one_reading() -> None:
    decoded = decode(UP)
    assert decoded.rejections == []
    assert decoded.readings == [Reading(STATION, UP_NS, UP_VALUES, 5121)]


def test_fixtures_decode_with_the_repository_registry() -> None:
    registry = load_registry(REPO / "config" / "stations.yaml", REPO / "config" / "devices.yaml")
    resolved = registry.for_chirpstack(DEV_EUI)
    assert resolved is not None
    for event, document, expected in [
        ("up", UP, {"battery_v": 3.312, "water_level_cm": 163.0}),
        ("status", STATUS, {"battery_pct": 86.61}),
    ]:
        ctx = DecodeContext(resolved.station, resolved.device, resolved.profile, route(event), 10)
        decoded = decode(document, ctx)
        assert decoded.rejections == []
        assert decoded.readings[0].values.items() >= expected.items()


def test_omitted_zero_values() -> None:
    receptions = [{"gatewayId": "0016c001ff1b2a3c", "rssi": -104}]  # snr 0 is omitted
    decoded = decode(changed(UP, fCnt=..., rxInfo=receptions))
    assert decoded.rejections == []
    reading = decoded.readings[0]
    assert reading.seq == 0
    assert (reading.values["rssi_dbm"], reading.values["snr_db"]) == (-104.0, 0.0)


def test_missing_snr_is_not_zero_without_lora_modulation() -> None:
    receptions = [{"rssi": -104}]
    decoded = decode(changed(UP, txInfo=..., rxInfo=receptions))
    assert "snr_db" not in decoded.readings[0].values


def test_a_bad_field_is_rejected_and_the_rest_kept() -> None:
    decoded = decode(changed(UP, object={"Bat": 3.312, "distance": 0}))
    assert decoded.readings == [
        Reading(STATION, UP_NS, {"battery_v": 3.312, "rssi_dbm": -89.0, "snr_db": 2.75}, 5121)
    ]
    assert decoded.rejections == [
        rejected(Reason.SENSOR_FAULT, "distance: no sensor connected (distance 0)")
    ]


def test_up_with_no_mapped_field_is_no_metrics() -> None:
    decoded = decode(changed(UP, object={"Interrupt_flag": 0}))
    assert only_rejection(decoded) == rejected(
        Reason.NO_METRICS,
        "object has none of the fields this device's profile reads (Bat, batteryLevel, distance)",
    )


def test_up_without_an_object_means_no_codec() -> None:
    expected = rejected(
        Reason.UNDECODABLE,
        "uplink has no object: no codec configured in the device profile on ChirpStack",
    )
    assert only_rejection(decode(changed(UP, object=...))) == expected
    assert only_rejection(decode(changed(UP, object=None))) == expected
    assert only_rejection(decode(changed(UP, object=..., objectJSON=""))) == expected


def test_object_must_be_an_object() -> None:
    assert only_rejection(decode(changed(UP, object=[3.312, 2870]))) == rejected(
        Reason.BAD_SHAPE, "object must be a JSON object, got array"
    )


V3_UP = {
    "applicationID": "123",
    "applicationName": "siaga-rembang",
    "deviceName": "dds75-lasem",
    "devEUI": "a84041000181c7b2",
    "rxInfo": [
        {
            "gatewayID": "0016c001ff1b2a3c",
            "name": "lasem-gw",
            "time": "2023-11-14T22:13:20.295915988Z",
            "rssi": -57,
            "loRaSNR": 10,
            "location": {"latitude": -6.7069, "longitude": 111.4425, "altitude": 10.5},
        }
    ],
    "txInfo": {"frequency": 923400000, "modulation": "LORA"},
    "adr": True,
    "dr": 2,
    "fCnt": 10,
    "fPort": 2,
    "data": "DPALNgAAAAE=",
    "objectJSON": '{"Bat":3.312,"distance":2870,"Interrupt_flag":0}',
    "tags": {"river": "Kali Lasem"},
    "publishedAt": "2023-11-14T22:13:20.300158Z",
}


@pytest.mark.parametrize("dev_eui", ["a84041000181c7b2", "A84041000181C7B2", "qEBBAAGBx7I="])
def test_chirpstack_v3_names(dev_eui: str) -> None:
    ctx = context(the_route=route(application="123"))
    decoded = decode(changed(V3_UP, devEUI=dev_eui), ctx)
    assert decoded.rejections == []
    assert decoded.readings == [
        Reading(
            STATION,
            1_700_000_000_300_158_000,
            {"battery_v": 3.312, "water_level_cm": 163.0, "rssi_dbm": -57.0, "snr_db": 10.0},
            10,
        )
    ]


def test_chirpstack_v3_bad_object_json() -> None:
    ctx = context(the_route=route(application="123"))
    assert only_rejection(decode(changed(V3_UP, objectJSON="{Bat: 3.3}"), ctx)) == rejected(
        Reason.UNDECODABLE, "objectJSON is not valid JSON"
    )
    deep = "[" * 5000 + "]" * 5000
    assert only_rejection(decode(changed(V3_UP, objectJSON=deep), ctx)).reason is (
        Reason.UNDECODABLE
    )


@pytest.mark.parametrize("dev_eui", ["AgICAgICAgI=", "not-an-eui", 42, "a84041000181c7b2ff"])
def test_chirpstack_v3_eui_must_be_read(dev_eui: object) -> None:
    ctx = context(the_route=route(application="123"))
    rejection = only_rejection(decode(changed(V3_UP, devEUI=dev_eui), ctx))
    assert rejection.reason in {Reason.BAD_SHAPE, Reason.STATION_MISMATCH}


def test_status_fixture_reads_the_battery_level() -> None:
    decoded = status(STATUS)
    assert decoded.rejections == []
    assert decoded.readings == [Reading(STATION, STATUS_NS, {"battery_pct": 86.61})]


def test_status_reads_margin_when_the_profile_maps_it() -> None:
    assert status(STATUS, WITH_MARGIN).readings == [
        Reading(STATION, STATUS_NS, {"battery_pct": 86.61, "margin_db": 7.0})
    ]
    omitted_zero = changed(STATUS, margin=...)
    assert status(omitted_zero, WITH_MARGIN).readings[0].values["margin_db"] == 0.0


def test_status_with_nothing_mapped() -> None:
    expected = rejected(Reason.NO_METRICS, "status event carries nothing this station records")
    assert only_rejection(status(STATUS, UP_ONLY)) == expected
    assert only_rejection(status(STATUS, None)) == expected


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"externalPowerSource": True, "batteryLevel": 0}, "the device runs on external power"),
        (
            {"batteryLevelUnavailable": True, "batteryLevel": 0},
            "the device could not measure its battery level",
        ),
        ({"batteryLevel": ...}, "the event has no batteryLevel"),
    ],
)
def test_status_without_a_battery_level(changes: dict[str, Any], why: str) -> None:
    document = changed(STATUS, **changes)
    assert only_rejection(status(document)) == rejected(
        Reason.NO_METRICS, f"status event has no battery level: {why}"
    )
    assert status(document, WITH_MARGIN).readings == [
        Reading(STATION, STATUS_NS, {"margin_db": 7.0})
    ]


def test_status_values_go_through_the_profile() -> None:
    decoded = status(changed(STATUS, batteryLevel="high"), WITH_MARGIN)
    assert decoded.readings == [Reading(STATION, STATUS_NS, {"margin_db": 7.0})]
    assert decoded.rejections == [
        rejected(Reason.WRONG_TYPE, "batteryLevel: 'high' is not a number with an optional unit")
    ]


@pytest.mark.parametrize("event", ["join", "ack", "txack", "log", "location", "integration"])
def test_other_events_carry_no_readings(event: str) -> None:
    assert only_rejection(decode(UP, context(event))) == rejected(
        Reason.BAD_SHAPE, f"ChirpStack {event!r} events carry no readings"
    )


def test_a_route_without_an_event() -> None:
    ctx = context(the_route=Route("chirpstack", DEV_EUI.upper(), APPLICATION))
    assert only_rejection(decode(UP, ctx)) == rejected(
        Reason.BAD_SHAPE, "ChirpStack 'None' events carry no readings"
    )


def test_dev_eui_must_match_the_topic_in_any_case() -> None:
    upper = changed(UP, deviceInfo={**UP["deviceInfo"], "devEui": DEV_EUI.upper()})
    assert decode(upper).readings == decode(UP).readings
    other = changed(UP, deviceInfo={**UP["deviceInfo"], "devEui": "a84041000181d3e1"})
    assert only_rejection(decode(other)) == rejected(
        Reason.STATION_MISMATCH,
        "event is from device 'a84041000181d3e1' but was published on the topic of "
        "'A84041000181C7B2'",
    )


def test_application_must_match_the_topic() -> None:
    other = changed(UP, deviceInfo={**UP["deviceInfo"], "applicationId": "other-app"})
    assert only_rejection(decode(other)) == rejected(
        Reason.STATION_MISMATCH,
        f"event is from application 'other-app' but was published on the topic of application "
        f"{APPLICATION!r}",
    )


@pytest.mark.parametrize(
    "device_info", [..., None, "a84041000181c7b2", {}, {"devEui": 7}, {"devEui": "a840"}]
)
def test_device_must_be_named(device_info: Any) -> None:
    assert only_rejection(decode(changed(UP, deviceInfo=device_info))) == rejected(
        Reason.BAD_SHAPE, "event must name the device: deviceInfo.devEui"
    )


def test_timestamps() -> None:
    assert only_rejection(decode(changed(UP, time=...))) == rejected(
        Reason.MISSING_TIMESTAMP, "event has no time"
    )
    assert only_rejection(decode(changed(UP, time=1736891225))) == rejected(
        Reason.BAD_TIMESTAMP, "time must be an RFC 3339 string, got number"
    )
    assert only_rejection(decode(changed(UP, time="2025-01-14T21:47:05"))) == rejected(
        Reason.BAD_TIMESTAMP,
        "time: ts '2025-01-14T21:47:05' has no UTC offset; add 'Z' or '+07:00'",
    )
    assert only_rejection(status(changed(STATUS, time="soon"))).reason is Reason.BAD_TIMESTAMP


@pytest.mark.parametrize("f_cnt", [-1, 1.5, "5121", True, None])
def test_frame_counter_must_be_a_non_negative_integer(f_cnt: object) -> None:
    assert only_rejection(decode(changed(UP, fCnt=f_cnt))) == rejected(
        Reason.WRONG_TYPE, "fCnt must be a non-negative integer"
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", Reason.INVALID_JSON),
        (b'{"object": {"Bat": Infinity}}', Reason.NON_FINITE),
        (b"\xc3\x28", Reason.UNDECODABLE),
        (b"[1, 2]", Reason.BAD_SHAPE),
        (b'"up"', Reason.BAD_SHAPE),
    ],
)
def test_json_faults(payload: bytes, reason: Reason) -> None:
    rejection = only_rejection(decode(payload))
    assert (rejection.reason, rejection.station_id) == (reason, STATION)
    assert rejection.detail


def check_well_formed(decoded: Decoded) -> None:
    lorawan_fixtures.check_well_formed(decoded, STATION, METRICS, seq_required=False)


EVENTS = st.sampled_from(["up", "status"])


@settings(max_examples=200)
@given(st.binary(max_size=300), EVENTS)
def test_arbitrary_bytes_never_raise(payload: bytes, event: str) -> None:
    check_well_formed(decode_chirpstack(payload, context(event, WITH_MARGIN)))


JSON_VALUES = json_values()


@settings(max_examples=200)
@given(JSON_VALUES, EVENTS)
def test_arbitrary_json_never_raises(document: Any, event: str) -> None:
    check_well_formed(decode(document, context(event, WITH_MARGIN)))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict | list):
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            yield from _paths(child, (*prefix, key))


CASES = [
    (event, document, path)
    for event, document in [("up", UP), ("status", STATUS), ("up", V3_UP), ("status", V3_UP)]
    for path in _paths(document)
    if path
]


@settings(max_examples=200)
@given(st.sampled_from(CASES), JSON_VALUES | st.just(...))
def test_fixtures_with_any_part_replaced_or_removed_never_raise(
    case: tuple[str, dict[str, Any], tuple[Any, ...]], replacement: Any
) -> None:
    event, fixture, path = case
    document = copy.deepcopy(fixture)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if replacement is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    ctx = context(event, WITH_MARGIN, route(event, "123") if fixture is V3_UP else None)
    check_well_formed(decode(document, ctx))


@pytest.mark.parametrize("depth", [50, 5000])
def test_deep_nesting_never_raises(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    check_well_formed(decode_chirpstack(nested.encode(), context()))
    document = json.dumps(changed(UP, object={"Bat": "PLACEHOLDER"})).replace(
        '"PLACEHOLDER"', nested
    )
    check_well_formed(decode_chirpstack(document.encode(), context()))

"""The Things Stack v3 uplinks: a Dragino DDS75 through its profile, and every refusal."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices import MetricSpec
from devices.formats.context import DecodeContext
from devices.formats.ttn import OTHER_MESSAGES, decode_ttn
from devices.readings import Decoded, Reading, Reason, Rejection
from devices.registry import DeviceProfile, FieldMap, load_registry
from devices.topics import TopicScheme, parse_route
from tests.helpers import json_values, only_rejection
from tests.unit import lorawan_fixtures
from tests.unit.lorawan_fixtures import DDS75, DENTE_TELADAS, LORAWAN_METRICS, dente_teladas

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURE = json.loads(
    (REPO / "tests" / "fixtures" / "payloads" / "ttn_uplink.json").read_text(encoding="utf-8")
)
STATION = DENTE_TELADAS
DEVICE = "dds75-dente-teladas"
APPLICATION = "siaga-tulang-bawang"
TOPIC = f"v3/{APPLICATION}@ttn/devices/{DEVICE}/up"
RECEIVED_NS = 1_741_572_942_306_848_000  # uplink_message.received_at, to the microsecond


def context(
    metrics: dict[str, MetricSpec] | None = None, profile: DeviceProfile | None = DDS75
) -> DecodeContext:
    route = parse_route(TOPIC, TopicScheme())
    assert route is not None
    return DecodeContext(dente_teladas(metrics), None, profile, route, max_readings=10)


def uplink(**changes: Any) -> dict[str, Any]:
    """The fixture with ``uplink_message`` fields replaced (None removes one)."""
    document: dict[str, Any] = copy.deepcopy(FIXTURE)
    for key, value in changes.items():
        if value is None:
            document["uplink_message"].pop(key, None)
        else:
            document["uplink_message"][key] = value
    return document


def decode(document: Any, ctx: DecodeContext | None = None) -> Decoded:
    raw = document if isinstance(document, bytes) else json.dumps(document).encode()
    return decode_ttn(raw, ctx or context())


def rejected(reason: Reason, detail: str) -> Rejection:
    return Rejection(reason, detail, STATION)


def test_fixture_becomes_one_reading() -> None:
    decoded = decode(FIXTURE)
    assert decoded.rejections == []
    assert decoded.readings == [
        Reading(
            STATION,
            RECEIVED_NS,
            {"battery_v": 3.384, "water_level_cm": 476.6, "rssi_dbm": -97.0, "snr_db": 6.5},
            4817,
        )
    ]


def test_fixture_decodes_with_the_repository_registry() -> None:
    registry = load_registry(REPO / "config" / "stations.yaml", REPO / "config" / "devices.yaml")
    resolved = registry.for_ttn(APPLICATION, DEVICE)
    assert resolved is not None
    route = parse_route(TOPIC, TopicScheme())
    assert route is not None
    ctx = DecodeContext(resolved.station, resolved.device, resolved.profile, route, 10)
    decoded = decode(FIXTURE, ctx)
    assert decoded.rejections == []
    assert decoded.readings[0].values["water_level_cm"] == 476.6
    assert decoded.readings[0].values["battery_v"] == 3.384


def test_signal_metadata_only_for_metrics_the_station_declares() -> None:
    metrics = {k: v for k, v in LORAWAN_METRICS.items() if k != "snr_db"}
    decoded = decode(FIXTURE, context(metrics))
    assert decoded.rejections == []
    assert decoded.readings[0].values == {
        "battery_v": 3.384,
        "water_level_cm": 476.6,
        "rssi_dbm": -97.0,
    }


def test_omitted_empty_fields_mean_zero() -> None:
    receptions = [{"gateway_ids": {"gateway_id": "gw"}, "rssi": -101}]  # snr 0 is omitted
    decoded = decode(uplink(f_cnt=None, rx_metadata=receptions))
    assert decoded.rejections == []
    reading = decoded.readings[0]
    assert reading.seq == 0
    assert (reading.values["rssi_dbm"], reading.values["snr_db"]) == (-101.0, 0.0)


def test_missing_snr_is_not_zero_without_lora_modulation() -> None:
    fsk = {"data_rate": {"fsk": {"bit_rate": 50000}}, "frequency": "923000000"}
    receptions = [{"rssi": -101}]
    decoded = decode(uplink(settings=fsk, rx_metadata=receptions))
    assert "snr_db" not in decoded.readings[0].values


def test_no_receptions_no_signal_metrics() -> None:
    decoded = decode(uplink(rx_metadata=None))
    assert decoded.readings[0].values == {"battery_v": 3.384, "water_level_cm": 476.6}


def test_top_level_received_at_when_the_uplink_has_none() -> None:
    decoded = decode(uplink(received_at=None))
    assert decoded.readings[0].ts_ns == 1_741_572_942_512_381_000


def test_profile_values_win_over_metadata() -> None:
    profile = DeviceProfile(
        fields={**DDS75.fields, "rssi": FieldMap(metric="rssi_dbm", unit="dBm")},
        distance_absent_mm=0,
        distance_min_valid_mm=280,
    )
    document = uplink(decoded_payload={**FIXTURE["uplink_message"]["decoded_payload"], "rssi": -50})
    assert decode(document, context(profile=profile)).readings[0].values["rssi_dbm"] == -50.0


@pytest.mark.parametrize(
    ("decoded_payload", "values", "rejections"),
    [
        (
            {"Bat": "3.384 V", "distance": "0 mm"},
            {"battery_v": 3.384, "rssi_dbm": -97.0, "snr_db": 6.5},
            [rejected(Reason.SENSOR_FAULT, "distance: no sensor connected (distance 0)")],
        ),
        (
            {"Bat": 3384, "distance": "150 mm"},
            {"battery_v": 3384.0, "rssi_dbm": -97.0, "snr_db": 6.5},
            [
                rejected(
                    Reason.SENSOR_FAULT,
                    "distance: invalid reading: 150 mm is below the 280 mm blind zone",
                )
            ],
        ),
        (
            {"Bat": "3.384 Volt", "distance": 1234},
            {"water_level_cm": 476.6, "rssi_dbm": -97.0, "snr_db": 6.5},
            [rejected(Reason.WRONG_TYPE, "Bat: '3.384 Volt' has an unknown unit 'Volt'")],
        ),
    ],
)
def test_a_bad_field_is_rejected_and_the_rest_kept(
    decoded_payload: dict[str, Any], values: dict[str, float], rejections: list[Rejection]
) -> None:
    decoded = decode(uplink(decoded_payload=decoded_payload))
    assert decoded.readings == [Reading(STATION, RECEIVED_NS, values, 4817)]
    assert decoded.rejections == rejections


def test_every_field_refused_leaves_no_reading() -> None:
    decoded = decode(uplink(decoded_payload={"Bat": None, "distance": 0}))
    assert decoded.readings == []
    assert decoded.rejections == [
        rejected(Reason.WRONG_TYPE, "Bat must be a number or a string such as '3.384 V', got null"),
        rejected(Reason.SENSOR_FAULT, "distance: no sensor connected (distance 0)"),
    ]


def test_no_mapped_field_is_no_metrics() -> None:
    decoded = decode(uplink(decoded_payload={"Interrupt_flag": 0, "Sensor_flag": 1}))
    assert only_rejection(decoded) == rejected(
        Reason.NO_METRICS,
        "decoded_payload has none of the fields this device's profile reads "
        "(Bat, batteryLevel, distance)",
    )


def test_without_a_profile_station_metric_names_are_read() -> None:
    document = uplink(decoded_payload={"water_level_cm": 182.4, "temperature": 30})
    decoded = decode(document, context(profile=None))
    assert decoded.readings[0].values == {
        "water_level_cm": 182.4,
        "rssi_dbm": -97.0,
        "snr_db": 6.5,
    }


def test_no_decoded_payload_asks_for_a_payload_formatter() -> None:
    assert only_rejection(decode(uplink(decoded_payload=None))) == rejected(
        Reason.UNDECODABLE, "uplink has no decoded_payload; configure a payload formatter"
    )


@pytest.mark.parametrize(
    ("document", "detail"),
    [
        ([FIXTURE], "expected a The Things Stack message object, got array"),
        ("uplink", "expected a The Things Stack message object, got string"),
        (
            {k: v for k, v in FIXTURE.items() if k != "uplink_message"},
            "not an uplink message: no uplink_message",
        ),
        (
            {k: v for k, v in FIXTURE.items() if k != "end_device_ids"},
            "end_device_ids must name device_id and application_ids.application_id",
        ),
        (
            {**FIXTURE, "end_device_ids": {"device_id": DEVICE, "application_ids": "app"}},
            "end_device_ids must name device_id and application_ids.application_id",
        ),
        (
            {**FIXTURE, "end_device_ids": {"device_id": 7, "application_ids": {}}},
            "end_device_ids must name device_id and application_ids.application_id",
        ),
        (
            {**FIXTURE, "uplink_message": "DTgE0gAAAAE="},
            "uplink_message must be an object, got string",
        ),
        (
            {**FIXTURE, "simulated": True},
            "simulated uplink (sent from the console), not a measurement",
        ),
        (uplink(decoded_payload=[3.384, 1234]), "decoded_payload must be an object, got array"),
    ],
)
def test_bad_shapes(document: Any, detail: str) -> None:
    assert only_rejection(decode(document)) == rejected(Reason.BAD_SHAPE, detail)


@pytest.mark.parametrize("kind", OTHER_MESSAGES)
def test_other_message_kinds_carry_no_reading(kind: str) -> None:
    document = {
        "end_device_ids": FIXTURE["end_device_ids"],
        "received_at": FIXTURE["received_at"],
        kind: {"session_key_id": "AZV7yQk3m9tq1eXrA0b1cQ=="},
    }
    assert only_rejection(decode(document)) == rejected(
        Reason.BAD_SHAPE, f"a {kind} message carries no reading"
    )


@pytest.mark.parametrize(
    ("device_id", "application_id"),
    [
        ("dds75-lasem", APPLICATION),
        (DEVICE, "other-application"),
        ("DDS75-DENTE-TELADAS", APPLICATION),
    ],
)
def test_identity_must_match_the_topic(device_id: str, application_id: str) -> None:
    document = {
        **FIXTURE,
        "end_device_ids": {
            **FIXTURE["end_device_ids"],
            "device_id": device_id,
            "application_ids": {"application_id": application_id},
        },
    }
    assert only_rejection(decode(document)) == rejected(
        Reason.STATION_MISMATCH,
        f"message is from device {device_id!r} of application {application_id!r} but was "
        f"published on the topic of device {DEVICE!r} of application {APPLICATION!r}",
    )


def test_timestamps() -> None:
    no_time = uplink(received_at=None)
    del no_time["received_at"]
    assert only_rejection(decode(no_time)) == rejected(
        Reason.MISSING_TIMESTAMP, "uplink has no received_at"
    )
    assert only_rejection(decode(uplink(received_at=1741572942))) == rejected(
        Reason.BAD_TIMESTAMP, "received_at must be an RFC 3339 string, got number"
    )
    rejection = only_rejection(decode(uplink(received_at="2025-03-10 02:15:42")))
    assert rejection == rejected(
        Reason.BAD_TIMESTAMP,
        "received_at: ts '2025-03-10 02:15:42' has no UTC offset; add 'Z' or '+07:00'",
    )
    assert only_rejection(decode(uplink(received_at="yesterday"))).reason is Reason.BAD_TIMESTAMP


@pytest.mark.parametrize("f_cnt", [-1, 1.5, "4817", True])
def test_frame_counter_must_be_a_non_negative_integer(f_cnt: object) -> None:
    assert only_rejection(decode(uplink(f_cnt=f_cnt))) == rejected(
        Reason.WRONG_TYPE, "uplink_message.f_cnt must be a non-negative integer"
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"uplink_message": ', Reason.INVALID_JSON),
        (b'{"uplink_message": {"decoded_payload": {"Bat": NaN}}}', Reason.NON_FINITE),
        (b"\xfe\xff", Reason.UNDECODABLE),
    ],
)
def test_json_faults(payload: bytes, reason: Reason) -> None:
    rejection = only_rejection(decode(payload))
    assert (rejection.reason, rejection.station_id) == (reason, STATION)
    assert rejection.detail


def check_well_formed(decoded: Decoded) -> None:
    lorawan_fixtures.check_well_formed(decoded, STATION, LORAWAN_METRICS, seq_required=True)


@settings(max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(payload: bytes) -> None:
    check_well_formed(decode_ttn(payload, context()))


JSON_VALUES = json_values()


@settings(max_examples=200)
@given(JSON_VALUES)
def test_arbitrary_json_never_raises(document: Any) -> None:
    check_well_formed(decode(document))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict | list):
        for key, child in node.items() if isinstance(node, dict) else enumerate(node):
            yield from _paths(child, (*prefix, key))


PATHS = [path for path in _paths(FIXTURE) if path]


@settings(max_examples=200)
@given(st.sampled_from(PATHS), JSON_VALUES | st.just(...))
def test_fixture_with_any_part_replaced_or_removed_never_raises(
    path: tuple[Any, ...], replacement: Any
) -> None:
    document = copy.deepcopy(FIXTURE)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if replacement is ...:
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    check_well_formed(decode(document))


@pytest.mark.parametrize("depth", [50, 5000])
def test_deep_nesting_never_raises(depth: int) -> None:
    nested = "[" * depth + "]" * depth
    check_well_formed(decode_ttn(nested.encode(), context()))
    document = json.dumps(uplink(decoded_payload={"Bat": "PLACEHOLDER"})).replace(
        '"PLACEHOLDER"', nested
    )
    check_well_formed(decode_ttn(document.encode(), context()))

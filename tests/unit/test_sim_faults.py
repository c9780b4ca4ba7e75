"""Faults: each recorded with its expected outcome, and the ingest validator agrees exactly."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache

import numpy as np
import pytest

from devices.formats import DECODERS
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme
from ingest.validation import Limits, Validator
from simulators.encoding import DeviceReading, resolve_sender
from simulators.faults import (
    MALFORMED,
    Fault,
    apply_value_faults,
    malformed_message,
    plan_deliveries,
    spoof_message,
)
from simulators.models import Samples
from simulators.plan import Plan, build_plan
from simulators.scenario import load_scenario
from tests.conftest import REPO_ROOT

START_NS = 1_772_323_200 * 10**9  # 2026-03-01T00:00:00Z
START_MS = START_NS // 10**6


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


@cache
def quiet_day() -> Plan:
    return build_plan(
        load_scenario("quiet-day", REPO_ROOT / "config/scenarios"), registry(), START_NS
    )


def validator() -> Validator:
    return Validator(registry(), TopicScheme(), Limits())


def test_the_validator_does_exactly_what_every_message_of_a_run_expects() -> None:
    """Every message: the readings it stores and the rejections it causes, as the plan says."""
    plan = quiet_day()
    check = validator()
    checked = Counter[str]()
    formats = Counter[str]()
    for message in plan.messages:
        payload_format = plan.senders[message.station].format
        if payload_format not in DECODERS:
            continue  # that decoder is not registered yet; tests/unit/test_sim_encoding covers it
        publish_ns = START_NS + round(message.at_s * 1e9)
        outcome = check.validate(message.message.topic, message.message.payload, publish_ns)
        stored = {(r.station_id, r.ts_ns) for r in outcome.readings}
        assert stored == set(message.message.stored), message
        assert sorted(r.reason.value for r in outcome.rejections) == sorted(message.rejections), (
            message,
            outcome.rejections,
        )
        checked[message.fault or "none"] += 1
        formats[payload_format] += 1
    assert set(formats) == {"native", "senml", "ttn", "chirpstack"} & set(DECODERS)
    assert checked["none"] > 500
    assert checked["backlog"] == 1
    assert checked["spoof"] == 1
    assert sum(v for k, v in checked.items() if k.startswith("malformed:")) == 13


def test_quiet_day_records_every_fault_with_its_outcome() -> None:
    plan = quiet_day()
    by_kind = Counter(record.kind for record in plan.faults)
    assert by_kind == {
        "malformed": 13,
        "duplicate": 2,
        "dropout": 1,
        "backlog": 1,
        "flatline": 1,
        "spike": 1,
        "noise": 1,
        "spoof": 1,
    }
    rejected = Counter(r.reason for r in plan.faults if r.outcome == "rejected")
    assert rejected == plan.rejections()
    assert plan.rejections()["wrong_type"] == 2
    assert sum(plan.rejections().values()) == 14


@pytest.mark.parametrize("kind", sorted(MALFORMED))
def test_each_malformed_kind_is_rejected_once_with_its_reason(kind: str) -> None:
    sender = resolve_sender(registry(), "tb-menggala", TopicScheme())
    outgoing, record = malformed_message(
        kind,
        sender,
        at_s=60,
        ts_ms=START_MS,
        seq=1,
        metric="water_level_cm",
        metric_range=(0.0, 2000.0),
    )
    outcome = validator().validate(outgoing.message.topic, outgoing.message.payload, START_NS)
    assert outcome.readings == []
    assert [r.reason.value for r in outcome.rejections] == [MALFORMED[kind][0].value]
    assert record.outcome == "rejected"
    assert record.reason == MALFORMED[kind][0].value == outgoing.rejections[0]


def test_a_spoof_publishes_on_the_victims_topic_as_the_spoofer() -> None:
    topics = TopicScheme()
    spoofer = resolve_sender(registry(), "tl-tanjung", topics)
    victim = resolve_sender(registry(), "tb-menggala", topics)
    reading = DeviceReading("tl-tanjung", START_MS, {"water_level_cm": 200.0}, seq=5)
    outgoing, record = spoof_message(spoofer, victim, 10.0, reading)
    assert outgoing.message.topic == "siaga/tb-menggala/telemetry"
    assert outgoing.message.account == spoofer.account == "gauge-tl-tanjung"
    assert json.loads(outgoing.message.payload)["station"] == "tl-tanjung"
    outcome = validator().validate(outgoing.message.topic, outgoing.message.payload, START_NS)
    assert [r.reason.value for r in outcome.rejections] == ["station_mismatch"] == [record.reason]


def readings_every(
    minutes: int, count: int, station: str = "tb-menggala"
) -> list[tuple[float, DeviceReading]]:
    return [
        (
            i * minutes * 60.0,
            DeviceReading(
                station, START_MS + i * minutes * 60_000, {"water_level_cm": 100.0 + i}, i
            ),
        )
        for i in range(count)
    ]


def test_a_dropout_is_silence() -> None:
    sender = resolve_sender(registry(), "tb-menggala", TopicScheme())
    readings = readings_every(15, 96)
    faults = [Fault("dropout", "tb-menggala", 3600 * 2, 3600 * 2)]
    outgoing, records = plan_deliveries(readings, sender, faults, seed=1)
    sent = {ts for o in outgoing for _, ts in o.message.stored}
    silent = {r.ts_ms * 10**6 for t, r in readings if 7200 <= t < 14_400}
    assert len(silent) == 8
    assert not sent & silent
    assert len(sent) == 96 - 8
    assert records[0].outcome == "not_sent"
    assert records[0].readings == 8


def test_a_backlog_arrives_late_out_of_order_in_one_array() -> None:
    sender = resolve_sender(registry(), "tb-menggala", TopicScheme())
    readings = readings_every(15, 96)
    faults = [Fault("backlog", "tb-menggala", 3600 * 6, 3600 * 3)]
    outgoing, records = plan_deliveries(readings, sender, faults, seed=1)
    late = [o for o in outgoing if o.fault == "backlog"]
    assert len(late) == 1
    body = json.loads(late[0].message.payload)
    assert isinstance(body, list)
    assert len(body) == 12 == records[0].readings
    stamps = [item["ts"] for item in body]
    assert stamps != sorted(stamps)  # out of order
    assert late[0].at_s > 3600 * 9  # after the outage
    on_time = [o for o in outgoing if o.fault is None]
    assert all(o.at_s < late[0].at_s or o.at_s > 3600 * 9 for o in on_time)
    assert len({ts for o in outgoing for _, ts in o.message.stored}) == 96
    outcome = validator().validate(
        late[0].message.topic, late[0].message.payload, START_NS + 10**14
    )
    assert len(outcome.readings) == 12
    assert not outcome.rejections


def test_duplicates_are_the_same_bytes_twice_and_store_once() -> None:
    sender = resolve_sender(registry(), "tb-menggala", TopicScheme())
    readings = readings_every(15, 96)
    faults = [Fault("duplicate", "tb-menggala", 0, 86_400, count=4)]
    outgoing, records = plan_deliveries(readings, sender, faults, seed=1)
    copies = [o for o in outgoing if o.fault == "duplicate"]
    assert len(copies) == 4 == records[0].readings
    originals = {o.message.payload for o in outgoing if o.fault is None}
    assert all(c.message.payload in originals for c in copies)
    assert len(outgoing) == 100
    assert len({ts for o in outgoing for _, ts in o.message.stored}) == 96


def test_value_faults_change_values_but_keep_them_valid() -> None:
    times = np.arange(0, 86_400, 900, dtype=np.float64)
    values = {"water_level_cm": 150.0 + np.arange(len(times), dtype=np.float64)}
    samples = Samples(
        "tb-menggala",
        np.arange(len(times), dtype=np.int64),
        times,
        START_MS + (times * 1000).astype(np.int64),
        values,
    )
    faults = [
        Fault("flatline", "tb-menggala", 3600, 3600 * 3),
        Fault("spike", "tb-menggala", 3600 * 10, 3600 * 4, count=3, magnitude=5000),
        Fault("noise", "tb-menggala", 3600 * 20, 3600 * 2, magnitude=3),
    ]
    changed, records = apply_value_faults(samples, faults, "water_level_cm", (0.0, 2000.0), 1)
    level = changed.values["water_level_cm"]
    flat = (times >= 3600) & (times < 3600 * 4)
    assert len(set(level[flat])) == 1
    spiked = (times >= 3600 * 10) & (times < 3600 * 14)
    assert np.count_nonzero(level[spiked] != values["water_level_cm"][spiked]) == 3
    assert ((level >= 0) & (level <= 2000)).all()  # clipped to the range: still valid
    assert [r.outcome for r in records] == ["stored"] * 3
    assert [r.readings for r in records] == [12, 3, 8]


@pytest.mark.parametrize(
    ("station", "level_cm"), [("tb-dente-teladas", 590.0), ("rb-lasem", 460.0)]
)
def test_water_in_a_distance_sensors_blind_zone_is_a_sensor_fault(
    station: str, level_cm: float
) -> None:
    """Within 28 cm of a DDS75 (or above it) the level cannot be measured; the battery can."""
    sender = resolve_sender(registry(), station, TopicScheme())
    reading = DeviceReading(station, START_MS, {"water_level_cm": level_cm, "battery_v": 3.4}, 9)
    (outgoing,), _ = plan_deliveries([(0.0, reading)], sender, [], seed=1)
    assert outgoing.rejections == ("sensor_fault",)
    outcome = validator().validate(outgoing.message.topic, outgoing.message.payload, START_NS)
    assert [r.reason.value for r in outcome.rejections] == ["sensor_fault"]
    assert {(r.station_id, r.ts_ns) for r in outcome.readings} == set(outgoing.message.stored)
    assert "water_level_cm" not in outcome.readings[0].values

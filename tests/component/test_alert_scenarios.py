"""The shipped flood scenarios through the engine: the simulators' exact messages, validated by
the ingest core, evaluated as they would arrive (no MQTT needed at this tier)."""

from __future__ import annotations

from datetime import datetime
from functools import cache

import pytest

from alerts.engine import Engine, Scope
from alerts.model import AlertEvent, EventKind
from alerts.rules.config import load_rules
from devices.levels import Level
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme
from ingest.validation import Limits, Validator
from simulators.plan import build_plan
from simulators.scenario import load_scenario
from tests.conftest import REPO_ROOT

NS_PER_S = 1_000_000_000
HOUR_NS = 3600 * NS_PER_S
START_NS = int(datetime.fromisoformat("2026-02-01T00:00:00+07:00").timestamp()) * NS_PER_S


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


@cache
def run(name: str) -> tuple[tuple[int, AlertEvent], ...]:
    """Every event with the moment it was emitted (the arrival of the message that caused it)."""
    plan = build_plan(load_scenario(name, REPO_ROOT / "config/scenarios"), registry(), START_NS)
    validator = Validator(registry(), TopicScheme(), Limits(max_age_s=10 * 365 * 86400.0))
    engine = Engine(
        registry(),
        load_rules(REPO_ROOT / "config/rules.yaml"),
        scope=Scope(stations=frozenset(plan.senders)),
        started_ns=START_NS,
    )
    emitted: list[tuple[int, AlertEvent]] = []
    next_tick = START_NS
    for message in plan.messages:
        now = START_NS + int(message.at_s * NS_PER_S)
        while next_tick <= now:
            emitted += [(next_tick, e) for e in engine.tick(next_tick).events]
            next_tick += 60 * NS_PER_S
        outcome = validator.validate(message.message.topic, message.message.payload, now)
        step = engine.process(outcome.readings, now)
        emitted += [(now, e) for e in step.events]
    return tuple(emitted)


def level_events(name: str, station: str) -> list[AlertEvent]:
    return [e for _, e in run(name) if e.kind is EventKind.LEVEL and e.subject == station]


def assert_one_escalation_per_level_on_the_rise(events: list[AlertEvent], peak: Level) -> None:
    rising = [e for e in events if e.previous is not None and e.severity > e.previous]
    reached = [e.severity for e in rising]
    assert reached == sorted(set(reached)), reached  # each level once, in order
    assert reached[-1] == peak
    first_fall = next((i for i, e in enumerate(events) if e not in rising), len(events))
    assert all(e not in rising for e in events[first_fall:])  # no re-escalation on the way down


def first_warning_lead_h(name: str, station: str) -> float:
    """How long before the station's own first escalation its first upstream warning came."""
    warned = min(at for at, e in run(name) if e.kind is EventKind.UPSTREAM and e.subject == station)
    own = min(e.at_ns for e in level_events(name, station) if e.firing)
    return (own - warned) / HOUR_NS


@pytest.mark.parametrize(
    ("station", "peak"),
    [
        ("ciliwung-katulampa", Level.AWAS),
        ("ciliwung-depok", Level.SIAGA),
        ("ciliwung-manggarai", Level.WASPADA),
    ],
)
def test_jakarta_gates_escalate_once_per_level_and_return_to_normal_once(
    station: str, peak: Level
) -> None:
    events = level_events("jakarta-water-gates", station)
    assert_one_escalation_per_level_on_the_rise(events, peak)
    normal = [e for e in events if e.severity == Level.NORMAL]
    assert len(normal) == 1
    assert events[-1] is normal[0]


@pytest.mark.parametrize("station", ["ciliwung-depok", "ciliwung-manggarai"])
def test_the_ciliwung_warns_downstream_at_least_two_hours_ahead(station: str) -> None:
    assert first_warning_lead_h("jakarta-water-gates", station) >= 2.0
    sources = {
        e.source
        for _, e in run("jakarta-water-gates")
        if e.kind is EventKind.UPSTREAM and e.subject == station
    }
    assert "ciliwung-katulampa" in sources


def test_the_manggarai_spike_is_flagged_and_never_escalates() -> None:
    spikes = [
        e for _, e in run("jakarta-water-gates") if e.rule == "sensor_fault:spike" and e.firing
    ]
    assert [e.subject for e in spikes] == ["ciliwung-manggarai"]
    escalations = [e for e in level_events("jakarta-water-gates", "ciliwung-manggarai") if e.firing]
    assert all(e.at_ns != spikes[0].at_ns for e in escalations)


@pytest.mark.parametrize(
    ("station", "peak"),
    [
        ("wk-blambangan-umpu", Level.SIAGA),
        ("tb-banjar-agung", Level.SIAGA),
        ("tb-menggala", Level.AWAS),
    ],
)
def test_way_tulang_bawang_escalates_once_per_level(station: str, peak: Level) -> None:
    assert_one_escalation_per_level_on_the_rise(
        level_events("way-tulang-bawang-flood", station), peak
    )


def test_menggala_is_warned_from_upstream_long_before_its_water_rises() -> None:
    assert first_warning_lead_h("way-tulang-bawang-flood", "tb-menggala") >= 2.0


def test_the_blambangan_umpu_power_cut_is_one_no_data_incident() -> None:
    silent = [
        (e.subject, e.firing)
        for _, e in run("way-tulang-bawang-flood")
        if e.kind is EventKind.NO_DATA and e.subject == "wk-blambangan-umpu"
    ]
    assert silent == [("wk-blambangan-umpu", True), ("wk-blambangan-umpu", False)]


def test_a_quiet_day_raises_no_level_but_finds_the_faults() -> None:
    events = [e for _, e in run("quiet-day")]
    assert not [e for e in events if e.kind is EventKind.LEVEL]
    fired = {(e.subject, e.rule) for e in events if e.firing}
    assert ("tb-rawajitu-timur", "sensor_fault:flatline") in fired
    assert ("wk-blambangan-umpu", "sensor_fault:spike") in fired
    assert ("tl-tanjung", "no_data") in fired

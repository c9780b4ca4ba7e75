"""Sensor faults: spikes kept out of level decisions, flatlines, low batteries."""

from __future__ import annotations

from alerts.engine import Engine
from alerts.model import EventKind
from alerts.rules import faults
from alerts.rules.config import FaultsRule, RulesConfig
from devices.levels import Level
from tests.alerting import MINUTE_NS, T0, level, registry, station

REGISTRY = registry(station("s"))


def kinds(engine: Engine, readings: list[tuple[float, float]]) -> list[tuple[str, bool, float]]:
    step = engine.process([level("s", m, v) for m, v in readings], T0)
    return [(e.rule, e.firing, (e.at_ns - T0) / MINUTE_NS) for e in step.events]


def test_a_spike_that_returns_is_flagged_and_never_escalates() -> None:
    engine = Engine(REGISTRY, started_ns=T0)
    events = kinds(engine, [(0, 60), (10, 61), (20, 160), (30, 62)])
    assert events == [("sensor_fault:spike", True, 20)]
    assert engine.level_of("s") == Level.NORMAL


def test_a_real_jump_is_confirmed_by_the_next_reading_and_dated_by_its_own_time() -> None:
    engine = Engine(REGISTRY, started_ns=T0)
    events = kinds(engine, [(0, 60), (10, 61), (20, 160), (30, 170)])
    assert ("level", True, 20) in events
    assert not any(rule.startswith("sensor_fault") for rule, _, _ in events)


def test_a_flatline_fires_after_its_time_and_keeps_readings_out_until_the_sensor_moves() -> None:
    rule = FaultsRule(flatline_s=3600, flatline_min_readings=4)
    engine = Engine(REGISTRY, RulesConfig(defaults={"faults": rule}), started_ns=T0)  # type: ignore[arg-type]
    stuck = [(m, 150.0) for m in range(0, 70, 10)]
    events = kinds(engine, [(-10, 90), *stuck])
    assert ("level", True, 0) in events  # 150 was believed at first ...
    assert ("sensor_fault:flatline", True, 60) in events  # ... until an hour of the same
    assert kinds(engine, [(70, 151)]) == [("sensor_fault:flatline", False, 70)]


def test_battery_low_by_state_of_charge_with_recovery_margin() -> None:
    rule = FaultsRule()
    state = faults.INITIAL
    seen = []
    for minutes, pct in [(0, 40), (10, 14), (20, 16), (30, 19)]:
        ts = T0 + minutes * MINUTE_NS
        state, events = faults.evaluate_battery(state, "s", ts, None, pct, rule=rule)
        seen += [(e.firing, minutes) for e in events]
    assert seen == [(True, 10), (False, 30)]


def test_battery_low_in_volts_knows_a_12_volt_system_from_a_cell() -> None:
    assert faults.battery_threshold(FaultsRule(), 12.8) == 11.8
    assert faults.battery_threshold(FaultsRule(), 3.6) == 3.3
    assert faults.battery_threshold(FaultsRule(battery_low_v=12.0), 3.6) == 12.0
    engine = Engine(REGISTRY, started_ns=T0)
    step = engine.process(
        [
            level("s", 0, 50, battery_v=12.6),
            level("s", 10, 50, battery_v=11.7),
        ],
        T0,
    )
    assert [(e.kind, e.rule, e.firing) for e in step.events] == [
        (EventKind.SENSOR_FAULT, "sensor_fault:battery", True)
    ]

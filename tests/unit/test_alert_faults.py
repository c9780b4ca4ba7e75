"""Sensor faults: spikes kept out of level decisions, flatlines, low batteries."""

from __future__ import annotations

from collections.abc import Sequence

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


def test_a_jump_after_a_long_silence_is_not_a_suspect() -> None:
    engine = Engine(REGISTRY, started_ns=T0)
    # Six hours without data, then 90 cm higher: the river moved, the level rises at once.
    events = kinds(engine, [(0, 60), (360, 150)])
    assert events == [("level", True, 360)]


def test_a_jump_with_no_next_reading_counts_after_two_intervals() -> None:
    # The gauge reports a jump past SIAGA and then nothing (washed away by the flood).
    engine = Engine(REGISTRY, started_ns=T0)
    assert kinds(engine, [(0, 60), (10, 70), (20, 210)]) == []
    assert engine.tick(T0 + 39 * MINUTE_NS).events == []
    step = engine.tick(T0 + 40 * MINUTE_NS)  # the interval is 10 minutes
    assert [(e.severity, e.at_ns) for e in step.events if e.rule == "level"] == [
        (Level.SIAGA, T0 + 20 * MINUTE_NS)
    ]
    assert {e.rule for e in step.events} == {"level", "rate:rise_10min", "rate:rise_1h"}
    assert engine.tick(T0 + 41 * MINUTE_NS).events == []


DAY_NS = 24 * 60 * MINUTE_NS


def replayed(
    engine: Engine, readings: Sequence[tuple[float, float]], *, tick_after: int | None = None
) -> list[tuple[str, bool, float]]:
    """Readings a day old, one a second of the wall clock (a replay, the demo at 600x); a tick
    half a second after the reading at index ``tick_after``."""
    found = []
    wall = T0 + DAY_NS
    for i, (minutes, value) in enumerate(readings):
        step = engine.process([level("s", minutes, value)], wall + i * 1_000_000_000)
        if i == tick_after:
            step.extend(engine.tick(wall + i * 1_000_000_000 + 500_000_000))
        found += [(e.rule, e.firing, (e.at_ns - T0) / MINUTE_NS) for e in step.events]
    return found


def test_a_tick_between_a_back_dated_spike_and_its_next_reading_changes_nothing() -> None:
    # Dente Teladas in the demo: a tick landed between its spike and the next reading, and the
    # wall clock, a day past the spike, released it as a real level (Waspada, fast rises).
    series = [(0, 60), (10, 61), (20, 160), (30, 62), (40, 63)]
    alone = replayed(Engine(REGISTRY, started_ns=T0 + DAY_NS), series)
    assert alone == [("sensor_fault:spike", True, 20)]
    for tick_after in range(len(series)):
        engine = Engine(REGISTRY, started_ns=T0 + DAY_NS)
        assert replayed(engine, series, tick_after=tick_after) == alone
        assert engine.level_of("s") == Level.NORMAL


def test_a_back_dated_jump_counts_two_intervals_after_its_stream_stops() -> None:
    # The washed-away gauge of a back-dated stream: its clock runs on from its last reading.
    engine = Engine(REGISTRY, started_ns=T0 + DAY_NS)
    assert replayed(engine, [(0, 60), (10, 70), (20, 210)]) == []
    stopped = T0 + DAY_NS + 2 * 1_000_000_000
    assert engine.tick(stopped + 20 * MINUTE_NS - 1).events == []
    step = engine.tick(stopped + 20 * MINUTE_NS)
    assert [(e.severity, e.at_ns, e.late) for e in step.events if e.rule == "level"] == [
        (Level.SIAGA, T0 + 20 * MINUTE_NS, True)
    ]


def test_a_jump_whose_next_reading_comes_two_intervals_later_counts_as_a_tick_would() -> None:
    # Readings alone decide what a tick would have: two intervals without a next reading make
    # the jump count, whether a tick came in between (live) or not (a replay).
    engine = Engine(REGISTRY, started_ns=T0)
    events = kinds(engine, [(0, 60), (10, 70), (20, 210), (40, 75)])
    assert ("level", True, 20) in events
    assert ("sensor_fault:spike", True, 20) not in events
    live = Engine(REGISTRY, started_ns=T0)
    kinds(live, [(0, 60), (10, 70), (20, 210)])
    ticked = [
        (e.rule, e.firing, (e.at_ns - T0) / MINUTE_NS)
        for e in live.tick(T0 + 40 * MINUTE_NS).events
    ]
    assert ticked + kinds(live, [(40, 75)]) == events

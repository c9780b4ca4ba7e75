"""The level rule: escalation at the first reading past a threshold, hysteresis downwards."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine import Engine
from alerts.model import EventKind
from alerts.rules import level
from alerts.rules.config import LevelRule
from devices.levels import Level, Thresholds
from tests.alerting import MINUTE_NS, T0, registry, station
from tests.alerting import level as reading

THRESHOLDS = Thresholds(waspada_cm=100, siaga_cm=200, awas_cm=300)
RULE = LevelRule()


def run(
    values: Sequence[float],
    thresholds: Thresholds = THRESHOLDS,
    rule: LevelRule = RULE,
    every_min: float = 10,
) -> list[tuple[int, Level, Level | None]]:
    """Feed values at a fixed interval; returns (index, new level, previous) per event."""
    state = level.INITIAL
    found = []
    for index, value in enumerate(values):
        ts = T0 + int(index * every_min * MINUTE_NS)
        state, events = level.evaluate(state, "s", ts, value, thresholds=thresholds, rule=rule)
        found.extend((index, e.severity, e.previous) for e in events)
    return found


def test_escalation_fires_on_the_first_reading_past_a_threshold() -> None:
    assert run([50, 90, 99.9, 100, 150]) == [(3, Level.WASPADA, Level.NORMAL)]


def test_an_exclusive_threshold_needs_more_than_the_threshold() -> None:
    exclusive = Thresholds(waspada_cm=80, siaga_cm=150, awas_cm=200, inclusive=False)
    assert run([80, 80, 80.5], exclusive) == [(2, Level.WASPADA, Level.NORMAL)]


def test_a_jump_of_two_levels_is_one_event() -> None:
    state, events = level.evaluate(level.INITIAL, "s", T0, 250, thresholds=THRESHOLDS, rule=RULE)
    assert [(e.severity, e.previous, e.firing, e.kind) for e in events] == [
        (Level.SIAGA, Level.NORMAL, True, EventKind.LEVEL)
    ]
    assert state.level == Level.SIAGA


def test_falling_below_by_less_than_the_band_keeps_the_level() -> None:
    # The band is 5 % of 200 = 10 cm: 191 is below but inside it.
    assert run([210, 195, 191, 199, 205], every_min=1) == [(0, Level.SIAGA, Level.NORMAL)]


def test_falling_through_the_band_de_escalates_at_once() -> None:
    events = run([210, 189.9], every_min=1)
    assert events[-1] == (1, Level.WASPADA, Level.SIAGA)


def test_back_to_normal_is_a_clearing_event() -> None:
    state, _ = level.evaluate(level.INITIAL, "s", T0, 120, thresholds=THRESHOLDS, rule=RULE)
    _, events = level.evaluate(state, "s", T0 + 1, 90, thresholds=THRESHOLDS, rule=RULE)
    assert [(e.firing, e.severity, e.previous) for e in events] == [
        (False, Level.NORMAL, Level.WASPADA)
    ]


def test_staying_below_for_the_hold_time_de_escalates_to_the_highest_level_read() -> None:
    rule = LevelRule(hold_s=3600)
    # SIAGA at 210, then just under 200 (inside the band) for an hour, every 10 minutes.
    values = [210, 195, 196, 194, 197, 195, 196, 195]
    events = run(values, rule=rule)
    # 195 at index 1 starts the run; index 7 is 60 minutes later.
    assert events == [(0, Level.SIAGA, Level.NORMAL), (7, Level.WASPADA, Level.SIAGA)]


def test_a_reading_back_at_the_threshold_restarts_the_hold() -> None:
    values = [210, 195, 196, 201, 195, 196, 195, 196, 195]
    assert run(values, rule=LevelRule(hold_s=3600)) == [(0, Level.SIAGA, Level.NORMAL)]


def test_an_absolute_band_replaces_the_percentage() -> None:
    rule = LevelRule(recovery_band_cm=30)
    assert run([210, 175, 169], rule=rule, every_min=1)[-1] == (2, Level.WASPADA, Level.SIAGA)


def test_thresholds_are_judged_at_the_reading_s_own_time() -> None:
    later = datetime.fromtimestamp((T0 + 60 * MINUTE_NS) / 1e9, tz=UTC)
    versions = [
        Thresholds(waspada_cm=100, siaga_cm=200, awas_cm=300),
        Thresholds(valid_from=later, waspada_cm=80, siaga_cm=180, awas_cm=280),
    ]
    engine = Engine(registry(station("s", thresholds=versions)), started_ns=T0)
    before = engine.process([reading("s", 30, 90)], T0 + 30 * MINUTE_NS)
    after = engine.process([reading("s", 70, 90)], T0 + 70 * MINUTE_NS)
    assert before.events == []
    assert [e.severity for e in after.events] == [Level.WASPADA]


def test_readings_older_than_the_newest_judged_change_nothing() -> None:
    state, _ = level.evaluate(level.INITIAL, "s", T0 + 10, 50, thresholds=THRESHOLDS, rule=RULE)
    again, events = level.evaluate(state, "s", T0, 500, thresholds=THRESHOLDS, rule=RULE)
    assert (again, events) == (state, [])


def assert_no_flap(events: list[tuple[int, Level, Level | None]]) -> None:
    """Only escalations, each level entered once: the first reading may already be above."""
    levels = [new for _, new, _ in events]
    assert all(previous is not None and new > previous for _, new, previous in events)
    assert levels == sorted(set(levels))
    assert len(events) <= 2  # NORMAL -> below-threshold level -> threshold's level at most


@settings(max_examples=300, deadline=None)
@given(
    threshold=st.sampled_from([100.0, 200.0, 300.0]),
    noise=st.lists(st.floats(-0.95, 0.95), min_size=1, max_size=200),
    every_min=st.floats(0.5, 30),
)
def test_a_noisy_level_hovering_at_a_threshold_never_flaps_without_a_hold(
    threshold: float, noise: list[float], every_min: float
) -> None:
    # Noise within the band around a threshold: at most the one escalation, never a flap.
    band = threshold * 0.05
    values = [threshold + n * band for n in noise]
    events = run(values, rule=LevelRule(hold_s=10 * 365 * 86400.0), every_min=every_min)
    assert_no_flap(events)


@settings(max_examples=300, deadline=None)
@given(
    noise=st.lists(st.floats(-0.95, 0.95), min_size=1, max_size=60),
    every_min=st.floats(0.5, 5),
)
def test_within_the_hold_time_hovering_never_flaps(noise: list[float], every_min: float) -> None:
    # 60 readings at most 5 minutes apart span less than the hold time of 5 hours.
    values = [200 + n * 10 for n in noise]
    assert_no_flap(run(values, rule=LevelRule(hold_s=5 * 3600), every_min=every_min))

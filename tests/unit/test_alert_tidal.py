"""The level rule on a tidal reach: the tide never flaps it, a tidal flood escalates at once."""

from __future__ import annotations

import math
from collections.abc import Sequence

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine import STATE_VERSION, Engine
from alerts.rules import level
from alerts.rules.config import TIDAL_DAY_S, LevelRule, parse_rules
from devices.levels import Level, Thresholds
from tests.alerting import HOUR_NS, MINUTE_NS, T0, registry, station
from tests.alerting import level as reading

THRESHOLDS = Thresholds(waspada_cm=100, siaga_cm=200, awas_cm=300)
TIDAL = LevelRule(tidal=True, recovery_band_cm=10, hold_s=2 * 86400)
M2_H = 12.42
EVERY_MIN = 15.0
Event = tuple[int, Level, Level | None]


def tide_on_flood(
    *,
    peak_high_water_cm: float,
    m2_cm: float,
    diurnal_cm: float,
    phase: float,
    sigma_d: float,
    noise: Sequence[float] = (),
    base_high_water_cm: float = 60.0,
) -> list[float]:
    """A semi-diurnal tide (with a lunar-day inequality) on a slow Gaussian flood wave.

    High water is ``base_high_water_cm`` before and after the flood and
    ``peak_high_water_cm`` at its crest (3 days in); readings every 15 minutes until the
    wave has gone and a whole tidal day more.
    """
    crest_h = 72.0
    hours = crest_h + 3 * sigma_d * 24 + 30
    wave_cm = peak_high_water_cm - base_high_water_cm
    mean = base_high_water_cm - m2_cm - diurnal_cm
    values = []
    for index in range(int(hours * 60 / EVERY_MIN)):
        t_h = index * EVERY_MIN / 60
        wave = wave_cm * math.exp(-(((t_h - crest_h) / (sigma_d * 24)) ** 2))
        tide = m2_cm * math.cos(2 * math.pi * t_h / M2_H + phase) + diurnal_cm * math.cos(
            2 * math.pi * t_h / (2 * M2_H) + phase / 2
        )
        values.append(mean + wave + tide + (noise[index % len(noise)] if noise else 0.0))
    return values


def run(values: Sequence[float], rule: LevelRule = TIDAL) -> list[Event]:
    """Feed values every 15 minutes; returns (index, new level, previous) per event."""
    state = level.INITIAL
    found = []
    for index, value in enumerate(values):
        ts = T0 + int(index * EVERY_MIN * MINUTE_NS)
        state, events = level.evaluate(state, "s", ts, value, thresholds=THRESHOLDS, rule=rule)
        found.extend((index, e.severity, e.previous) for e in events)
        assert len(state.tide) <= level.tide_slots(rule)
    return found


def first_past(values: Sequence[float], threshold: float) -> int:
    return next(i for i, v in enumerate(values) if v >= threshold)


def assert_once_up_and_once_back(values: Sequence[float], events: list[Event]) -> None:
    """Each level reached is entered once, at the first reading past its threshold, in order;
    then the levels only fall, and NORMAL comes back exactly once, at the end."""
    rises = [(i, new) for i, new, previous in events if previous is not None and new > previous]
    top = THRESHOLDS.level_of(max(values))
    assert top > Level.NORMAL
    expected = [
        (first_past(values, threshold), lv)
        for lv, threshold in (
            (Level.WASPADA, THRESHOLDS.waspada_cm),
            (Level.SIAGA, THRESHOLDS.siaga_cm),
            (Level.AWAS, THRESHOLDS.awas_cm),
        )
        if lv <= top
    ]
    assert rises == expected
    falls = events[len(rises) :]
    assert all(previous is not None and new < previous for _, new, previous in falls)
    assert [new for _, new, _ in events].count(Level.NORMAL) == 1
    assert events[-1][1] == Level.NORMAL


def test_without_the_tidal_envelope_the_tide_flaps_the_level_twice_a_day() -> None:
    values = tide_on_flood(peak_high_water_cm=250, m2_cm=60, diurnal_cm=10, phase=0.3, sigma_d=2.0)
    plain = run(values, LevelRule(recovery_band_cm=10, hold_s=2 * 86400))
    assert len([e for e in plain if e[1] == Level.SIAGA]) >= 4  # a flap per flood tide
    assert_once_up_and_once_back(values, run(values))


@settings(max_examples=60, deadline=None)
@given(
    peak=st.floats(110, 390),
    m2_cm=st.floats(20, 100),
    diurnal_share=st.floats(0, 0.5),
    phase=st.floats(0, 2 * math.pi),
    sigma_d=st.floats(1.0, 3.0),
    noise=st.lists(st.floats(-3, 3), min_size=1, max_size=97),
)
def test_a_tidal_flood_escalates_once_per_level_and_returns_to_normal_once(
    peak: float,
    m2_cm: float,
    diurnal_share: float,
    phase: float,
    sigma_d: float,
    noise: list[float],
) -> None:
    # Noise within ±3 cm, under half the 10 cm band: whatever the tide's size and phase, the
    # rise escalates at the first reading past each threshold and nothing flaps.
    values = tide_on_flood(
        peak_high_water_cm=peak,
        m2_cm=m2_cm,
        diurnal_cm=m2_cm * diurnal_share,
        phase=phase,
        sigma_d=sigma_d,
        noise=noise,
    )
    assert_once_up_and_once_back(values, run(values))


def test_a_high_water_past_a_threshold_escalates_on_that_very_reading() -> None:
    # Dec 2024 at Dente Teladas: a spring tide on a swollen river goes over the top. The
    # readings before were far below (ebb); the first one past SIAGA escalates, no waiting.
    values = [60, 110, 150, 120, 70, 40, 90, 160, 205, 230, 190]
    events = run(values)
    assert events == [(1, Level.WASPADA, Level.NORMAL), (8, Level.SIAGA, Level.WASPADA)]


def test_no_step_down_before_the_envelope_covers_a_tidal_day() -> None:
    # State restored without hourly maxima (an older state): WASPADA, and the water is low.
    state = level.LevelState(Level.WASPADA, T0 - MINUTE_NS)
    day_ns = int(TIDAL_DAY_S * 1e9)
    events_at = []
    for minutes in range(0, 30 * 60, 15):
        ts = T0 + minutes * MINUTE_NS
        state, events = level.evaluate(state, "s", ts, 20, thresholds=THRESHOLDS, rule=TIDAL)
        events_at += [ts for _ in events]
    assert len(events_at) == 1
    assert day_ns <= events_at[0] - T0 <= day_ns + 2 * HOUR_NS


def step_down_hour(hole_h: tuple[float, float] | None) -> float:
    """WASPADA at 150 cm, then low water every 15 minutes (but for the hole): when NORMAL?"""
    state, _ = level.evaluate(level.INITIAL, "s", T0, 150, thresholds=THRESHOLDS, rule=TIDAL)
    for minutes in range(15, 48 * 60, 15):
        if hole_h is not None and hole_h[0] * 60 <= minutes < hole_h[1] * 60:
            continue
        ts = T0 + minutes * MINUTE_NS
        state, events = level.evaluate(state, "s", ts, 20, thresholds=THRESHOLDS, rule=TIDAL)
        if events:
            return minutes / 60
    raise AssertionError("never stepped down")


def test_a_silence_that_could_hide_a_high_water_delays_the_step_down() -> None:
    # The 150 cm reading of hour 0 leaves the 27 hourly maxima at hour 27.
    assert step_down_hour(None) == 27
    # Under 3 h without readings changes nothing ...
    assert step_down_hour((10, 12.5)) == 27
    # ... 5 h might have hidden a high water: a whole tidal day of readings after it is
    # needed (from hour 15, 24.84 h: the reading of hour 40).
    assert step_down_hour((10, 15)) == 40


def test_the_hold_counts_on_the_envelope() -> None:
    # High waters settle 5 cm under SIAGA (inside the 10 cm band): SIAGA holds for the tidal
    # day that still remembers the crest and then for hold_s, then steps down to WASPADA.
    rule = LevelRule(tidal=True, recovery_band_cm=10, hold_s=6 * 3600)
    values = [210.0] + [195 - 80 * (1 - math.cos(i * math.pi / 25)) / 2 for i in range(1, 400)]
    events = run(values, rule)
    assert events[0] == (0, Level.SIAGA, Level.NORMAL)
    assert len(events) == 2
    index, new, previous = events[1]
    assert (new, previous) == (Level.WASPADA, Level.SIAGA)
    hours = index * EVERY_MIN / 60
    # The ring spans a tidal day and at most two hours more (whole hours kept).
    assert TIDAL_DAY_S / 3600 + 6 <= hours <= level.tide_slots(rule) + 6


def test_the_ring_keeps_one_maximum_per_hour_and_forgets_older_than_its_slots() -> None:
    tide: tuple[tuple[int, float], ...] = ()
    for minutes in range(0, 3 * 24 * 60, 10):
        tide = level.record_tide(tide, T0 + minutes * MINUTE_NS, minutes % 77, TIDAL)
    assert len(tide) == level.tide_slots(TIDAL) == 27
    first_hour = tide[0][0]
    assert [h for h, _ in tide] == list(range(first_hour, first_hour + 27))
    hour_min = T0 // HOUR_NS * 60
    for hour, highest in tide:
        minutes = range((hour * 60) - hour_min, (hour * 60) - hour_min + 60, 10)
        assert highest == max(m % 77 for m in minutes)


def test_rules_file_marks_a_station_tidal() -> None:
    rules = parse_rules(
        "overrides:\n"
        "  - match: {station: estuary}\n"
        "    level: {tidal: true, recovery_band_cm: 20}\n"
    )
    tidal = rules.for_station(station("estuary"))
    assert tidal.level.tidal
    assert tidal.level.tidal_day_s == TIDAL_DAY_S
    assert not rules.for_station(station("upstream")).level.tidal


def tidal_engine() -> Engine:
    rules = parse_rules(
        "overrides:\n"
        "  - match: {station: estuary}\n"
        "    level: {tidal: true, recovery_band_cm: 10}\n"
    )
    return Engine(registry(station("estuary")), rules, started_ns=T0)


def test_engine_state_keeps_the_ring_small_and_restores_it() -> None:
    engine = tidal_engine()
    values = tide_on_flood(peak_high_water_cm=250, m2_cm=60, diurnal_cm=10, phase=1, sigma_d=1)
    for index, value in enumerate(values[:400]):
        engine.process([reading("estuary", index * EVERY_MIN, value)], T0 + index * 15 * MINUTE_NS)
    snapshot = engine.state()
    blob = snapshot["estuary"]
    assert orjson.loads(blob)["v"] == STATE_VERSION
    assert len(orjson.loads(blob)["lv"][4][1]) == level.tide_slots(TIDAL)
    assert len(blob) < 4096
    again = tidal_engine()
    again.restore(snapshot)
    assert again.state() == snapshot
    assert again._states["estuary"].level.tide == engine._states["estuary"].level.tide


def test_a_version_1_state_still_restores() -> None:
    engine = tidal_engine()
    engine.process([reading("estuary", 0, 150)], T0)
    document = orjson.loads(engine.state()["estuary"])
    document["v"] = 1
    document["lv"] = document["lv"][:4]
    again = tidal_engine()
    again.restore({"estuary": orjson.dumps(document)})
    assert again.level_of("estuary") == Level.WASPADA
    assert again._states["estuary"].level.tide == ()

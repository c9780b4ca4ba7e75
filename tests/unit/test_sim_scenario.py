"""Scenario files: validation naming keys, and the promises the shipped scenarios keep."""

from __future__ import annotations

from datetime import datetime
from functools import cache

import numpy as np
import pytest

from devices.levels import Level
from devices.registry import Registry, load_registry
from simulators.models import M2_PERIOD_S, crest
from simulators.plan import Plan, build_plan, scenario_truth
from simulators.scenario import (
    ScenarioError,
    check_expectations,
    check_scenario,
    first_reached_s,
    load_scenario,
    parse_duration_s,
    parse_scenario,
)
from tests.conftest import REPO_ROOT

SCENARIOS = REPO_ROOT / "config" / "scenarios"
SHIPPED = [
    "way-tulang-bawang-flood",
    "jakarta-water-gates",
    "quiet-day",
    "tabalong-rain-flood",
    "tabalong-dry-fortnight",
]
# A wet-season and a dry-season start: promises must not depend on the day a run starts.
STARTS = ["2026-02-01T00:00:00+07:00", "2026-08-15T13:00:00+07:00"]


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


@cache
def plan(name: str, start: str = STARTS[0]) -> Plan:
    start_ns = int(datetime.fromisoformat(start).timestamp()) * 10**9
    return build_plan(load_scenario(name, SCENARIOS), registry(), start_ns)


def test_the_shipped_scenarios_are_there() -> None:
    assert {p.stem for p in SCENARIOS.glob("*.yaml")} >= set(SHIPPED)


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("name", SHIPPED)
def test_every_promise_of_the_shipped_scenarios_holds(name: str, start: str) -> None:
    scenario = load_scenario(name, SCENARIOS)
    results = check_expectations(scenario, registry(), plan(name, start).truth)
    assert results, f"{name} promises nothing"
    broken = [f"{r.station}: {r.promise} (observed {r.observed})" for r in results if not r.held]
    assert not broken, broken


@pytest.mark.parametrize("name", SHIPPED)
def test_the_promises_hold_whatever_the_phase_of_the_tide_at_the_start(name: str) -> None:
    # Tides follow the calendar (the moon): starts 12.5 h apart over a lunar month meet every
    # phase of the tide and of spring-neap. The shipped scenarios pin theirs (model_start).
    scenario = load_scenario(name, SCENARIOS)
    assert scenario.model_start is not None
    first_ns = int(datetime.fromisoformat(STARTS[0]).timestamp()) * 10**9
    broken = set()
    for pinned in (scenario, scenario.model_copy(update={"model_start": None})):
        for number in range(58):
            truth = scenario_truth(pinned, registry(), first_ns + number * 45_000 * 10**9)
            results = check_expectations(pinned, registry(), truth)
            broken |= {f"{r.station}: {r.promise} ({r.observed})" for r in results if not r.held}
    assert not broken, sorted(broken)


def test_a_pinned_calendar_gives_the_same_levels_whatever_the_day_of_the_run() -> None:
    scenario = load_scenario("way-tulang-bawang-flood", SCENARIOS)
    first, later = (
        scenario_truth(scenario, registry(), int(datetime.fromisoformat(s).timestamp()) * 10**9)
        for s in STARTS
    )
    assert later.grid.start_ns > first.grid.start_ns
    for station, levels in first.levels_cm.items():
        assert np.array_equal(levels, later.levels_cm[station]), station
    free = scenario.model_copy(update={"model_start": None})
    drifting = scenario_truth(free, registry(), later.grid.start_ns)
    tidal = "tb-dente-teladas"
    assert not np.array_equal(drifting.levels_cm[tidal], first.levels_cm[tidal])


@pytest.mark.parametrize("start", STARTS)
def test_menggala_goes_through_every_level_in_order_over_days(start: str) -> None:
    truth = plan("way-tulang-bawang-flood", start).truth
    menggala = registry().get("tb-menggala")
    assert menggala is not None
    when = [first_reached_s(truth, menggala, level) for level in Level]
    assert when[0] == 0.0  # NORMAL from the start
    assert all(w is not None for w in when)
    days = [w / 86_400 for w in when if w is not None]
    assert days == sorted(days)
    assert days[1] >= 1
    assert days[3] - days[1] >= 2


def test_menggala_still_rises_on_day_six_and_recedes_slowly() -> None:
    truth = plan("way-tulang-bawang-flood").truth
    level = truth.levels_cm["tb-menggala"]
    per_day = int(86_400 / truth.grid.step_s)
    day_six = level[6 * per_day] - level[5 * per_day]
    assert 2 <= day_six <= 10
    crest_index = int(np.argmax(level))
    rise_per_day = (level[crest_index] - level[0]) / (crest_index / per_day)
    recession = (level[crest_index] - level[crest_index + 5 * per_day]) / 5
    assert 0 < recession < rise_per_day / 5


@pytest.mark.parametrize("start", STARTS)
def test_katulampa_rises_a_metre_within_the_hour_and_the_gates_follow(start: str) -> None:
    truth = plan("jakarta-water-gates", start).truth
    step = truth.grid.step_s
    katulampa = truth.levels_cm["ciliwung-katulampa"]
    hour = int(3600 / step)
    assert (katulampa[hour:] - katulampa[:-hour]).max() >= 100
    # Siaga 4 (<= 80) to Siaga 1 (> 200) within half an hour, as on 21 Sep 2020.
    first_above_80 = int(np.argmax(katulampa > 80))
    first_above_200 = int(np.argmax(katulampa > 200))
    assert 0 < (first_above_200 - first_above_80) * step <= 1800
    crests = {s: crest(truth.levels_cm[s], step) for s in truth.levels_cm}
    k, d, m = (crests[f"ciliwung-{s}"] for s in ("katulampa", "depok", "manggarai"))
    assert d[0] - k[0] == pytest.approx(180 * 60, abs=step)
    assert m[0] - d[0] == pytest.approx(360 * 60, abs=step)
    waves = {s: crest(truth.waves_cm[s], step)[1] for s in truth.waves_cm}
    assert waves["ciliwung-depok"] < waves["ciliwung-katulampa"]
    assert waves["ciliwung-manggarai"] < waves["ciliwung-depok"]


def dominant_period_h(series: np.ndarray, step_s: float) -> float:
    padded = len(series) * 16
    power = np.abs(np.fft.rfft((series - series.mean()) * np.hanning(len(series)), n=padded)) ** 2
    frequencies = np.fft.rfftfreq(padded, d=step_s)
    with np.errstate(divide="ignore"):
        periods_h = 1 / frequencies / 3600
    band = (periods_h > 6) & (periods_h < 30)
    return float(periods_h[band][np.argmax(power[band])])


def test_the_tidal_station_shows_the_m2_period_under_the_flood() -> None:
    truth = plan("way-tulang-bawang-flood").truth
    step = truth.grid.step_s
    level = truth.levels_cm["tb-dente-teladas"]
    # A 25-hour running mean removes the flood (and averages the tide out): what is left is tide.
    window = int(25 * 3600 / step)
    smooth = np.convolve(level, np.ones(window) / window, mode="same")
    residual = (level - smooth)[window:-window]
    assert dominant_period_h(residual, step) == pytest.approx(M2_PERIOD_S / 3600, abs=0.15)


@pytest.mark.parametrize("name", SHIPPED)
def test_plans_are_reproducible_and_the_seed_matters(name: str) -> None:
    scenario = load_scenario(name, SCENARIOS)
    start_ns = 1_772_323_200 * 10**9
    again = build_plan(scenario, registry(), start_ns)
    assert [m.message.payload for m in again.messages] == [
        m.message.payload for m in plan(name, "2026-03-01T00:00:00+00:00").messages
    ]
    reseeded = build_plan(
        scenario.model_copy(update={"seed": scenario.seed + 1}), registry(), start_ns
    )
    assert [m.message.payload for m in reseeded.messages] != [
        m.message.payload for m in again.messages
    ]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90", 90.0),
        ("90s", 90.0),
        ("15min", 900.0),
        ("6h", 21_600.0),
        ("2d", 172_800.0),
        ("1h30min", 5400.0),
        ("1d 4h", 100_800.0),
        ("1.5h", 5400.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "5 parsecs", "-5s", True, None, "5h junk"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s(text)


MINIMAL = """
duration: 1d
stations: [tb-menggala, tb-banjar-agung, tb-dente-teladas, jr-bedadung-kota]
"""


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("step: 5 parsecs", "step"),
        (
            "events: [{station: tb-menggala, at: soon, peak_cm: 1, time_to_peak: 1h, "
            "recession: 2h}]",
            "events[0].at",
        ),
        (
            "events: [{station: tb-menggala, at: 1h, peak_cm: 1, time_to_peak: 3h, recession: 2h}]",
            "events[0]",
        ),
        (
            "faults: [{kind: malformed, station: tb-menggala, at: 1h, payload: gibberish}]",
            "faults[0]",
        ),
        ("faults: [{kind: dropout, station: tb-menggala, at: 1h}]", "faults[0]"),
        ("faults: [{kind: teleport, station: tb-menggala, at: 1h}]", "faults[0].kind"),
        (
            "expect: [{station: tb-menggala, reaches: SIAGA, stays_below: AWAS, within: [0h, 1h]}]",
            "expect[0]",
        ),
        ("expect: [{station: tb-menggala, reaches: SIAGA}]", "expect[0]"),
        ("surprise: 1", "surprise"),
    ],
)
def test_parse_errors_name_the_key(extra: str, key: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(MINIMAL + extra, "s.yaml")
    assert f"s.yaml: {key}" in str(caught.value)


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("", None),
        (
            "events: [{station: tb-menggala-rain, at: 1h, peak_cm: 1, time_to_peak: 1h, "
            "recession: 2h}]",
            "events[0].station",
        ),
        (
            "events: [{station: tb-menggala, at: 2d, peak_cm: 1, time_to_peak: 1h, recession: 2h}]",
            "events[0].at",
        ),
        (
            "faults: [{kind: malformed, station: tb-dente-teladas, at: 1h, payload: nan}]",
            "faults[0].station",
        ),
        (
            "faults: [{kind: malformed, station: jr-bedadung-kota, at: 1h, payload: nan}]",
            "faults[0].station",
        ),
        (
            "faults: [{kind: spoof, station: tb-menggala, target: jr-bedadung-kota, at: 1h}]",
            "faults[0].target",
        ),
        (
            "faults: [{kind: spoof, station: tb-menggala, target: tb-menggala, at: 1h}]",
            "faults[0].target",
        ),
        (
            "faults: [{kind: dropout, station: tl-tanjung, at: 1h, duration: 1h}]",
            "faults[0].station",
        ),
        ("faults: [{kind: dropout, station: tb-menggala, at: 23h, duration: 2h}]", "faults[0].at"),
        ("links: [{from: tb-menggala, to: tb-banjar-agung, attenuation: 0.5}]", "links[0]"),
        (
            "expect: [{station: tb-menggala, reaches: Siaga 3, within: [0h, 1h]}]",
            "expect[0].reaches",
        ),
        ("expect: [{station: tl-tanjung, stays_below: SIAGA}]", "expect[0].station"),
    ],
)
def test_registry_checks_name_the_key(extra: str, key: str | None) -> None:
    scenario = parse_scenario(MINIMAL + extra, "s.yaml")
    if key is None:
        check_scenario(scenario, registry(), "s.yaml")
        return
    with pytest.raises(ScenarioError) as caught:
        check_scenario(scenario, registry(), "s.yaml")
    assert f"s.yaml: {key}" in str(caught.value)


def test_unknown_stations_are_named() -> None:
    scenario = parse_scenario("duration: 1h\nstations: [tb-menggala, atlantis]", "s.yaml")
    with pytest.raises(ScenarioError, match=r"s.yaml: stations\[1\]: unknown station 'atlantis'"):
        check_scenario(scenario, registry(), "s.yaml")


def test_regional_labels_and_canonical_names_both_work() -> None:
    text = """
duration: 1h
stations: [ciliwung-katulampa]
expect:
  - {station: ciliwung-katulampa, stays_below: Siaga 3}
  - {station: ciliwung-katulampa, stays_below: waspada}
"""
    scenario = parse_scenario(text, "s.yaml")
    check_scenario(scenario, registry(), "s.yaml")
    truth = build_plan(scenario, registry(), 1_772_323_200 * 10**9).truth
    results = check_expectations(scenario, registry(), truth)
    assert [r.promise for r in results] == ["stays below WASPADA"] * 2


def test_a_missing_scenario_lists_the_known_ones() -> None:
    with pytest.raises(ScenarioError, match=r"known scenarios: .*quiet-day"):
        load_scenario("no-such-scenario", SCENARIOS)

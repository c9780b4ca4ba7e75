"""The shipped flood scenarios through the engine: the simulators' exact messages, validated by
the ingest core, evaluated as they would arrive (no MQTT needed at this tier)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerts.engine import Engine, Scope
from alerts.model import AlertEvent, EventKind
from alerts.rules.config import load_rules
from devices.levels import Level
from devices.readings import Reading
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme
from ingest.validation import Limits, Validator
from siaga.cli import app
from simulators.plan import build_plan
from simulators.scenario import load_scenario
from tests.conftest import REPO_ROOT

NS_PER_S = 1_000_000_000
HOUR_NS = 3600 * NS_PER_S
START_NS = int(datetime.fromisoformat("2026-02-01T00:00:00+07:00").timestamp()) * NS_PER_S


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


TIDAL_STATIONS = ("tb-dente-teladas", "tb-rawajitu-timur")


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


def assert_no_tidal_flap(changes: list[tuple[Level, Level]], peak: Level) -> None:
    """(previous, new) level changes: each level entered once on the rise, in order, then only
    falls, and NORMAL again at most once."""
    rises = [new for previous, new in changes if new > previous]
    assert rises == sorted(set(rises)), changes
    assert rises[-1] == peak
    assert all(new < previous for previous, new in changes[len(rises) :]), changes
    assert [new for _, new in changes].count(Level.NORMAL) <= 1, changes


@pytest.mark.parametrize(
    ("station", "peak"), [("tb-dente-teladas", Level.SIAGA), ("tb-rawajitu-timur", Level.WASPADA)]
)
def test_the_tide_never_flaps_the_tidal_reach(station: str, peak: Level) -> None:
    # Every flood tide of the flood crosses a threshold and every ebb falls back: the tidal
    # stations still alert once per level (Dente Teladas floods at high water, Dec 2024-style).
    events = level_events("way-tulang-bawang-flood", station)
    changes = [(e.previous, e.severity) for e in events if e.previous is not None]
    assert_no_tidal_flap(changes, peak)


def test_rawajitu_timur_returns_to_normal_once_the_high_waters_recede() -> None:
    events = level_events("way-tulang-bawang-flood", "tb-rawajitu-timur")
    assert [e.severity for e in events if not e.firing] == [Level.NORMAL]
    assert not events[-1].firing


@cache
def readings(name: str) -> tuple[Reading, ...]:
    """The scenario's valid readings, in the order they arrive."""
    plan = build_plan(load_scenario(name, REPO_ROOT / "config/scenarios"), registry(), START_NS)
    validator = Validator(registry(), TopicScheme(), Limits(max_age_s=10 * 365 * 86400.0))
    found: list[Reading] = []
    for message in plan.messages:
        now = START_NS + int(message.at_s * NS_PER_S)
        found += validator.validate(message.message.topic, message.message.payload, now).readings
    return tuple(found)


def scenario_csv(name: str, path: Path) -> Path:
    """The scenario's valid readings as a backtest CSV (station,ts,metric,value)."""
    lines = ["station,ts,metric,value"]
    for found in readings(name):
        at = datetime.fromtimestamp(found.ts_ns / NS_PER_S, tz=UTC).isoformat()
        lines += [f"{found.station_id},{at},{k},{v!r}" for k, v in found.values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_tidal_flood_escalates_on_the_first_high_water_past_each_threshold() -> None:
    station = "tb-dente-teladas"
    levels = sorted(
        (r.ts_ns, r.values["water_level_cm"])
        for r in readings("way-tulang-bawang-flood")
        if r.station_id == station and "water_level_cm" in r.values
    )
    escalations = [
        (e.at_ns, e.severity)
        for e in level_events("way-tulang-bawang-flood", station)
        if e.previous is not None and e.severity > e.previous
    ]
    thresholds = registry().get(station).thresholds[0]  # type: ignore[union-attr]
    first_past = [
        (next(ts for ts, value in levels if value >= threshold), lv)
        for threshold, lv in (
            (thresholds.waspada_cm, Level.WASPADA),
            (thresholds.siaga_cm, Level.SIAGA),
        )
    ]
    assert escalations == first_past


def test_a_backtest_of_the_flood_shows_no_flap_on_the_tidal_reach(tmp_path: Path) -> None:
    readings = scenario_csv("way-tulang-bawang-flood", tmp_path / "flood.csv")
    args = [
        "alerts",
        "backtest",
        "--readings",
        str(readings),
        "--stations",
        str(REPO_ROOT / "config/stations.yaml"),
        "--rules",
        str(REPO_ROOT / "config/rules.yaml"),
    ]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    per_station = Counter(e["station"] for e in events if e["kind"] == "level")
    assert set(TIDAL_STATIONS) <= set(per_station)
    for station, peak in (("tb-dente-teladas", Level.SIAGA), ("tb-rawajitu-timur", Level.WASPADA)):
        changes = [
            (Level[e["previous"]], Level[e["level"]])
            for e in events
            if e["kind"] == "level" and e["station"] == station
        ]
        assert_no_tidal_flap(changes, peak)
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "re-escalations (a level entered again within a day) │ 0" in table.output
    assert "flaps at tb-" not in table.output


def test_the_backtest_sees_the_tide_flap_a_station_not_marked_tidal(tmp_path: Path) -> None:
    # The overrides before tidal stations: a wide band and a 12 h hold on each reading.
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "overrides:\n"
        "  - match: {station: tb-dente-teladas}\n"
        "    level: {recovery_band_cm: 90, hold_s: 43200}\n"
        "  - match: {station: tb-rawajitu-timur}\n"
        "    level: {recovery_band_cm: 60, hold_s: 43200}\n"
    )
    readings = scenario_csv("way-tulang-bawang-flood", tmp_path / "flood.csv")
    args = ["alerts", "backtest", "--readings", str(readings), "--rules", str(rules)]
    table = CliRunner().invoke(app, [*args, "--stations", str(REPO_ROOT / "config/stations.yaml")])
    assert table.exit_code == 0, table.output
    for station in TIDAL_STATIONS:
        assert f"re-escalations at {station}" in table.output

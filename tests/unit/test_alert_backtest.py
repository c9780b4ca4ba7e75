"""``siaga alerts backtest``: a CSV in any order, replayed through the live engine."""

from __future__ import annotations

import json
import os
import pty
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerts.backtest import BacktestError, parse_csv, replay
from devices.stations import load_stations
from siaga.cli import app
from tests.conftest import REPO_ROOT

runner = CliRunner()
BACKTEST = [sys.executable, "-m", "siaga", "alerts", "backtest"]  # as a user runs it
START = datetime(2020, 9, 21, 10, 0, tzinfo=UTC)
KATULAMPA = [40, 60, 85, 110, 140, 160, 185, 205, 190, 170, 140, 110, 90, 70, 60, 50, 45, 44]


def rows() -> list[str]:
    lines = []
    for index, value in enumerate(KATULAMPA):
        at = (START + timedelta(minutes=10 * index)).isoformat().replace("+00:00", "Z")
        lines.append(f"ciliwung-katulampa,{at},water_level_cm,{value}")
        lines.append(f"ciliwung-katulampa,{at},battery_v,12.6")
    return lines


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    shuffled = rows()
    random.Random(7).shuffle(shuffled)  # need not be sorted
    path = tmp_path / "readings.csv"
    path.write_text("station,ts,metric,value\n" + "\n".join(shuffled) + "\n")
    return path


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)


def backtest_json(*args: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["alerts", "backtest", *args, "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_json_names_levels_and_upstream_warnings(csv_file: Path) -> None:
    events = backtest_json("--readings", str(csv_file), "--stations", "config/stations.yaml")
    levels = [(e["at"], e["previous"], e["level"]) for e in events if e["kind"] == "level"]
    at = [(START + timedelta(minutes=10 * i)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for i in range(18)]
    # Katulampa's exclusive thresholds 80 / 150 / 200; the 5 % band on the way down.
    assert levels[:3] == [
        (at[2], "NORMAL", "WASPADA"),
        (at[5], "WASPADA", "SIAGA"),
        (at[7], "SIAGA", "AWAS"),
    ]
    assert levels[-1][2] == "NORMAL"
    assert sum(1 for _, _, new in levels if new == "NORMAL") == 1
    warnings = [e for e in events if e["kind"] == "upstream" and e["firing"]]
    first = {e["station"]: e for e in reversed(warnings)}

    def later(minutes: int, hours: int) -> str:
        return (START + timedelta(minutes=minutes, hours=hours)).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    # The first warning comes from the fast rise (40 -> 60 cm in 10 minutes), before any
    # threshold; Depok is 3 h downstream, Manggarai 6 h more.
    assert first["ciliwung-depok"]["source"] == "ciliwung-katulampa"
    assert first["ciliwung-depok"]["expected_at"] == later(10, 3)
    assert first["ciliwung-manggarai"]["expected_at"] == later(10, 9)
    awas = [e for e in warnings if e["level"] == "AWAS"]
    assert [(e["station"], e["expected_at"]) for e in awas] == [
        ("ciliwung-depok", later(70, 3)),
        ("ciliwung-manggarai", later(70, 9)),
    ]
    assert {e["kind"] for e in events} <= {"level", "rate", "upstream", "no_data", "sensor_fault"}


def test_the_table_has_a_summary(csv_file: Path) -> None:
    result = runner.invoke(app, ["alerts", "backtest", "--readings", str(csv_file)])
    assert result.exit_code == 0, result.output
    assert "readings replayed" in result.output
    assert "level events" in result.output
    assert "flaps" in result.output
    # Into a pipe (as here) the table is not cut to 80 columns: every moment and id is whole.
    assert "2020-09-21T10:20:00.000Z" in result.output
    assert "ciliwung-katulampa" in result.output


def test_a_rules_file_changes_the_outcome(csv_file: Path, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("defaults: {upstream: {enabled: false}, rate: []}\n")
    events = backtest_json("--readings", str(csv_file), "--rules", str(rules))
    assert {e["kind"] for e in events} == {"level"}


def test_bad_input_is_refused_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("station,ts,metric,value\nx,not-a-time,water_level_cm,1\n")
    result = runner.invoke(app, ["alerts", "backtest", "--readings", str(bad)])
    assert result.exit_code == 2
    assert "line 2" in result.output
    with pytest.raises(BacktestError, match="header"):
        parse_csv("a,b,c,d\n")
    with pytest.raises(BacktestError, match="not a number"):
        parse_csv("station,ts,metric,value\nx,2020-01-01T00:00:00Z,m,high\n")
    assert runner.invoke(app, ["alerts", "backtest"]).exit_code == 2


def test_values_the_live_validator_refuses_are_refused_counted_and_said(tmp_path: Path) -> None:
    # A recording's sentinels (-9999 for "no reading", 9999 for an overflow) and a metric the
    # station does not have: refused as ingest refuses them live, so 9999 cm is no Awas.
    lines = [*rows(), "", "ciliwung-katulampa,2020-09-21T10:05:00Z,water_level_cm,9999"]
    lines += ["ciliwung-katulampa,2020-09-21T10:06:00Z,water_level_cm,9999"]
    lines += ["ciliwung-katulampa,2020-09-21T10:07:00Z,water_level_cm,-9999"]
    lines += ["ciliwung-katulampa,2020-09-21T10:08:00Z,discharge_m3s,12"]
    lines += ["ciliwung-katulampa,2020-09-21T10:09:00Z,water_level_cm,NaN"]
    lines += ["atlantis,2020-09-21T10:09:00Z,water_level_cm,1"]
    path = tmp_path / "sentinels.csv"
    path.write_text("station,ts,metric,value\n" + "\n".join(lines) + "\n")
    result = runner.invoke(app, ["alerts", "backtest", "--readings", str(path), "--json"])
    assert result.exit_code == 0, result.output
    # Into a program (stderr no terminal), both streams merged are events and nothing else.
    events = [json.loads(line) for line in result.output.splitlines()]
    first_awas = next(e["at"] for e in events if e.get("level") == "AWAS" and e["kind"] == "level")
    assert first_awas == "2020-09-21T11:10:00.000Z"  # the real 205 cm, not the sentinel at 10:05
    table = runner.invoke(app, ["alerts", "backtest", "--readings", str(path)])
    assert re.search(r"values refused: out_of_range +│ 3 ", table.stdout)
    assert re.search(r"values refused: unknown_metric +│ 1 ", table.stdout)
    assert re.search(r"readings of unknown stations +│ 1 ", table.stdout)
    assert re.search(r"rows: gaps +│ 1 ", table.stdout)
    # A person at a terminal is told on stderr, beside the events.
    primary, secondary = pty.openpty()
    with os.fdopen(primary, "rb", buffering=0) as terminal:
        done = subprocess.run(
            [*BACKTEST, "--readings", str(path), "--json"],
            stdout=subprocess.PIPE,
            stderr=secondary,
            check=False,
            timeout=120,
            cwd=REPO_ROOT,
        )
        os.close(secondary)
        said = terminal.read(4096).decode()
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == len(events)
    assert said.strip().splitlines() == [
        f"backtest: {len(KATULAMPA)} readings replayed; left out: 1 rows: gaps, "
        "1 readings of unknown stations, 3 values refused: out_of_range, "
        "1 values refused: unknown_metric",
        "1 stations evaluated, only the stations with readings in the file: the deployment's "
        "own registry is narrowed to them (--all-stations judges all of it): "
        "Bendung Katulampa",
    ]


def test_readings_of_which_none_can_be_replayed_are_an_error_not_silence(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.csv"
    path.write_text(
        "station,ts,metric,value\n"
        "katulampa,2020-09-21T10:00:00Z,water_level_cm,40\n"
        "ciliwung-katulampa,2020-09-21T10:00:00Z,tma_cm,40\n"
    )
    result = runner.invoke(app, ["alerts", "backtest", "--readings", str(path), "--json"])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "no reading could be replayed: 1 readings of unknown stations, "
        "1 values refused: unknown_metric"
    )
    empty = tmp_path / "empty.csv"
    empty.write_text("station,ts,metric,value\n")
    done = runner.invoke(app, ["alerts", "backtest", "--readings", str(empty), "--json"])
    assert (done.exit_code, done.output) == (0, "")  # nothing recorded: nothing to say


def test_a_long_replay_reports_its_progress() -> None:
    registry = load_stations(REPO_ROOT / "config" / "stations.yaml")
    readings = parse_csv("station,ts,metric,value\n" + "\n".join(rows())).readings
    told: list[int] = []
    replay(readings, registry, progress=told.append, progress_every=5)
    assert told == [0, 5, 10, 15, len(KATULAMPA)]


def test_a_file_that_is_not_utf8_is_refused_naming_the_byte(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("station,ts,metric,value\npintu-air-cengkareng-drain-é,".encode("latin-1"))
    result = runner.invoke(app, ["alerts", "backtest", "--readings", str(latin1)])
    assert result.exit_code == 2
    assert "byte 51 is not UTF-8" in result.output


def test_rows_of_one_moment_become_one_reading_and_order_does_not_matter() -> None:
    text = "station,ts,metric,value\n" + "\n".join(rows())
    readings = parse_csv(text).readings
    assert len(readings) == len(KATULAMPA)
    assert set(readings[0].values) == {"water_level_cm", "battery_v"}
    registry = load_stations(REPO_ROOT / "config" / "stations.yaml")
    shuffled = text.splitlines()[1:]
    random.Random(3).shuffle(shuffled)
    again = parse_csv("station,ts,metric,value\n" + "\n".join(shuffled)).readings
    ids = [e.id for e in replay(readings, registry).events]
    assert ids == [e.id for e in replay(again, registry).events]
    assert ids


def test_the_siaga_command_runs_it(csv_file: Path) -> None:
    done = subprocess.run(
        [*BACKTEST, "--readings", str(csv_file), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert any(json.loads(line)["kind"] == "level" for line in done.stdout.splitlines())


def test_flaps_count_level_changes_undone_within_an_hour() -> None:
    registry = load_stations(REPO_ROOT / "config" / "stations.yaml")
    at = START
    lines = ["station,ts,metric,value"]
    # Depok (exclusive 200 / 270 / 350): up, down through the band, up again within the hour.
    for minutes, value in [(0, 150), (10, 205), (20, 185), (30, 205), (120, 170)]:
        stamp = (at + timedelta(minutes=minutes)).isoformat()
        lines.append(f"ciliwung-depok,{stamp},water_level_cm,{value}")
    result = replay(parse_csv("\n".join(lines)).readings, registry)
    assert result.flaps() == {"ciliwung-depok": 2}
    assert result.per_kind()["level"] == 4


def test_reescalations_count_a_level_entered_again_within_a_day() -> None:
    registry = load_stations(REPO_ROOT / "config" / "stations.yaml")
    lines = ["station,ts,metric,value"]
    # Depok (exclusive 200 / 270 / 350): up, down through the band for 6 h, up again (a
    # re-escalation), down, and up again two days later (a new flood, not counted).
    for hours, value in [(0, 180), (1, 205), (2, 180), (8, 205), (9, 180), (60, 205)]:
        stamp = (START + timedelta(hours=hours)).isoformat()
        lines.append(f"ciliwung-depok,{stamp},water_level_cm,{value}")
    result = replay(parse_csv("\n".join(lines)).readings, registry)
    assert result.reescalations() == {"ciliwung-depok": 1}
    assert result.flaps() == {}


def _network(tmp_path: Path) -> Path:
    """A registry of two gauges: Katulampa, which reports, and one that never does."""
    path = tmp_path / "network.yaml"
    path.write_text(
        """\
profiles:
  river_gauge:
    water_level_cm: {unit: cm, min: 0, max: 2000}
    battery_v: {unit: V, min: 0, max: 15}
stations:
  - id: ciliwung-katulampa
    name: Bendung Katulampa
    regency: Kota Bogor
    river: Ciliwung
    latitude: -6.6334
    longitude: 106.8370
    interval_s: 600
    profile: river_gauge
    thresholds:
      - {waspada_cm: 80, siaga_cm: 150, awas_cm: 200, inclusive: false, scheme: jakarta-gates}
  - id: cisadane-empang
    name: Pos Empang
    regency: Kota Bogor
    river: Cisadane
    latitude: -6.61
    longitude: 106.79
    interval_s: 600
    profile: river_gauge
    thresholds:
      - {waspada_cm: 100, siaga_cm: 150, awas_cm: 200}
"""
    )
    return path


def test_a_registry_given_explicitly_is_judged_whole_as_live(
    csv_file: Path, tmp_path: Path
) -> None:
    network = _network(tmp_path)
    events = backtest_json("--readings", str(csv_file), "--stations", str(network))
    silent = [e for e in events if e["station"] == "cisadane-empang" and e["kind"] == "no_data"]
    assert silent, "a station silent through the whole file gets its no-data event, as live"
    assert silent[0]["firing"] is True
    # Asked to, only the reporting stations: no word about the silent one.
    narrowed = backtest_json(
        "--readings", str(csv_file), "--stations", str(network), "--only-reporting"
    )
    assert not [e for e in narrowed if e["station"] == "cisadane-empang"]
    table = runner.invoke(app, ["alerts", "backtest", "--readings", str(csv_file), "--stations"])
    assert table.exit_code == 2  # --stations needs its file
    table = runner.invoke(
        app, ["alerts", "backtest", "--readings", str(csv_file), "--stations", str(network)]
    )
    said = " ".join(table.stdout.split())
    assert "2 stations evaluated, every station of" in said
    assert "Bendung Katulampa, Pos Empang" in said


def test_the_deployments_own_registry_is_narrowed_to_the_stations_in_the_file(
    csv_file: Path,
) -> None:
    for given in ([], ["--stations", "config/stations.yaml"]):
        events = backtest_json("--readings", str(csv_file), *given)
        assert not [e for e in events if e["kind"] == "no_data"]
        table = runner.invoke(app, ["alerts", "backtest", "--readings", str(csv_file), *given])
        said = " ".join(table.stdout.split())
        assert "1 stations evaluated, only the stations with readings in the file" in said
        assert "Bendung Katulampa" in said
    everything = backtest_json("--readings", str(csv_file), "--all-stations")
    assert len({e["station"] for e in everything if e["kind"] == "no_data"}) > 1

"""``siaga forecast fit`` and ``siaga forecast backtest``: the command lines other tools use."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from devices.timestamps import format_rfc3339
from forecast import store
from siaga.cli import app
from tests import alerting
from tests.forecasting import HISTORY_CRESTS, waves

runner = CliRunner()
STATIONS = """
stations:
  - id: hulu
    name: Pos Hulu
    regency: Tulang Bawang
    latitude: -4.5
    longitude: 105.2
    metrics: {water_level_cm: {unit: cm, min: 0, max: 2000}}
    downstream: [{station: hilir, travel_min: 180}]
    thresholds: [{waspada_cm: 300, siaga_cm: 400, awas_cm: 500}]
  - id: hilir
    name: Pos Hilir
    regency: Tulang Bawang
    latitude: -4.4
    longitude: 105.3
    metrics: {water_level_cm: {unit: cm, min: 0, max: 2000}}
    thresholds: [{waspada_cm: 150, siaga_cm: 200, awas_cm: 250}]
"""
FLOOD_AT_H = 40 * 24 + 20


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("forecast")
    readings = waves(42 * 24, [*HISTORY_CRESTS[:36], (FLOOD_AT_H, 200)], seed=4)
    lines = ["station,ts,metric,value"]
    lines += [
        f"{r.station_id},{format_rfc3339(r.ts_ns)},water_level_cm,{r.values['water_level_cm']}"
        for r in readings
    ]
    (folder / "readings.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / "stations.yaml").write_text(STATIONS, encoding="utf-8")
    return folder / "readings.csv", folder / "stations.yaml"


def test_backtest_prints_events_then_skill_and_writes_the_forecasts(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    readings, stations = files
    cut = format_rfc3339(alerting.T0 + 39 * 24 * alerting.HOUR_NS)
    out = tmp_path / "forecasts.csv"
    result = runner.invoke(
        app,
        [
            "forecast", "backtest", "--readings", str(readings), "--stations", str(stations),
            "--train-until", cut, "--horizon-h", "6", "--forecasts-out", str(out), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    kinds = [line["kind"] for line in lines]
    first_skill = kinds.index("skill")
    assert set(kinds[first_skill:]) == {"skill"}  # events first, then the skill lines
    warnings = [line for line in lines[:first_skill] if line["kind"] == "forecast"]
    siaga = next(w for w in warnings if w["firing"] and w["level"] == "SIAGA")
    assert siaga["station"] == "hilir"
    assert {"at", "expected_at", "detail"} <= set(siaga)
    assert "diperkirakan mencapai SIAGA" in siaga["detail"]
    crossing = next(
        line
        for line in lines[:first_skill]
        if line["kind"] == "level" and line["station"] == "hilir" and line["level"] == "SIAGA"
    )
    assert siaga["at"] < crossing["at"]
    skills = lines[first_skill:]
    assert [(s["station"], s["lead_h"]) for s in skills] == [
        (station, lead) for station in ("hilir", "hulu") for lead in range(1, 7)
    ]
    assert set(skills[0]) == {
        "kind", "station", "lead_h", "n", "nse", "nse_persistence", "rmse_cm",
        "rmse_persistence_cm",
    }  # fmt: skip
    hilir_3h = skills[2]
    assert hilir_3h["rmse_cm"] < hilir_3h["rmse_persistence_cm"] / 2
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["station", "issued_at", "lead_h", "value", "low", "high"]
    assert {row["lead_h"] for row in rows} == {str(lead) for lead in range(1, 7)}
    assert all(float(r["low"]) <= float(r["value"]) <= float(r["high"]) for r in rows)


def test_backtest_table_names_stations_and_speaks_the_chosen_language(
    files: tuple[Path, Path],
) -> None:
    readings, stations = files
    cut = format_rfc3339(alerting.T0 + 39 * 24 * alerting.HOUR_NS)
    result = runner.invoke(
        app,
        [
            "forecast", "backtest", "--readings", str(readings), "--stations", str(stations),
            "--train-until", cut, "--horizon-h", "6", "--lang", "en",
        ],
        env={"COLUMNS": "400"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    warning = next(line for line in result.stdout.splitlines() if "FORECAST:" in line)
    assert "the water at Pos Hilir is expected to reach" in warning
    assert " hilir " not in warning


def test_backtest_refuses_a_cut_with_nothing_before_it(files: tuple[Path, Path]) -> None:
    readings, stations = files
    result = runner.invoke(
        app,
        [
            "forecast", "backtest", "--readings", str(readings), "--stations", str(stations),
            "--train-until", "2000-01-01T00:00:00Z", "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "nothing to fit on" in result.output


def test_fit_saves_a_new_version_each_time(files: tuple[Path, Path], tmp_path: Path) -> None:
    readings, stations = files
    command = [
        "forecast", "fit", "--readings", str(readings), "--stations", str(stations),
        "--models-dir", str(tmp_path),
    ]  # fmt: skip
    first = runner.invoke(app, command)
    assert first.exit_code == 0, first.output
    assert "hilir" in first.stdout
    assert runner.invoke(app, command).exit_code == 0
    assert store.versions(tmp_path, "hilir") == [1, 2]
    model = store.load(tmp_path, "hilir")
    assert model is not None
    assert model.version == 2
    assert model.method == "arx"
    assert model.skill[2].skill > 0.5
    assert set(store.load_current(tmp_path)) == {"hilir", "hulu"}

"""``siaga simulate``'s arguments (the lead mounts simulate_app under ``siaga``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ops.servers import free_port
from simulators.cli import simulate_app
from tests.conftest import REPO_ROOT

app = typer.Typer()
app.add_typer(simulate_app, name="simulate")
runner = CliRunner()


@pytest.fixture(autouse=True)
def in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("SIAGA_MQTT__URL", raising=False)
    monkeypatch.delenv("SIAGA_MQTT__TOPIC_PREFIX", raising=False)


def test_help_names_the_subcommands_and_options() -> None:
    result = runner.invoke(app, ["simulate", "--help"])
    assert result.exit_code == 0
    for word in (
        "--scenario",
        "--speed",
        "--start",
        "--broker",
        "--credentials",
        "--seed",
        "fleet",
        "replay",
    ):
        assert word in result.output


def test_without_a_scenario_it_shows_help_and_fails() -> None:
    result = runner.invoke(app, ["simulate"])
    assert result.exit_code == 2
    assert "fleet" in result.output


def test_an_unknown_scenario_lists_the_known_ones() -> None:
    result = runner.invoke(app, ["simulate", "--scenario", "no-such-thing"])
    assert result.exit_code == 2
    assert "quiet-day" in result.output


def test_an_unreachable_broker_fails_cleanly() -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["simulate", "--broker", url, "--scenario", "quiet-day"])
    assert result.exit_code == 2
    assert "cannot reach the broker" in result.output


def test_fleet_writes_the_stations_the_worker_needs(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    result = runner.invoke(
        app,
        [
            "simulate",
            "fleet",
            "--stations",
            "30",
            "--interval",
            "5s",
            "--write-stations",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert path.read_text().count("fleet-0000") == 30


def test_fleet_durations_are_checked() -> None:
    result = runner.invoke(app, ["simulate", "fleet", "--interval", "soon"])
    assert result.exit_code == 2
    assert "not a duration" in result.output


def test_replay_reports_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("timestamp,station,metric,value\nnot-a-time,tb-menggala,water_level_cm,1\n")
    result = runner.invoke(app, ["simulate", "replay", str(path)])
    assert result.exit_code == 2
    assert "line 2" in result.output

"""``siaga alerts verify``: warnings against the crossings the readings show, as events."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson
from typer.testing import CliRunner

from alerts.verify import Warning, crossings, verify
from devices.levels import Level
from devices.readings import Reading
from devices.timestamps import format_rfc3339
from siaga.cli import app
from tests import alerting

H = alerting.HOUR_NS
RIVER = alerting.registry(alerting.station("s", waspada=100, siaga=200, awas=300))


def _levels(values: Sequence[float]) -> list[Reading]:
    return [alerting.level("s", 60 * i, v) for i, v in enumerate(values)]


def test_a_level_hovering_at_its_line_is_one_crossing() -> None:
    readings = _levels([90, 150, 99, 150, 99, 150, 90] + [90] * 20 + [150])
    found = crossings(readings, RIVER, episode_gap_s=12 * 3600)
    assert found[("s", Level.WASPADA)] == [alerting.T0 + H, alerting.T0 + 27 * H]
    assert ("s", Level.SIAGA) not in found


def test_hits_misses_false_alarms_and_leads_per_kind() -> None:
    # SIAGA crossed at 10 h and again (a new episode) at 40 h.
    values = [150.0] * 10 + [210.0] * 5 + [150.0] * 25 + [210.0] * 5 + [150.0] * 30
    readings = _levels(values)
    warnings = [
        Warning(alerting.T0 + 6 * H, "s", "forecast", Level.SIAGA, True),  # 4 h ahead: hit
        Warning(alerting.T0 + 8 * H, "s", "forecast", Level.SIAGA, True),  # the same episode
        Warning(alerting.T0 + 60 * H, "s", "forecast", Level.SIAGA, True),  # nothing followed
        Warning(alerting.T0 + 9 * H, "s", "upstream", Level.AWAS, True),  # AWAS warns SIAGA too
        Warning(alerting.T0 + 12 * H, "s", "forecast", Level.SIAGA, False),  # clearing: ignored
    ]
    results = {
        (r.level, r.kind): r.result for r in verify(readings, warnings, RIVER, horizon_s=12 * 3600)
    }
    forecast = results[(Level.SIAGA, "forecast")]
    assert (forecast.hits, forecast.misses, forecast.false_alarms) == (1, 1, 1)
    assert forecast.lead_times_s == (4 * 3600.0,)
    upstream = results[(Level.SIAGA, "upstream")]
    assert (upstream.hits, upstream.misses, upstream.false_alarms) == (1, 1, 0)
    assert upstream.lead_times_s == (3600.0,)
    # An AWAS warning with no AWAS crossing is a false alarm for AWAS.
    assert results[(Level.AWAS, "upstream")].false_alarms == 1
    # The level rule: WASPADA was reached from the start, before the record: no lead to give.
    assert results[(Level.SIAGA, "level")].misses == 2


def test_the_command_reads_a_readings_csv_and_events_as_json_lines(tmp_path: Path) -> None:
    rows = ["station,ts,metric,value"]
    for i, value in enumerate([380.0] * 10 + [520.0] * 5 + [380.0] * 20):  # Siaga: 500 cm
        rows.append(f"tl-tanjung,{format_rfc3339(alerting.T0 + i * H)},water_level_cm,{value}")
    (tmp_path / "r.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    event = {
        "at": format_rfc3339(alerting.T0 + 5 * H),
        "station": "tl-tanjung",
        "kind": "forecast",
        "rule": "forecast",
        "firing": True,
        "level": "SIAGA",
    }
    skill = {"kind": "skill", "station": "tl-tanjung", "lead_h": 1, "n": 3}
    lines = [orjson.dumps(event).decode(), orjson.dumps(skill).decode()]
    (tmp_path / "e.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "alerts", "verify", "--readings", str(tmp_path / "r.csv"), "--events",
            str(tmp_path / "e.jsonl"), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    found = [orjson.loads(line) for line in result.stdout.splitlines()]
    siaga = next(r for r in found if r["level"] == "SIAGA" and r["kind"] == "forecast")
    assert siaga["hits"] == 1
    assert siaga["pod"] == 1.0
    assert siaga["lead_h"] == [5.0]
    table = CliRunner().invoke(
        app,
        [
            "alerts",
            "verify",
            "--readings",
            str(tmp_path / "r.csv"),
            "--events",
            str(tmp_path / "e.jsonl"),
        ],
    )
    assert table.exit_code == 0, table.output
    assert "tl-tanjung" in table.stdout


def test_since_scores_only_what_came_after_it() -> None:
    values = [150.0] * 10 + [210.0] * 5 + [150.0] * 25 + [210.0] * 5 + [150.0] * 30
    warnings = [Warning(alerting.T0 + 36 * H, "s", "forecast", Level.SIAGA, True)]
    results = {
        (r.level, r.kind): r.result
        for r in verify(
            _levels(values), warnings, RIVER, horizon_s=12 * 3600, since_ns=alerting.T0 + 20 * H
        )
    }
    forecast = results[(Level.SIAGA, "forecast")]
    # The crossing at 10 h came before any warning could: not a miss; the one at 40 h a hit.
    assert (forecast.hits, forecast.misses, forecast.false_alarms) == (1, 0, 0)

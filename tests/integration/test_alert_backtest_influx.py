"""``siaga alerts backtest --from/--to``: the same replay over readings stored in InfluxDB."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from typer.testing import CliRunner

from alerts.backtest import read_influx, replay
from alerts.rules.config import load_rules
from devices.readings import Reading
from devices.stations import load_stations
from devices.timestamps import format_rfc3339
from ingest.batch import Batch
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage, registry_tags
from ops.servers import InfluxServer
from siaga.cli import app
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

MIN = 60_000_000_000
# Yesterday, to the minute: inside the retention policy (older points are dropped).
T0 = (time.time_ns() // MIN - 24 * 60) * MIN
KATULAMPA = [40, 60, 85, 110, 140, 160, 185, 205, 190, 170, 140, 110, 90, 70, 60]


def flood() -> list[Reading]:
    return [
        Reading("ciliwung-katulampa", T0 + 10 * i * MIN, {"water_level_cm": v, "battery_v": 12.7})
        for i, v in enumerate(KATULAMPA)
    ]


async def store_and_read(url: str, database: str) -> list[Reading]:
    registry = load_stations(REPO_ROOT / "config" / "stations.yaml")
    settings = InfluxSettings(url=url, database=database)
    async with InfluxStorage(settings, registry_tags(registry)) as storage:
        await storage.prepare()
        await storage.write(Batch(flood()[::-1]))
        return await read_influx(storage, T0, T0 + 200 * MIN, chunk_s=3600)


def test_stored_readings_replay_like_the_file(
    influx_session: InfluxServer, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = asyncio.run(store_and_read(influx_session.url, database))
    assert sorted((r.station_id, r.ts_ns, r.values["water_level_cm"]) for r in stored) == [
        (r.station_id, r.ts_ns, r.values["water_level_cm"]) for r in flood()
    ]
    registry = load_stations(REPO_ROOT / "config" / "stations.yaml")
    rules = load_rules(REPO_ROOT / "config" / "rules.yaml")  # what the CLI uses by default
    expected = [e.id for e in replay(flood(), registry, rules).events]
    assert expected
    assert [e.id for e in replay(stored, registry, rules).events] == expected

    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("SIAGA_INFLUX__URL", influx_session.url)
    monkeypatch.setenv("SIAGA_INFLUX__DATABASE", database)
    result = CliRunner().invoke(
        app,
        [
            "alerts",
            "backtest",
            "--from",
            format_rfc3339(T0),
            "--to",
            format_rfc3339(T0 + 210 * MIN),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.strip()]
    assert [line["id"] for line in lines] == expected

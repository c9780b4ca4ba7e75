"""``siaga alerts verify --from/--to``: readings and alert events stored in InfluxDB."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from typer.testing import CliRunner

from alerts.alert_records import alert_record
from alerts.model import AlertEvent, EventKind
from devices.levels import Level
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

HOUR = 3_600_000_000_000
T0 = (time.time_ns() // HOUR - 48) * HOUR  # two days ago, to the hour: inside the retention
LEVELS = [380.0] * 10 + [520.0] * 5 + [380.0] * 20  # Tanjung: Siaga from 500 cm, at 10 h


async def store(url: str, database: str) -> None:
    registry = load_stations(REPO_ROOT / "config" / "stations.yaml")
    settings = InfluxSettings(url=url, database=database)
    async with InfluxStorage(settings, registry_tags(registry)) as storage:
        await storage.prepare()
        await storage.write(
            Batch(
                [
                    Reading("tl-tanjung", T0 + i * HOUR, {"water_level_cm": v})
                    for i, v in enumerate(LEVELS)
                ]
            )
        )
        warning = AlertEvent(
            at_ns=T0 + 4 * HOUR,
            subject="tl-tanjung",
            kind=EventKind.FORECAST,
            rule="forecast",
            firing=True,
            severity=Level.SIAGA,
            expected_at_ns=T0 + 10 * HOUR,
        )
        await storage.write_alerts([alert_record(warning)])


def test_verify_reads_readings_and_events_from_influxdb(
    influx_session: InfluxServer, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(store(influx_session.url, database))
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("SIAGA_INFLUX__URL", influx_session.url)
    monkeypatch.setenv("SIAGA_INFLUX__DATABASE", database)
    result = CliRunner().invoke(
        app,
        [
            "alerts", "verify", "--from", format_rfc3339(T0),
            "--to", format_rfc3339(T0 + 40 * HOUR), "--json",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    siaga = next(r for r in found if r["level"] == "SIAGA" and r["kind"] == "forecast")
    assert (siaga["hits"], siaga["misses"], siaga["false_alarms"]) == (1, 0, 0)
    assert siaga["lead_h"] == [6.0]

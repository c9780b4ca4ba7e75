"""Registry edits reach a running worker without a restart; device health is stored."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from devices.stations import load_stations
from ops.servers import InfluxServer, MosquittoServer
from tests.conftest import REPO_ROOT
from tests.helpers import influx_count, influx_query, reading_payload, wait_for
from tests.integration.drivers import WorkerProcess, mosquitto_pub

pytestmark = pytest.mark.integration

NEW_STATION = """
  - id: tb-gedung-aji
    name: Way Tulang Bawang at Gedung Aji
    regency: Tulang Bawang
    river: Way Tulang Bawang
    latitude: -4.40
    longitude: 105.40
    profile: river_gauge
"""


def test_add_revoke_and_a_broken_edit_while_running(
    tmp_path: Path, broker_session: MosquittoServer, influx_session: InfluxServer, database: str
) -> None:
    stations = tmp_path / "stations.yaml"
    devices = tmp_path / "devices.yaml"
    shutil.copy(REPO_ROOT / "config/stations.yaml", stations)
    shutil.copy(REPO_ROOT / "config/devices.yaml", devices)
    shipped = len(load_stations(stations).stations())
    prefix = "live"
    worker = WorkerProcess(
        tmp_path / "w",
        broker_session.url,
        influx_session.url,
        database,
        client_id="w-live",
        topic_prefix=prefix,
        shared_group="g-live",
        extra_env={
            "SIAGA_STATIONS__FILE": str(stations),
            "SIAGA_STATIONS__DEVICES_FILE": str(devices),
            "SIAGA_STATIONS__RELOAD_INTERVAL_S": "0.1",
            "SIAGA_HEALTH__ENABLED": "true",
            "SIAGA_HEALTH__INTERVAL_S": "0.3",
        },
    )
    now_ms = time.time_ns() // 1_000_000
    port = broker_session.port

    def publish(station: str, offset_ms: int) -> None:
        mosquitto_pub(
            port,
            f"{prefix}/{station}/telemetry",
            reading_payload(now_ms - offset_ms, seq=offset_ms, water_level_cm=120.0, battery_v=3.7),
        )

    def reloads() -> float:
        return worker.metric("siaga_registry_reloads_total")

    with worker:
        publish("tb-gedung-aji", 1000)
        wait_for(
            lambda: worker.metric('siaga_rejections_total{reason="unknown_station"}') == 1,
            20,
            "unknown station rejected",
        )

        stations.write_text(stations.read_text() + NEW_STATION)
        wait_for(lambda: reloads() == 1, 20, "reload after adding a station")
        assert worker.metric("siaga_registry_stations") == shipped + 1
        publish("tb-gedung-aji", 2000)
        wait_for(lambda: influx_count(influx_session.url, database) == 1, 20, "new station stored")

        document = yaml.safe_load(devices.read_text())
        for entry in document["devices"]:
            if entry["id"] == "gauge-tb-menggala":
                entry["revoked"] = True
        devices.write_text(yaml.safe_dump(document))
        wait_for(lambda: reloads() == 2, 20, "reload after revoking")
        publish("tb-menggala", 3000)
        wait_for(
            lambda: worker.metric('siaga_rejections_total{reason="unknown_device"}') == 1,
            20,
            "revoked device rejected",
        )

        stations.write_text("stations: [this is not a station]\n")
        wait_for(lambda: "registry not reloaded" in worker.log(), 20, "broken edit refused")
        publish("tb-gedung-aji", 4000)
        wait_for(
            lambda: influx_count(influx_session.url, database) == 2,
            20,
            "the last good registry still in use",
        )
        assert reloads() == 2

        def health_of_new_station() -> list[dict[str, object]]:
            series = influx_query(
                influx_session.url,
                database,
                "SELECT * FROM device_health WHERE station = 'tb-gedung-aji'",
            )
            return [dict(zip(s["columns"], s["values"][-1], strict=True)) for s in series]

        wait_for(
            lambda: [h["readings_24h"] for h in health_of_new_station()] == [2],
            20,
            "device health stored, with both readings",
        )
        (health,) = health_of_new_station()
        assert health["battery_v"] == 3.7
        assert health["last_seen_ns"] == (now_ms - 2000) * 1_000_000
        assert health["regency"] == "Tulang Bawang"

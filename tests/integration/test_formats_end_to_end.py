"""LoRaWAN and SenML messages through a real broker and worker into InfluxDB."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from devices.timestamps import format_rfc3339
from ops.servers import InfluxServer, MosquittoServer
from tests.conftest import REPO_ROOT
from tests.helpers import influx_query, wait_for
from tests.integration.drivers import WorkerProcess, mosquitto_pub

pytestmark = pytest.mark.integration

PAYLOADS = REPO_ROOT / "tests" / "fixtures" / "payloads"


def fixture(name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads((PAYLOADS / name).read_text())
    return document


def rows(influx: InfluxServer, database: str, station: str) -> list[dict[str, object]]:
    series = influx_query(
        influx.url, database, f"SELECT * FROM telemetry WHERE station = '{station}'"
    )
    if not series:
        return []
    return [dict(zip(series[0]["columns"], v, strict=True)) for v in series[0]["values"]]


def test_ttn_chirpstack_and_senml_readings_are_stored_in_station_units(
    tmp_path: Path, broker: MosquittoServer, influx_session: InfluxServer, database: str
) -> None:
    hour_ago_ns = (time.time_ns() // 1_000_000_000 - 3600) * 1_000_000_000
    stamp = format_rfc3339(hour_ago_ns)

    ttn = fixture("ttn_uplink.json")
    ttn["received_at"] = stamp
    ttn["uplink_message"]["received_at"] = stamp  # type: ignore[index]
    chirpstack = fixture("chirpstack_up.json")
    chirpstack["time"] = stamp
    senml = json.loads((PAYLOADS / "senml_stage.json").read_text())
    senml[0]["bt"] = hour_ago_ns // 1_000_000_000

    with WorkerProcess(tmp_path / "w", broker.url, influx_session.url, database) as worker:
        mosquitto_pub(
            broker.port,
            "v3/siaga-tulang-bawang@ttn/devices/dds75-dente-teladas/up",
            json.dumps(ttn).encode(),
        )
        mosquitto_pub(
            broker.port,
            "application/5d3b6e1c-2f0a-4f7e-9a51-3c7b0b1e9d42/device/a84041000181c7b2/event/up",
            json.dumps(chirpstack).encode(),
        )
        mosquitto_pub(broker.port, "siaga/jr-bedadung-kota/telemetry", json.dumps(senml).encode())
        # A LoRaWAN device nobody registered: rejected under its own reason.
        mosquitto_pub(
            broker.port, "v3/siaga-tulang-bawang@ttn/devices/stranger/up", json.dumps(ttn).encode()
        )
        wait_for(lambda: worker.metric("siaga_messages_acknowledged_total") == 4, 30, "acked")

    (dente,) = rows(influx_session, database, "tb-dente-teladas")
    assert dente["time"] == hour_ago_ns
    assert dente["water_level_cm"] == 476.6  # mounted at 600 cm, 1234 mm to the water
    assert dente["battery_v"] == 3.384
    assert dente["regency"] == "Tulang Bawang"
    gateways = ttn["uplink_message"]["rx_metadata"]  # type: ignore[index]
    assert dente["rssi_dbm"] == max(g["rssi"] for g in gateways)  # the best reception

    (lasem,) = rows(influx_session, database, "rb-lasem")
    assert lasem["water_level_cm"] == 163.0  # mounted at 450 cm, 2870 mm to the water
    assert lasem["battery_v"] == 3.312

    bedadung = rows(influx_session, database, "jr-bedadung-kota")
    assert [row["water_level_cm"] for row in bedadung] == [226.2, 228.1, 231.5]  # metres → cm

    # (InfluxQL answers nothing for a query that selects only tags, hence `detail`.)
    rejected = influx_query(influx_session.url, database, "SELECT detail, reason FROM rejected")
    assert [v[2] for v in rejected[0]["values"]] == ["unknown_device"]

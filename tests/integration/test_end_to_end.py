"""Real mosquitto, real influxd, the worker as its own process, clients Siaga did not write."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ops.servers import InfluxServer, MosquittoServer
from tests.helpers import influx_count, influx_query, wait_for
from tests.integration.drivers import (
    WorkerProcess,
    mosquitto_pub,
    paho_publish,
    telemetry_messages,
)

pytestmark = pytest.mark.integration


def test_readings_are_stored_once_with_tags_fields_and_their_own_time(
    worker: WorkerProcess,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> None:
    prefix = worker.topic_prefix
    port = broker_session.port
    mosquitto_pub(
        port,
        f"{prefix}/tb-menggala/telemetry",
        b'{"ts": "2026-03-10T05:00:00.250+07:00", "seq": 17, "water_level_cm": 182.4, '
        b'"battery_v": 3.91, "rssi_dbm": -97}',
    )
    recent_ms = time.time_ns() // 1_000_000 - 3_600_000
    gateway_backlog = [{"ts": recent_ms + i * 600_000, "rain_mm": 2.5 * i} for i in range(3)]
    mosquitto_pub(port, f"{prefix}/jr-arjasa-rain/telemetry", json.dumps(gateway_backlog).encode())
    paho_publish(port, telemetry_messages(300, recent_ms, prefix=prefix), f"pub-{database}")
    wait_for(lambda: influx_count(influx_session.url, database) == 301, 30, "301 levels stored")
    wait_for(lambda: influx_count(influx_session.url, database, "rain_mm") == 3, 10, "rain")

    series = influx_query(
        influx_session.url,
        database,
        "SELECT * FROM telemetry WHERE station = 'tb-menggala' AND seq = 17",
    )
    row = dict(zip(series[0]["columns"], series[0]["values"][0], strict=True))
    assert row == {
        "time": 1773093600250000000,  # 2026-03-09T22:00:00.250Z
        "battery_v": 3.91,
        "rssi_dbm": -97.0,
        "seq": 17,
        "water_level_cm": 182.4,
        "rain_mm": None,
        "station": "tb-menggala",
        "regency": "Tulang Bawang",
        "river": "Way Tulang Bawang",
    }
    rain = influx_query(
        influx_session.url,
        database,
        "SELECT rain_mm FROM telemetry WHERE station = 'jr-arjasa-rain'",
    )
    assert [v[1] for v in rain[0]["values"]] == [0.0, 2.5, 5.0]
    assert influx_query(influx_session.url, database, "SELECT * FROM rejected") == []

    # The same messages again (a redelivery): nothing is duplicated.
    paho_publish(port, telemetry_messages(300, recent_ms, prefix=prefix), f"pub2-{database}")
    wait_for(lambda: worker.metric("siaga_messages_received_total") == 602, 30, "re-received")
    wait_for(lambda: worker.metric("siaga_messages_acknowledged_total") == 602, 30, "acked")
    assert influx_count(influx_session.url, database) == 301


BAD_INPUTS = [
    ("tb-menggala", b"\xc3\x28\xa0\xa1", "undecodable"),
    ("tb-menggala", b'{"ts": 1, "water_level_cm": ', "invalid_json"),
    ("tb-menggala", b'{"ts": 1773093600, "water_level_cm": Infinity}', "non_finite"),
    ("tb-menggala", b'"just a string"', "bad_shape"),
    (
        "tb-menggala",
        json.dumps([{"ts": 1773093600, "water_level_cm": 1}] * 1001).encode(),
        "too_many_readings",
    ),
    (
        "tb-menggala",
        b'{"station": "tb-banjar-agung", "ts": 1773093600, "water_level_cm": 5}',
        "station_mismatch",
    ),
    ("tb-menggala", b'{"water_level_cm": 5}', "missing_timestamp"),
    ("tb-menggala", b'{"ts": "10/03/2026 05:00", "water_level_cm": 5}', "bad_timestamp"),
    ("tb-menggala", b'{"ts": 4102444800, "water_level_cm": 5}', "timestamp_in_future"),
    ("tb-menggala", b'{"ts": 946684800, "water_level_cm": 5}', "timestamp_too_old"),
    ("tb-menggala", b'{"ts": 1773093600, "water_level_cm": "182"}', "wrong_type"),
    ("tb-menggala", b'{"ts": 1773093600, "humidity_pct": 80}', "unknown_metric"),
    ("tb-menggala", b'{"ts": 1773093600, "water_level_cm": 2500}', "out_of_range"),
    ("tb-menggala", b'{"ts": 1773093600}', "no_metrics"),
    ("tb-menggala", b"{" + b" " * (65 * 1024) + b"}", "payload_too_large"),
    ("not-a-station", b'{"ts": 1773093600, "water_level_cm": 5}', "unknown_station"),
]


def test_every_kind_of_bad_input_is_stored_with_its_reason(
    worker: WorkerProcess,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> None:
    for station, payload, _ in BAD_INPUTS:
        mosquitto_pub(broker_session.port, f"{worker.topic_prefix}/{station}/telemetry", payload)
    expected = {reason for _, _, reason in BAD_INPUTS}

    def stored_reasons() -> set[str]:
        series = influx_query(
            influx_session.url, database, "SELECT count(detail) FROM rejected GROUP BY reason"
        )
        return {s["tags"]["reason"] for s in series}

    wait_for(
        lambda: worker.metric("siaga_messages_acknowledged_total") == len(BAD_INPUTS), 30, "acked"
    )
    assert stored_reasons() == expected
    for _, _, reason in BAD_INPUTS:
        assert worker.metric(f'siaga_rejections_total{{reason="{reason}"}}') == 1, reason
    assert worker.metric("siaga_messages_acknowledged_total") == len(BAD_INPUTS)
    assert influx_count(influx_session.url, database) == 0
    unknown = influx_query(
        influx_session.url, database, "SELECT * FROM rejected WHERE reason = 'unknown_station'"
    )
    row = dict(zip(unknown[0]["columns"], unknown[0]["values"][0], strict=True))
    assert row["station"] is None  # an unknown id never becomes a tag
    assert row["topic"] == f"{worker.topic_prefix}/not-a-station/telemetry"
    assert "not-a-station" in row["detail"]


def test_sigterm_flushes_and_exits_zero(
    worker: WorkerProcess,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> None:
    recent_ms = time.time_ns() // 1_000_000 - 60_000
    paho_publish(
        broker_session.port,
        telemetry_messages(2000, recent_ms, prefix=worker.topic_prefix),
        f"pub-{database}",
    )
    wait_for(lambda: worker.metric("siaga_messages_received_total") == 2000, 30, "received")
    assert worker.terminate() == 0
    assert influx_count(influx_session.url, database) == 2000
    assert "stopped after flushing" in worker.log()


def test_secrets_are_never_logged(
    tmp_path: Path,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> None:
    secret = "s3cr3t-Pa55word"
    process = WorkerProcess(
        tmp_path / "w",
        broker_session.url.replace("mqtt://", f"mqtt://gauge:{secret}@"),
        influx_session.url,
        database,
        client_id=f"w-secret-{database}",
        extra_env={
            "SIAGA_INFLUX__USERNAME": "siaga",
            "SIAGA_INFLUX__PASSWORD": secret,
            "SIAGA_LOG__LEVEL": "DEBUG",
        },
    )
    with process:
        assert process.terminate() == 0
    assert secret not in process.log()
    assert "subscribed" in process.log()

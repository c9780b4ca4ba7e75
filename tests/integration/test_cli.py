"""The `siaga` command at its boundary: bad configuration, and `siaga up` on a bare machine."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ops.servers import free_port, port_open
from tests.conftest import REPO_ROOT, STATIONS_FILE
from tests.helpers import influx_count, wait_for
from tests.integration.drivers import paho_publish, telemetry_messages

pytestmark = pytest.mark.integration


def siaga(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "siaga", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env.update(values)
    return env


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SIAGA_MQTT__URL", "http://broker:1883", "mqtt.url: scheme must be mqtt://"),
        ("SIAGA_INFLUX__TIMEOUT_S", "-1", "influx.timeout_s: Input should be greater than 0"),
        ("SIAGA_BATCH__MAX_POINTS", "lots", "batch.max_points: Input should be a valid integer"),
        ("SIAGA_STATIONS__FILE", "/nonexistent/stations.yaml", "cannot read"),
    ],
)
def test_bad_configuration_is_refused_at_start_naming_the_key(
    variable: str, value: str, message: str, tmp_path: Path
) -> None:
    result = siaga(
        "ingest",
        env=clean_env(
            **{variable: value},
            SIAGA_SPOOL__DIR=str(tmp_path / "spool"),
            SIAGA_METRICS__ENABLED="false",
        ),
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_keys_in_the_config_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "siaga.yaml"
    config.write_text("mqtt:\n  urll: mqtt://x\n")
    result = siaga("ingest", "--config", str(config), env=clean_env())
    assert result.returncode == 2
    assert "mqtt.urll: unknown setting" in result.stderr


def test_up_starts_a_broker_and_influxdb_where_none_answer(tmp_path: Path) -> None:
    mqtt_port, influx_port, metrics_port = free_port(), free_port(), free_port()
    env = clean_env(
        SIAGA_MQTT__URL=f"mqtt://127.0.0.1:{mqtt_port}",
        SIAGA_INFLUX__URL=f"http://127.0.0.1:{influx_port}",
        SIAGA_SPOOL__DIR=str(tmp_path / "spool"),
        SIAGA_STATIONS__FILE=str(STATIONS_FILE),
        SIAGA_METRICS__PORT=str(metrics_port),
    )
    log = (tmp_path / "up.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "siaga", "up", "--state-dir", str(tmp_path / "state")],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def subscribed() -> bool:
            assert process.poll() is None, (tmp_path / "up.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                    return "siaga_mqtt_connected 1.0" in r.read().decode()
            except OSError:
                return False

        wait_for(subscribed, 60, "siaga up subscribed")
        recent = time.time_ns() // 1_000_000 - 60_000
        paho_publish(mqtt_port, telemetry_messages(500, recent), "pub-up")
        wait_for(
            lambda: influx_count(f"http://127.0.0.1:{influx_port}", "siaga") == 500,
            30,
            "stored in the InfluxDB siaga up started",
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    assert not port_open(mqtt_port)
    assert not port_open(influx_port)
    assert (tmp_path / "state" / "influxdb" / "data").is_dir()


def test_up_on_the_embedded_storage_starts_no_influxdb(tmp_path: Path) -> None:
    mqtt_port, influx_port, metrics_port = free_port(), free_port(), free_port()
    database = tmp_path / "data" / "siaga.sqlite"
    env = clean_env(
        SIAGA_MQTT__URL=f"mqtt://127.0.0.1:{mqtt_port}",
        SIAGA_INFLUX__URL=f"http://127.0.0.1:{influx_port}",
        SIAGA_STORAGE__BACKEND="sqlite",
        SIAGA_STORAGE__SQLITE_PATH=str(database),
        SIAGA_SPOOL__DIR=str(tmp_path / "spool"),
        SIAGA_STATIONS__FILE=str(STATIONS_FILE),
        SIAGA_METRICS__PORT=str(metrics_port),
    )
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "siaga", "up", "--state-dir", str(tmp_path / "state")],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:

        def subscribed() -> bool:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics") as r:
                    return "siaga_mqtt_connected 1.0" in r.read().decode()
            except OSError:
                return False

        def stored() -> int:
            if not database.exists():
                return 0
            connection = sqlite3.connect(database, timeout=10)
            try:
                return int(
                    connection.execute("SELECT count(DISTINCT ts_ns) FROM telemetry").fetchone()[0]
                )
            except sqlite3.OperationalError:
                return 0
            finally:
                connection.close()

        wait_for(subscribed, 60, "siaga up subscribed")
        recent = time.time_ns() // 1_000_000 - 60_000
        paho_publish(mqtt_port, telemetry_messages(500, recent), "pub-up-sqlite")
        wait_for(lambda: stored() == 500, 30, "stored in the SQLite file")
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not port_open(influx_port)
    assert not (tmp_path / "state" / "influxdb").exists()
    assert "embedded SQLite" in log_path.read_text()

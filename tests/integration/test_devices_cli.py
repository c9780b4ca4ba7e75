"""`siaga devices` against a real Mosquitto: issue, rotate and revoke while everything runs."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ops.brokeradmin import BrokerFiles, mosquitto_listener_config
from ops.servers import InfluxServer, MosquittoServer, free_port
from tests.conftest import REPO_ROOT
from tests.helpers import influx_count, reading_payload, wait_for
from tests.integration.drivers import WorkerProcess, run_siaga, siaga_env

pytestmark = pytest.mark.integration


class Cli:
    """Runs `siaga devices ...` with this test's registry and broker files."""

    def __init__(self, directory: Path) -> None:
        self.stations = directory / "stations.yaml"
        self.devices = directory / "devices.yaml"
        shutil.copy(REPO_ROOT / "config/stations.yaml", self.stations)
        shutil.copy(REPO_ROOT / "config/devices.yaml", self.devices)
        broker = directory / "broker"
        self.files = BrokerFiles(broker / "passwd", broker / "acl", broker / "mosquitto.pid")
        self.env = siaga_env(
            SIAGA_STATIONS__FILE=str(self.stations),
            SIAGA_STATIONS__DEVICES_FILE=str(self.devices),
            SIAGA_BROKER__PASSWORD_FILE=str(self.files.password_file),
            SIAGA_BROKER__ACL_FILE=str(self.files.acl_file),
            SIAGA_BROKER__PID_FILE=str(self.files.pid_file),
        )

    def __call__(self, *args: str) -> str:
        result = run_siaga("devices", *args, env=self.env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def password(self, *args: str) -> str:
        return self(*args).strip().splitlines()[-1]


def connect(
    port: int, user: str, password: str, ca: Path | None = None, host: str = "127.0.0.1"
) -> int:
    """Connect (over TLS trusting only ``ca`` when given); the CONNACK reason (0 is success)."""
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"probe-{time.monotonic_ns()}", protocol=paho.MQTTv5
    )
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
    client.username_pw_set(user, password)
    answered = threading.Event()
    outcome: list[int] = []

    def on_connect(
        c: paho.Client, u: object, f: object, reason: paho.ReasonCode, p: object
    ) -> None:
        outcome.append(reason.value)
        answered.set()

    client.on_connect = on_connect
    client.connect(host, port)
    client.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome[0]


def publish(port: int, user: str, password: str, topic: str, payload: bytes) -> None:
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}", protocol=paho.MQTTv5
    )
    client.username_pw_set(user, password)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_issue_rotate_and_revoke_take_effect_on_a_running_broker(
    tmp_path: Path, influx_session: InfluxServer, database: str
) -> None:
    cli = Cli(tmp_path)
    worker_password = cli.password("add-worker", "siaga-ingest-test")
    cli("remove", "gauge-tb-menggala")
    first = cli.password("add", "gauge-menggala-2", "--station", "tb-menggala")
    assert "gauge-menggala-2" in cli("list")
    config = mosquitto_listener_config(cli.files, port=free_port(), bind_address="127.0.0.1")
    with MosquittoServer(
        tmp_path / "mosquitto", allow_anonymous=False, extra_config=config
    ) as broker:
        pid_file = cli.files.pid_file
        assert pid_file is not None
        wait_for(pid_file.exists, 10, "broker pid file")
        port = broker.port
        worker = WorkerProcess(
            tmp_path / "w",
            f"mqtt://siaga-ingest-test:{worker_password}@127.0.0.1:{port}",
            influx_session.url,
            database,
            client_id="w-devices-cli",
            extra_env={k: v for k, v in cli.env.items() if k.startswith("SIAGA_STATIONS")},
        )
        with worker:
            now_ms = time.time_ns() // 1_000_000
            topic = "siaga/tb-menggala/telemetry"
            # Spoofing another station: the broker drops it, so it never reaches InfluxDB.
            spoofed = reading_payload(now_ms - 4000, water_level_cm=999)
            publish(port, "gauge-menggala-2", first, "siaga/tb-banjar-agung/telemetry", spoofed)
            own = reading_payload(now_ms - 3000, water_level_cm=100)
            publish(port, "gauge-menggala-2", first, topic, own)
            wait_for(lambda: influx_count(influx_session.url, database) == 1, 20, "stored")
            assert worker.metric("siaga_messages_received_total") == 1

            # The broker re-reads its files on SIGHUP, asynchronously: wait for it, briefly.
            second = cli.password("rotate", "gauge-menggala-2")
            wait_for(lambda: connect(port, "gauge-menggala-2", second) == 0, 10, "new password")
            assert connect(port, "gauge-menggala-2", first) != 0  # the old one is refused

            cli("revoke", "gauge-menggala-2")
            wait_for(lambda: connect(port, "gauge-menggala-2", second) != 0, 10, "revoked")
            assert "revoked" in cli("list")
            assert connect(port, "nobody", "guess") != 0
            # The worker kept its connection through three reloads.
            assert worker.metric("siaga_mqtt_reconnects_total") == 0
    assert "gauge-menggala-2" not in cli.files.password_file.read_text()


def test_tls_init_gives_a_listener_that_verifies_with_its_ca(
    tmp_path: Path, influx_session: InfluxServer, database: str
) -> None:
    cli = Cli(tmp_path)
    password = cli.password("add-worker", "tls-worker")
    tls_port = free_port()
    output = cli(
        "tls-init",
        "--host",
        "localhost",
        "--host",
        "127.0.0.1",
        "--directory",
        str(tmp_path / "tls"),
        "--port",
        str(tls_port),
    )
    lines = output.split("mosquitto.conf:\n", 1)[1].strip().splitlines()
    with MosquittoServer(tmp_path / "mosquitto", allow_anonymous=False, extra_config=lines):
        ca = tmp_path / "tls" / "ca.pem"
        assert connect(tls_port, "tls-worker", password, ca=ca, host="localhost") == 0
        # The ingest worker over TLS, trusting the same CA.
        url = f"mqtts://tls-worker:{password}@localhost:{tls_port}"
        with WorkerProcess(
            tmp_path / "w",
            url,
            influx_session.url,
            database,
            client_id="w-tls",
            extra_env={"SIAGA_MQTT__CA_FILE": str(ca)},
        ) as w:
            assert w.metric("siaga_mqtt_connected") == 1


def test_list_shows_whole_ids_on_an_80_column_terminal(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    long_id = "gauge-tb-dente-teladas-dermaga-kecamatan-dente-teladas"
    cli("add", long_id, "--station", "tb-dente-teladas")
    cli.env["COLUMNS"] = "80"
    listing = cli("list")
    assert long_id in listing
    assert "dds75-dente-teladas" in listing

"""Drivers for integration tests: a worker in its own process, and real MQTT publishers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from ops.servers import free_port
from tests.conftest import REPO_ROOT, STATIONS_FILE
from tests.helpers import wait_for

STATIONS = [
    "tb-menggala",
    "tb-banjar-agung",
    "wk-blambangan-umpu",
    "ciliwung-depok",
    "ciliwung-manggarai",
    "tl-tanjung",
]


def siaga_env(**values: str) -> dict[str, str]:
    """This process's environment without its ``SIAGA_*`` settings, then ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    env.update(values)
    return env


def run_siaga(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT
) -> subprocess.CompletedProcess[str]:
    """``siaga ARGS`` to its end (a minute at most), its output captured as text.

    Args:
        args: The command line after ``siaga``.
        env: The command's environment (default: this process's, as it is).
        cwd: Where it runs (default: the repository).
    """
    return subprocess.run(
        [sys.executable, "-m", "siaga", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class SiagaProcess:
    """A ``siaga`` command in its own process, its output in a log file (the drivers' base)."""

    directory: Path
    process: subprocess.Popen[bytes] | None
    log_path: Path | None

    def spawn(self, command: list[str], env: dict[str, str], log_name: str) -> None:
        """Start ``siaga <command>`` from the repository with ``env``, logging to a new file."""
        self.log_path = self.directory / f"{log_name}-{time.monotonic_ns()}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "siaga", *command],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self, timeout_s: float = 30) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@dataclass
class WorkerProcess(SiagaProcess):
    """``siaga ingest`` as a separate process, configured through SIAGA_* variables."""

    directory: Path
    broker_url: str
    influx_url: str
    database: str
    client_id: str = "siaga-test-worker"
    topic_prefix: str = "siaga"
    shared_group: str = "siaga-ingest"
    extra_env: dict[str, str] = field(default_factory=dict)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self) -> WorkerProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        env = siaga_env(
            SIAGA_MQTT__URL=self.broker_url,
            SIAGA_MQTT__CLIENT_ID=self.client_id,
            SIAGA_MQTT__TOPIC_PREFIX=self.topic_prefix,
            SIAGA_MQTT__SHARED_GROUP=self.shared_group,
            SIAGA_INFLUX__URL=self.influx_url,
            SIAGA_INFLUX__DATABASE=self.database,
            SIAGA_SPOOL__DIR=str(self.directory / "spool"),
            SIAGA_STATIONS__FILE=str(STATIONS_FILE),
            SIAGA_METRICS__PORT=str(self.metrics_port),
            SIAGA_MQTT__RECONNECT_MAX_S="1",
            SIAGA_BATCH__FLUSH_INTERVAL_S="0.05",
        )
        env.update(self.extra_env)
        self.spawn(["ingest"], env, "worker")
        wait_for(lambda: self.metric("siaga_mqtt_connected") == 1, 30, "worker subscribed")
        return self

    def metrics(self) -> dict[str, float]:
        """The worker's /metrics as name{labels} → value; empty while it does not answer."""
        if self.process is None or self.process.poll() is not None:
            return {}
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2
            ) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def metric(self, name: str) -> float:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"worker exited with {self.process.returncode}:\n{self.log()}")
        return self.metrics().get(name, -1.0)

    def __enter__(self) -> WorkerProcess:
        return self.start()


def telemetry_messages(
    count: int, base_ms: int, prefix: str = "siaga", stations: list[str] = STATIONS, start: int = 0
) -> list[tuple[str, bytes]]:
    """``count`` single-reading messages with distinct identities, round-robin over stations."""
    messages = []
    for i in range(start, start + count):
        station = stations[i % len(stations)]
        payload = {"ts": base_ms + i, "seq": i, "water_level_cm": float(i % 2000), "battery_v": 3.9}
        messages.append((f"{prefix}/{station}/telemetry", json.dumps(payload).encode()))
    return messages


def paho_publish(
    port: int,
    messages: Iterable[tuple[str, bytes]],
    client_id: str,
    protocol: paho.MQTTProtocolVersion = paho.MQTTv311,
) -> None:
    """Publish at QoS 1 with paho and return once the broker acknowledged every message."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=120)
            if not info.is_published():
                raise AssertionError(f"publish {info.mid} not acknowledged by the broker")
    finally:
        client.disconnect()
        client.loop_stop()


def mosquitto_pub(port: int, topic: str, payload: bytes, qos: int = 1) -> None:
    """Publish one message with the C client (a client Siaga did not write)."""
    subprocess.run(
        ["mosquitto_pub", "-p", str(port), "-q", str(qos), "-t", topic, "-s"],
        input=payload,
        check=True,
        timeout=10,
    )

"""``siaga up --demo`` as a newcomer runs it: the platform comes up, a flood alert fires, Ctrl-C
stops everything with no child left, and a second ``up`` on the same data directory keeps the data.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import sql_engine
from ingest.settings import ValidationSettings
from ops.servers import free_port
from tests.conftest import REPO_ROOT
from tests.helpers import wait_for
from tests.integration.drivers import run_siaga, siaga_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Up:
    """A ``siaga up`` child process whose output is collected as it runs."""

    def __init__(self, data_dir: Path, port: int, *args: str, cwd: Path = REPO_ROOT) -> None:
        # Nothing of this machine's own services: an InfluxDB that does not answer.
        env = siaga_env(SIAGA_INFLUX__URL=f"http://127.0.0.1:{free_port()}")
        self.port = port
        self.data_dir = data_dir
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "siaga",
                "up",
                "--data-dir",
                str(data_dir),
                "--port",
                str(port),
                *args,
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout_s: float = 180) -> None:
        wait_for(
            lambda: "ready" in self.lines or self.process.poll() is not None,
            timeout_s,
            "siaga up to say ready",
        )
        assert self.process.poll() is None, self.output

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self.close()

    def close(self) -> int:
        """Wait for the process to end, then release its output pipe."""
        code = self.process.wait(timeout=120)
        self._reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read()


def _incidents(data_dir: Path) -> list[dict[str, object]]:
    # Found through the record `siaga up` keeps in its data directory, not told the database.
    result = run_siaga(
        "alerts", "--data-dir", str(data_dir), "list", "--all", "--json", env=siaga_env()
    )
    if result.returncode != 0:
        return []
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _awas_at_menggala(data_dir: Path) -> bool:
    return any(
        "tb-menggala" in json.dumps(incident) and "AWAS" in json.dumps(incident)
        for incident in _incidents(data_dir)
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "siaga-data"


@pytest.mark.parametrize("storage", ["auto", "sqlite"])
def test_up_demo_fires_a_flood_alert_stops_cleanly_and_keeps_its_data(
    data_dir: Path, storage: str
) -> None:
    port = free_port()
    up = Up(data_dir, port, "--demo", "--demo-speed", "14400", "--storage", storage)
    try:
        up.wait_ready()
        status, _ = _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200
        assert "first admin" in up.output.lower() or "admin" in up.output
        # A user added beside it (the hint it prints) can sign in.
        added = run_siaga(
            "users",
            "--data-dir",
            str(data_dir),
            "add",
            "siti",
            "--role",
            "operator",
            "--password",
            "a long secret",
            env=siaga_env(),
        )
        assert added.returncode == 0, added.stderr
        login = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/login",
            data=json.dumps({"username": "siti", "password": "a long secret"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(login, timeout=5) as response:
            assert response.status == 200
        wait_for(lambda: _awas_at_menggala(data_dir), 240, "an AWAS incident at Menggala")
        children = up.children()
        assert {"broker", "ingest", "alerts", "web"} <= {
            line.split()[1] for line in up.lines if line.startswith("started ")
        }
    finally:
        code = up.interrupt()
    assert code == 0, up.output
    for child in children:
        assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, child
    before = _incidents(data_dir)
    assert before

    again = Up(data_dir, port, "--storage", storage)
    try:
        again.wait_ready()
        assert "demo" not in {
            line.split()[1] for line in again.lines if line.startswith("started ")
        }, "the demo runs only on a first run"
        assert len(_incidents(data_dir)) >= len(before)
    finally:
        assert again.interrupt() == 0, again.output


def test_up_writes_nothing_outside_its_data_directory(tmp_path: Path) -> None:
    # A fresh clone: the code's own folders, the working directory, and nothing else.
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "config").symlink_to(REPO_ROOT / "config", target_is_directory=True)
    data_dir = tmp_path / "data"
    port = free_port()
    up = Up(data_dir, port, "--no-demo", "--storage", "sqlite", cwd=clone)
    try:
        up.wait_ready()
        # A reading past Awas at Menggala, from its device: every part writes something.
        publish_as_device(data_dir, "tb-menggala", {"water_level_cm": 520.0})
        wait_for(
            lambda: (data_dir / "spool-alerts").is_dir() or (clone / "var").exists(),
            30,
            "the engine to open its spool",
        )
        # Embedded storage: the web UI reads the readings there, the engine writes its alert
        # events beside them (both read storage.backend, as the worker does).
        password = re.search(r"user admin\s+password (\S+)", up.output)
        assert password is not None, up.output
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as web:
            signed_in = web.post(
                "/api/v1/login", json={"username": "admin", "password": password.group(1)}
            )
            assert signed_in.status_code == 200, signed_in.text

            def shown() -> object:
                answer = web.get("/api/v1/stations/tb-menggala")
                return answer.json()["value_cm"] if answer.status_code == 200 else answer.text

            wait_for(lambda: shown() == 520.0, 30, "the web UI to show the reading")
        wait_for(
            lambda: _stored_alerts(data_dir / "readings.db", "tb-menggala") > 0,
            30,
            "the engine's alert event in the embedded storage",
        )
    finally:
        assert up.interrupt() == 0, up.output
    written = sorted(str(p.relative_to(clone)) for p in clone.rglob("*") if p.name != "config")
    assert written == [], f"written outside the data directory: {written}"
    # Its broker refuses at publish what the worker would not take (tests/integration/
    # test_oversized.py shows the device hearing it).
    limit = ValidationSettings().broker_max_packet_bytes
    assert f"max_packet_size {limit}\n" in (data_dir / "broker/mosquitto.conf").read_text()


def publish_as_device(data_dir: Path, station: str, values: dict[str, float]) -> None:
    """One reading now, published by the station's device with its own credentials."""
    port = json.loads((data_dir / "state.json").read_text())["mqtt_port"]
    device = f"gauge-{station}"
    password = json.loads((data_dir / "secrets.json").read_text())[device]
    payload = json.dumps({"ts": time.time(), **values})
    login = ["-u", device, "-P", password]
    message = ["-t", f"siaga/{station}/telemetry", "-m", payload]
    subprocess.run(
        ["mosquitto_pub", "-V", "mqttv5", "-p", str(port), "-q", "1", *login, *message],
        check=True,
        timeout=30,
    )


def _stored_alerts(readings_db: Path, station: str) -> int:
    if not readings_db.exists():
        return 0
    with contextlib.closing(sqlite3.connect(readings_db)) as connection:
        try:
            row = connection.execute(
                "SELECT count(*) FROM alerts WHERE station = ?", (station,)
            ).fetchone()
        except sqlite3.OperationalError:  # not created yet
            return 0
    return int(row[0])


def test_a_second_up_on_a_data_directory_in_use_is_refused(data_dir: Path) -> None:
    port = free_port()
    up = Up(data_dir, port, "--no-demo", "--storage", "sqlite")
    try:
        up.wait_ready()
        second = run_siaga("up", "--data-dir", str(data_dir))
        assert second.returncode == 2
        assert "already running on the data directory" in second.stderr
        assert f"pid {up.process.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        assert up.interrupt() == 0, up.output


def test_ctrl_c_stops_up_within_five_seconds_with_a_page_open(data_dir: Path) -> None:
    port = free_port()
    up = Up(data_dir, port, "--no-demo", "--storage", "sqlite")
    try:
        up.wait_ready()
        accounts = Accounts(sql_engine(f"sqlite:///{data_dir / 'siaga.db'}"))
        _, key = accounts.add_key("page", Role.VIEWER, "an open page", time.time_ns())
        with httpx.stream(
            "GET",
            f"http://127.0.0.1:{port}/api/v1/events",
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ) as stream:
            assert stream.status_code == 200
            # Held, as a page holds it (a dropped iterator would close the connection).
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            interrupted = time.monotonic()
            up.process.send_signal(signal.SIGINT)
            code = up.close()
            stopped_s = time.monotonic() - interrupted
            rest = list(lines)  # the stream ended cleanly
    finally:
        if up.process.poll() is None:
            up.interrupt()
    assert code == 0, up.output
    assert "did not stop" not in up.output
    assert ": keepalive" not in rest
    assert stopped_s < 5, f"siaga up took {stopped_s:.1f} s to stop with a page open"
    print(f"siaga up stopped {stopped_s:.1f} s after Ctrl-C with an event stream open")


def test_a_taken_web_port_is_named_without_a_traceback(data_dir: Path) -> None:
    with socket_listening() as port:
        result = run_siaga("up", "--data-dir", str(data_dir), "--port", str(port), "--no-demo")
    assert result.returncode == 2
    assert f"port {port}" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_existing_port_that_is_not_an_mqtt5_broker_is_refused(data_dir: Path) -> None:
    with socket_listening() as port:
        result = run_siaga(
            "up",
            "--data-dir",
            str(data_dir),
            "--port",
            str(free_port()),
            "--broker",
            f"mqtt://127.0.0.1:{port}",
            "--no-demo",
        )
    assert result.returncode == 2
    assert "broker could not start" in result.stderr
    assert "not an MQTT 5 broker" in result.stderr
    assert "Traceback" not in result.stderr


@contextlib.contextmanager
def socket_listening() -> Iterator[int]:
    """A TCP listener that accepts and says nothing, on a free port."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def test_kill_9_of_up_leaves_no_orphan(data_dir: Path) -> None:
    up = Up(data_dir, free_port(), "--no-demo", "--storage", "sqlite")
    try:
        up.wait_ready()
        children = up.children()
        assert len(children) >= 5, [c.cmdline() for c in children]
        up.process.kill()
        up.process.wait(timeout=30)

        def all_gone() -> bool:
            return not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)

        wait_for(all_gone, 30, "every child of a killed siaga up to end")
    finally:
        if up.process.poll() is None:
            up.process.kill()
        up.close()

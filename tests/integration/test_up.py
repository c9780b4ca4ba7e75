"""``siaga up --demo`` as a newcomer runs it: the platform comes up, a flood alert fires, Ctrl-C
stops everything with no child left, and a second ``up`` on the same data directory keeps the data.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from ops.servers import free_port
from tests.conftest import REPO_ROOT
from tests.helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Up:
    """A ``siaga up`` child process whose output is collected as it runs."""

    def __init__(self, data_dir: Path, port: int, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
        # Nothing of this machine's own services: an InfluxDB that does not answer.
        env["SIAGA_INFLUX__URL"] = f"http://127.0.0.1:{free_port()}"
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
            cwd=REPO_ROOT,
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "siaga",
            "alerts",
            "--data-dir",
            str(data_dir),
            "list",
            "--all",
            "--json",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
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
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")}
        added = subprocess.run(
            [
                sys.executable,
                "-m",
                "siaga",
                "users",
                "--data-dir",
                str(data_dir),
                "add",
                "siti",
                "--role",
                "operator",
                "--password",
                "a long secret",
            ],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
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


def test_a_second_up_on_a_data_directory_in_use_is_refused(data_dir: Path) -> None:
    port = free_port()
    up = Up(data_dir, port, "--no-demo", "--storage", "sqlite")
    try:
        up.wait_ready()
        second = _up_once("--data-dir", str(data_dir))
        assert second.returncode == 2
        assert "already running on the data directory" in second.stderr
        assert f"pid {up.process.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        assert up.interrupt() == 0, up.output


def _up_once(*args: str) -> subprocess.CompletedProcess[str]:
    """``siaga up`` that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "siaga", "up", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_taken_web_port_is_named_without_a_traceback(data_dir: Path) -> None:
    with socket_listening() as port:
        result = _up_once("--data-dir", str(data_dir), "--port", str(port), "--no-demo")
    assert result.returncode == 2
    assert f"port {port}" in result.stderr
    assert "--port" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_existing_port_that_is_not_an_mqtt5_broker_is_refused(data_dir: Path) -> None:
    with socket_listening() as port:
        result = _up_once(
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

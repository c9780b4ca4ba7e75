"""`siaga public serve` as a process: it opens the stores, publishes only the public regency,
and stops with SIGTERM (exit 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ops.servers import free_port
from tests.conftest import REPO_ROOT
from tests.helpers import wait_for

pytestmark = pytest.mark.integration


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_public_serve_publishes_the_public_regency_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SIAGA_DATABASE__URL": f"sqlite:///{tmp_path / 'siaga.db'}",
        "SIAGA_STORAGE__BACKEND": "sqlite",
        "SIAGA_STORAGE__SQLITE_PATH": str(tmp_path / "telemetry.sqlite"),
        "SIAGA_API__PUBLIC_URL": "https://siaga.bpbd.example.go.id",
    }
    log = (tmp_path / "public.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "siaga", "public", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            try:
                return fetch(f"{base}/healthz")[0] == 200
            except OSError:
                return False

        wait_for(up, 30, "siaga public serve")
        status, page = fetch(f"{base}/tulang-bawang/")
        assert status == 200
        assert "Tidak diketahui" in page  # no readings yet: never shown as a state
        assert "https://siaga.bpbd.example.go.id/api/v1/cap.atom" in page
        assert fetch(f"{base}/jakarta-selatan/")[0] == 404  # public: false in config/public.yaml
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(20)
        log.close()
    assert code == 0, (tmp_path / "public.log").read_text()

"""``siaga simulate`` as a newcomer runs it: piped to a file, stopped with SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ops.servers import MosquittoServer
from tests.conftest import REPO_ROOT
from tests.integration.drivers import siaga_env

pytestmark = pytest.mark.integration


def _simulate(broker: MosquittoServer, speed: str, output: Path) -> subprocess.Popen[bytes]:
    env = siaga_env(COLUMNS="200")
    with output.open("wb") as sink:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "siaga",
                "simulate",
                "--scenario",
                "way-tulang-bawang-flood",
                "--speed",
                speed,
                "--broker",
                broker.url,
            ],
            cwd=REPO_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )


def test_off_a_terminal_it_prints_progress_and_checks_the_promised_crossings(
    broker: MosquittoServer, tmp_path: Path
) -> None:
    output = tmp_path / "simulate.log"
    process = _simulate(broker, "inf", output)
    assert process.wait(timeout=240) == 0, output.read_text()
    text = output.read_text()
    assert "way-tulang-bawang-flood: publishing" in text
    assert "messages (100%)" in text
    assert "promised crossings" in text
    for level in ("WASPADA", "SIAGA", "AWAS"):
        assert f"reaches {level}" in text
    assert "NOT KEPT" not in text, text


def test_sigterm_stops_the_run_and_still_prints_its_summary(
    broker: MosquittoServer, tmp_path: Path
) -> None:
    output = tmp_path / "simulate.log"
    # 16 simulated days at 20,000x take about 70 s: long enough to be stopped midway.
    process = _simulate(broker, "20000", output)
    deadline = time.monotonic() + 60
    while "publishing" not in output.read_text():
        assert process.poll() is None, output.read_text()
        assert time.monotonic() < deadline, "the run never started publishing"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0, output.read_text()
    text = output.read_text()
    assert "interrupted" in text
    assert "valid readings" in text
    assert "promised crossings" in text

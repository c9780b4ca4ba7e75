"""The supervisor with real child processes: readiness, restarts with backoff, clean stops."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ingest.retry import RetryPolicy
from ingest.settings import HealthSettings
from ops.datadir import AlreadyRunningError, DataDir
from ops.settings import Settings
from ops.supervisor import Part, PartFailedError, RestartPolicy, Supervisor
from ops.up import Platform, UpOptions

PYTHON = sys.executable


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _until(condition: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_part_that_exits_at_start_is_named_with_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, report=lambda _: None)
    part = Part("broken", [PYTHON, "-c", "print('port 1883 is taken'); raise SystemExit(3)"])
    with pytest.raises(PartFailedError, match="broken could not start") as caught:
        await supervisor.start(part)
    assert "port 1883 is taken" in str(caught.value)
    assert "status 3" in str(caught.value)


async def test_a_part_that_never_becomes_ready_is_named(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, report=lambda _: None)
    part = Part(
        "slow",
        [PYTHON, "-c", "import time; time.sleep(60)"],
        ready=lambda: False,
        ready_timeout_s=0.5,
    )
    with pytest.raises(PartFailedError, match="not ready after"):
        await supervisor.start(part)
    await supervisor.stop_all()


async def test_a_dead_part_is_restarted_and_reported_then_all_stop(tmp_path: Path) -> None:
    lines: list[str] = []
    supervisor = Supervisor(
        tmp_path,
        policy=RestartPolicy(
            RetryPolicy(initial_s=0.05, max_s=0.1, jitter="none", deadline_s=None)
        ),
        report=lines.append,
    )
    await supervisor.start(Part("worker", [PYTHON, "-c", "import time; time.sleep(60)"]))
    first = supervisor.pid("worker")
    assert first is not None
    watch = asyncio.create_task(supervisor.watch())
    os.kill(first, 9)
    await _until(lambda: supervisor.restarts("worker") == 1 and supervisor.pid("worker"))
    second = supervisor.pid("worker")
    assert second is not None
    assert second != first
    assert any("worker died" in line for line in lines)
    watch.cancel()
    await supervisor.stop_all()
    assert not _alive(second)


@pytest.mark.logged_exceptions
async def test_siaga_ups_loops_that_fail_are_restarted_counted_and_keep_watching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said: list[str] = []
    bug = ["in the report of a death"]

    def report(line: str) -> None:
        if "died" in line and bug:
            raise RuntimeError(bug.pop())
        said.append(line)

    supervisor = Supervisor(
        tmp_path / "logs",
        policy=RestartPolicy(
            RetryPolicy(initial_s=0.05, max_s=0.1, jitter="none", deadline_s=None)
        ),
        report=report,
    )
    settings = Settings(health=HealthSettings(restart_initial_s=0.01, restart_max_s=0.02))
    platform = Platform(settings, UpOptions(data_dir=tmp_path / "data"), said.append)
    monkeypatch.setattr(platform, "_supervisor", supervisor)
    status_runs: list[int] = []

    async def status(stop: asyncio.Event) -> None:
        status_runs.append(len(status_runs))
        if len(status_runs) == 1:
            raise RuntimeError("a bug in the status line")
        await stop.wait()

    monkeypatch.setattr(platform, "_report_status", status)
    await supervisor.start(Part("worker", [PYTHON, "-c", "import time; time.sleep(60)"]))
    first = supervisor.pid("worker")
    assert first is not None
    stop = asyncio.Event()
    running = asyncio.create_task(platform.keep_running(stop))
    try:
        os.kill(first, 9)
        # The watch died reporting the death; restarted, it still restarts the part.
        await _until(lambda: supervisor.restarts("worker") == 1 and supervisor.pid("worker"))
        await _until(lambda: len(status_runs) == 2)
        assert platform.loop_restarts == Counter({"watch": 1, "status": 1})
        assert any("watch loop failed" in line for line in said)
        assert any("worker died" in line for line in said)
        stop.set()
        await asyncio.wait_for(running, 5)
    finally:
        running.cancel()
        await supervisor.stop_all()


async def test_a_part_that_runs_to_completion_is_not_restarted(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, report=lambda _: None)
    await supervisor.start(
        Part("demo", [PYTHON, "-c", "import time; time.sleep(0.3)"], restart=False, settle_s=0.1)
    )
    watch = asyncio.create_task(supervisor.watch())
    await _until(lambda: supervisor.finished.get("demo") == 0)
    await watch
    assert supervisor.restarts("demo") == 0


async def test_a_part_that_ignores_sigterm_is_killed_after_its_grace(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, report=lambda _: None)
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('up', flush=True); time.sleep(60)"
    )
    await supervisor.start(
        Part("stubborn", [PYTHON, "-c", stubborn], settle_s=0.3, stop_timeout_s=0.5)
    )
    pid = supervisor.pid("stubborn")
    assert pid is not None
    await supervisor.stop_all()
    assert not _alive(pid)


def test_a_second_up_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    with (
        data.locked(),
        pytest.raises(AlreadyRunningError, match=f"pid {os.getpid()}"),
        data.locked(),
    ):
        pass
    with data.locked():  # released when the first holder ends
        pass


def test_state_and_secrets_survive_and_secrets_are_private(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    assert data.is_new()
    data.write_state({"mqtt_port": 1234})
    data.write_secrets({"gauge": "s3cret"})
    assert not data.is_new()
    assert data.read_state() == {"mqtt_port": 1234}
    assert data.read_secrets() == {"gauge": "s3cret"}
    assert data.secrets_file.stat().st_mode & 0o077 == 0

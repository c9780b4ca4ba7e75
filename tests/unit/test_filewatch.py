"""Whether watched files changed (modification time, size, presence), and the polling loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from ingest.filewatch import FileChanges, poll, signature
from tests.helpers import eventually


def test_an_edit_is_a_change_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("a: 1\n")
    changes = FileChanges([path])
    assert changes.changed() is False
    path.write_text("a: 10\n")
    assert changes.changed() is True
    assert changes.changed() is False


def test_a_rewrite_of_the_same_size_is_a_change_by_its_time(tmp_path: Path) -> None:
    path = tmp_path / "stations.yaml"
    path.write_text("a: 1\n")
    before = path.stat().st_mtime_ns
    changes = FileChanges([path])
    path.write_text("a: 2\n")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))
    assert changes.changed() is True


def test_a_file_that_appears_or_vanishes_is_a_change(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    changes = FileChanges([path])
    assert signature([path]) == (None,)
    assert changes.changed() is False
    path.write_text("recipients: []\n")
    assert changes.changed() is True
    path.unlink()
    assert changes.changed() is True
    assert changes.changed() is False


def test_no_files_never_change() -> None:
    changes = FileChanges([])
    assert changes.changed() is False


def test_the_set_of_files_may_change(tmp_path: Path) -> None:
    stations, linked = tmp_path / "stations.yaml", tmp_path / "stations.csv"
    stations.write_text("csv: stations.csv\n")
    linked.write_text("id\n")
    watched = [stations]
    changes = FileChanges(lambda: watched)
    watched = [stations, linked]  # the stations file now links a CSV
    assert changes.changed() is True
    assert changes.changed() is False


async def test_poll_waits_then_looks_awaiting_a_coroutine_check() -> None:
    waits: list[float] = []
    looks: list[str] = []

    async def sleep(delay_s: float) -> None:
        waits.append(delay_s)
        await asyncio.sleep(0)

    def look() -> bool:
        looks.append("sync")
        return False

    async def look_async() -> bool:
        await asyncio.sleep(0)
        looks.append("async")
        return False

    for check, kind in ((look, "sync"), (look_async, "async")):
        task = asyncio.create_task(poll(check, 2.5, sleep))
        await eventually(lambda: len(looks) >= 3, what="three looks")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert len(waits) >= len(looks) >= 3  # a wait before every look
        assert set(waits) == {2.5}
        assert set(looks) == {kind}  # a coroutine check was awaited, not dropped
        waits.clear()
        looks.clear()

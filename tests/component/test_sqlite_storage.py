"""What the embedded SQLite backend adds to the shared contract: files, threads, processes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from devices import Reading, Reason
from ingest.batch import Batch
from ingest.errors import PermanentStorageError, RetryableStorageError
from ingest.storage.sqlite import SqliteStorage

T0 = 1_790_000_400_000_000_000
MIN = 60_000_000_000


def reading(station: str, minute: int, cm: float, seq: int | None = None) -> Reading:
    return Reading(station, T0 + minute * MIN, {"water_level_cm": cm}, seq)


async def test_data_survives_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "data" / "siaga.sqlite"
    async with SqliteStorage(path) as storage:
        await storage.write(Batch([reading("a", 1, 100.0, 1), reading("b", 2, 50.0)]))
    async with SqliteStorage(path) as reopened:
        latest = await reopened.latest()
        await reopened.write(Batch([reading("c", 3, 10.0)]))
        assert set(await reopened.latest()) == {"a", "b", "c"}
        await reopened.aclose()  # closing twice is harmless
    assert latest["a"].values == {"water_level_cm": 100.0}  # seq is stored, not a metric


async def test_two_writers_on_one_file_share_station_and_metric_ids(tmp_path: Path) -> None:
    path = tmp_path / "siaga.sqlite"
    async with SqliteStorage(path) as first, SqliteStorage(path) as second:
        await first.write(Batch([reading("a", 1, 1.0)]))
        await second.write(Batch([reading("b", 1, 2.0), reading("a", 2, 3.0)]))
        await first.write(Batch([Reading("c", T0, {"rain_mm": 4.0})]))
        for storage in (first, second):
            latest = await storage.latest()
            assert {k: v.values for k, v in latest.items()} == {
                "a": {"water_level_cm": 3.0},
                "b": {"water_level_cm": 2.0},
                "c": {"rain_mm": 4.0},
            }


async def test_a_reading_sqlite_cannot_hold_becomes_a_rejection(tmp_path: Path) -> None:
    async with SqliteStorage(tmp_path / "s.sqlite") as storage:
        report = await storage.write(
            Batch([reading("a", 1, 5.0), Reading("a", T0 + 2 * MIN, {"x": float("inf")})])
        )
        assert (report.stored, report.refused) == (1, 1)
        (refused,) = await storage.rejections(0)
        assert refused.rejection.reason is Reason.STORAGE_REJECTED
        assert refused.rejection.station_id == "a"


async def test_work_runs_on_the_storage_thread_not_the_event_loop(tmp_path: Path) -> None:
    async with SqliteStorage(tmp_path / "s.sqlite") as storage:
        name = await storage._run(lambda connection: threading.current_thread().name)
        assert name.startswith("siaga-sqlite")
        assert name != threading.current_thread().name
        mode = await storage._run(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0])
        assert mode == "wal"
        sync = await storage._run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert sync == 2  # FULL


async def test_a_locked_database_is_retryable_and_a_bad_path_permanent(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    async with SqliteStorage(path, busy_timeout_s=0.05) as storage:
        await storage.prepare()
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(RetryableStorageError, match="locked"):
                await storage.write(Batch([reading("a", 1, 1.0)]))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        await storage.write(Batch([reading("a", 1, 1.0)]))  # and it passes once unlocked
        assert set(await storage.latest()) == {"a"}
    (tmp_path / "dir.sqlite").mkdir()
    async with SqliteStorage(tmp_path / "dir.sqlite") as broken:
        with pytest.raises(PermanentStorageError):
            await broken.prepare()


async def test_prune_drops_only_what_is_older_than_the_cutoff(tmp_path: Path) -> None:
    async with SqliteStorage(tmp_path / "s.sqlite") as storage:
        old, new = reading("a", 1, 1.0, 1), reading("a", 10, 2.0, 2)
        await storage.write(Batch([old, new, reading("b", 2, 3.0)]))
        cutoff = T0 + 5 * MIN
        assert await storage.prune(cutoff) == 3  # a@1 (level and seq), b@2 (level)
        (left,) = await storage.window("a", "water_level_cm", 0, T0 + 20 * MIN, 3600)
        assert (left.count, left.mean) == (1, 2.0)
        assert set(await storage.latest()) == {"a"}
        assert await storage.prune(cutoff) == 0

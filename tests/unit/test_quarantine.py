"""A damaged spool's quarantine files: what they hold, and storing what is still readable."""

from __future__ import annotations

import asyncio
import struct
import time
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devices import Reading, Reason, Rejection, load_stations
from ingest.batch import Batch, StoredRejection, serialize_batch
from ingest.quarantine import (
    describe,
    inspect,
    quarantine_files,
    read_quarantine,
    recheck,
    replay,
    summary,
)
from ingest.spool import HEADER_BYTES, Spool
from ingest.storage.memory import MemoryStorage
from ingest.storage.sqlite import SqliteStorage
from siaga.cli import app
from tests.conftest import REPO_ROOT, STATIONS_FILE

NOW_NS = time.time_ns() - 3600 * 10**9
STATION = "tb-menggala"


def batch(index: int, level: float) -> Batch:
    readings = [
        Reading(STATION, NOW_NS + (index * 10 + i) * 10**9, {"water_level_cm": level + i}, i)
        for i in range(3)
    ]
    spooled = StoredRejection(
        Rejection(Reason.OUT_OF_RANGE, "water_level_cm 2500 is outside 0..2000", STATION),
        f"siaga/{STATION}/telemetry",
        '{"water_level_cm": 2500}',
        NOW_NS + index,
    )
    return Batch(readings, [spooled])


BATCHES = [batch(0, 182.5), batch(1, 1820.5), batch(2, 150.25)]


def damaged_spool(directory: Path, damage: str) -> Spool:
    """A spool of the three batches, damaged on disk, then opened (which quarantines)."""
    spool = Spool(directory, 1 << 20)
    for item in BATCHES:
        spool.append(serialize_batch(item))
    spool.close()
    [segment] = directory.glob("*.spool")
    data = bytearray(segment.read_bytes())
    if damage == "digit":  # a bit of a value flips: 1820.5 -> 9820.5, the JSON still reads
        at = data.index(b"1820.5")
        data[at] = ord("9")
    elif damage == "length":  # the second record's length field is hit
        second = len(serialize_batch(BATCHES[0])) + HEADER_BYTES
        data[second + 4 : second + 8] = struct.pack(">I", 7)
    elif damage == "torn":  # the last write never finished
        del data[-10:]
    segment.write_bytes(bytes(data))
    return Spool(directory, 1 << 20)


@pytest.mark.parametrize(
    ("damage", "problem", "readable"),
    [
        ("digit", "checksum fails; the body decodes", True),
        ("length", "its length is damaged or the write was torn; the body decodes", True),
        ("torn", "its length is damaged or the write was torn; not JSON", False),
    ],
)
def test_a_quarantine_file_says_what_each_record_is(
    tmp_path: Path, damage: str, problem: str, readable: bool
) -> None:
    spool = damaged_spool(tmp_path / "spool", damage)
    [quarantined] = spool.quarantined
    assert quarantined.records == 1
    [found] = quarantine_files(tmp_path / "spool")
    assert found == quarantined.path
    file = inspect(found)
    assert (file.segment, file.segment_offset) == (quarantined.segment, quarantined.offset)
    [record] = file.records
    assert record.problem.startswith(problem)
    assert record.readable is readable
    assert (record.offset, record.size) == (0, quarantined.size)
    if readable:
        index = 2 if damage == "torn" else 1
        assert record.batch is not None
        assert [r.ts_ns for r in record.batch.readings] == [
            r.ts_ns for r in BATCHES[index].readings
        ]
    lines = describe(file, lambda station: {"tb-menggala": "Menggala"}.get(station, station))
    assert lines[0] == (
        f"{found}: {quarantined.size} bytes from spool segment {quarantined.segment} at offset "
        f"{quarantined.offset}, 1 record"
    )
    assert lines[1].startswith(f"  offset 0, {quarantined.size} bytes: {problem}")
    if readable:
        assert "3 readings of Menggala" in lines[1]
        assert lines[1].endswith("1 rejection")


def test_several_records_and_bytes_before_any_marker_are_told_apart() -> None:
    first, second = (serialize_batch(b) for b in BATCHES[:2])
    framed = b"\xa7SpL" + struct.pack(">I", len(second)) + b"\x00\x00\x00\x00" + second
    data = b"\x00garbage" + b"\xa7SpL" + struct.pack(">I", len(first)) + b"xxxx" + first + framed
    records = read_quarantine(data)
    assert [(r.offset, r.readable) for r in records] == [
        (0, False),
        (8, True),
        (8 + HEADER_BYTES + len(first), True),
    ]
    assert records[0].problem.startswith("no record marker; not JSON")
    assert sum(r.size for r in records) == len(data)


def test_a_replay_stores_what_decodes_checks_it_and_is_idempotent(tmp_path: Path) -> None:
    spool = damaged_spool(tmp_path / "spool", "digit")
    files = [inspect(q.path) for q in spool.quarantined]
    registry = load_stations(STATIONS_FILE)
    storage = MemoryStorage()

    def check(item: Batch, left_out: Counter[str]) -> Batch:
        return recheck(item, registry, NOW_NS + 10**12, NOW_NS - 10**12, left_out)

    first = asyncio.run(replay(files, storage, check))
    # 9820.5 cm is outside Menggala's range: the flipped digit is not stored.
    assert (first.records, first.unreadable, first.readings, first.rejections) == (1, 0, 2, 1)
    assert first.left_out == Counter({"out_of_range": 1})
    points = dict(storage.points)
    assert len(points) == 2
    again = asyncio.run(replay(files, storage, check))
    assert again.readings == first.readings
    assert storage.points == points, "a replay overwrites the same points"
    assert "stored 2 readings and 1 rejection of 1 readable; 0 unreadable" in first.said()
    assert "left out as ingest refuses them: 1 out_of_range" in first.said()
    assert summary(files) == (
        "1 quarantine file, 1 record: 1 readable (3 readings, 1 rejection), 0 unreadable (0 bytes)"
    )


def test_the_siaga_command_inspects_and_replays_into_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    readings_db = tmp_path / "readings.db"
    monkeypatch.setenv("SIAGA_STORAGE__BACKEND", "sqlite")
    monkeypatch.setenv("SIAGA_STORAGE__SQLITE_PATH", str(readings_db))
    monkeypatch.setenv("SIAGA_SPOOL__DIR", str(tmp_path / "spool"))
    damaged_spool(tmp_path / "spool", "length").close()
    runner = CliRunner()
    shown = runner.invoke(app, ["spool", "inspect"])
    assert shown.exit_code == 0, shown.output
    assert "3 readings of Pos Duga Air Menggala" in shown.output
    assert "1 quarantine file, 1 record: 1 readable (3 readings" in shown.output
    for _ in range(2):
        done = runner.invoke(app, ["spool", "replay", str(tmp_path / "spool" / "quarantine")])
        assert done.exit_code == 0, done.output
        assert "stored 3 readings and 1 rejection" in done.output

    async def stored() -> list[tuple[int, float]]:
        async with SqliteStorage(readings_db) as storage:
            return await storage.readings(STATION, "water_level_cm", 0, 2**62, 100)

    assert [value for _, value in asyncio.run(stored())] == [1820.5, 1821.5, 1822.5]
    missing = runner.invoke(app, ["spool", "replay", str(tmp_path / "nowhere")])
    assert missing.exit_code == 0
    assert "replayed 0 quarantine files" in missing.output

"""The on-disk spool: a bounded FIFO across segment files that survives reopening and torn tails."""

from __future__ import annotations

import logging
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.errors import SpoolError, SpoolFullError
from ingest.spool import Quarantined, Spool, SpoolEntry, SpoolStats, frame

HEADER = 12  # marker, length and crc32, 4 bytes each


def body(i: int, size: int = 20) -> bytes:
    return f"record-{i:02d}".encode().ljust(size, b".")


def record_size(size: int = 20) -> int:
    return HEADER + size


def segment_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*.spool"))


def drain(spool: Spool) -> list[bytes]:
    out = []
    while (entry := spool.peek()) is not None:
        out.append(entry.body)
        spool.pop(entry)
    return out


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "nested"


def test_new_spool_is_empty_and_creates_its_directory(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=1000)
    assert directory.is_dir()
    assert spool.empty
    assert spool.peek() is None
    assert spool.stats() == SpoolStats(records=0, bytes=0, budget_bytes=1000)
    assert segment_names(directory) == []  # no file until the first append
    spool.close()


def test_spool_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(SpoolError, match="cannot create spool directory"):
        Spool(blocker / "spool", budget_bytes=1000)


def test_fifo_across_segments(directory: Path) -> None:
    # 32-byte records, segments closed past 34 bytes: two records per segment.
    spool = Spool(directory, budget_bytes=10_000, segment_bytes=34)
    for i in range(5):
        spool.append(body(i))
    assert segment_names(directory) == [
        "000000000001.spool",
        "000000000002.spool",
        "000000000003.spool",
    ]
    assert [p.stat().st_size for p in sorted(directory.glob("*.spool"))] == [64, 64, 32]
    assert drain(spool) == [body(i) for i in range(5)]
    assert spool.empty
    spool.close()


def test_peek_does_not_consume(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=10_000)
    spool.append(b"first")
    spool.append(b"second")
    first = spool.peek()
    assert first == spool.peek()
    assert first is not None
    assert first.body == b"first"
    assert first.segment == 1
    assert first.end_offset == HEADER + 5
    spool.pop(first)
    second = spool.peek()
    assert second == SpoolEntry(1, 2 * HEADER + 5 + 6, b"second")
    spool.close()


def test_empty_and_large_bodies(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=1 << 20)
    large = bytes(range(256)) * 1000
    spool.append(b"")
    spool.append(large)
    assert drain(spool) == [b"", large]
    spool.close()


def test_segment_files_are_deleted_when_consumed(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=10_000, segment_bytes=34)
    for i in range(4):
        spool.append(body(i))
    entry = spool.peek()
    assert entry is not None
    spool.pop(entry)
    assert segment_names(directory) == ["000000000001.spool", "000000000002.spool"]
    entry = spool.peek()
    assert entry is not None
    spool.pop(entry)  # the last record of segment 1
    assert segment_names(directory) == ["000000000002.spool"]
    assert drain(spool) == [body(2), body(3)]
    assert segment_names(directory) == []
    spool.close()


def test_appending_after_everything_was_consumed(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=10_000, segment_bytes=34)
    spool.append(body(0))
    assert drain(spool) == [body(0)]
    spool.append(body(1))
    spool.append(body(2))
    assert drain(spool) == [body(1), body(2)]
    spool.close()


def test_stats_count_waiting_records_and_bytes_on_disk(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=1000, segment_bytes=34)
    for i in range(3):
        spool.append(body(i))
    assert spool.stats() == SpoolStats(records=3, bytes=96, budget_bytes=1000)
    assert spool.stats().fill_ratio == 0.096
    entry = spool.peek()
    assert entry is not None
    spool.pop(entry)
    # Segment 1 still holds a waiting record, so its bytes stay on disk and count.
    assert spool.stats() == SpoolStats(records=2, bytes=96, budget_bytes=1000)
    entry = spool.peek()
    assert entry is not None
    spool.pop(entry)
    assert spool.stats() == SpoolStats(records=1, bytes=32, budget_bytes=1000)
    spool.close()


def test_fill_ratio_of_a_zero_budget() -> None:
    assert SpoolStats(records=0, bytes=0, budget_bytes=0).fill_ratio == 0.0


def test_budget_refuses_and_writes_nothing(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=3 * record_size(), segment_bytes=1000)
    spool.append(body(0))
    spool.append(body(1))
    spool.append(body(2))  # exactly at the budget: accepted
    sizes = {p.name: p.stat().st_size for p in directory.iterdir()}
    with pytest.raises(SpoolFullError, match="spool at 96 of 96 bytes cannot take 13 more"):
        spool.append(b"x")
    assert {p.name: p.stat().st_size for p in directory.iterdir()} == sizes
    assert spool.stats() == SpoolStats(records=3, bytes=96, budget_bytes=96)
    assert drain(spool) == [body(0), body(1), body(2)]
    spool.close()


def test_budget_frees_when_a_segment_is_deleted(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=2 * record_size(), segment_bytes=1)
    spool.append(body(0))
    spool.append(body(1))
    with pytest.raises(SpoolFullError):
        spool.append(body(2))
    entry = spool.peek()
    assert entry is not None
    spool.pop(entry)
    spool.append(body(2))
    assert drain(spool) == [body(1), body(2)]
    spool.close()


def test_a_record_larger_than_the_budget_is_refused(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=100)
    with pytest.raises(SpoolFullError):
        spool.append(b"x" * 89)
    assert segment_names(directory) == []
    spool.close()


def test_reopen_keeps_unpopped_records_and_starts_a_new_segment(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=10_000, segment_bytes=34)
    for i in range(5):
        spool.append(body(i))
    for _ in range(2):  # consume segment 1 entirely
        entry = spool.peek()
        assert entry is not None
        spool.pop(entry)
    spool.close()

    reopened = Spool(directory, budget_bytes=10_000, segment_bytes=34)
    assert reopened.stats() == SpoolStats(records=3, bytes=96, budget_bytes=10_000)
    reopened.append(body(5))
    assert segment_names(directory) == [
        "000000000002.spool",
        "000000000003.spool",
        "000000000004.spool",
    ]
    assert drain(reopened) == [body(i) for i in range(2, 6)]
    reopened.close()


def test_reopen_re_offers_records_popped_in_an_unfinished_segment(directory: Path) -> None:
    # Pops are not persisted until a segment is deleted: at-least-once, never lost.
    spool = Spool(directory, budget_bytes=10_000, segment_bytes=1000)
    for i in range(3):
        spool.append(body(i))
    entry = spool.peek()
    assert entry is not None
    spool.pop(entry)
    spool.close()
    reopened = Spool(directory, budget_bytes=10_000, segment_bytes=1000)
    assert drain(reopened) == [body(0), body(1), body(2)]
    reopened.close()


def write_two_records(directory: Path) -> Path:
    spool = Spool(directory, budget_bytes=10_000)
    spool.append(body(0))
    spool.append(body(1))
    spool.close()
    [path] = sorted(directory.iterdir())
    return path


def framed(payload: bytes) -> bytes:
    return frame(payload)


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(b"\xa7Sp", id="partial marker"),
        pytest.param(framed(b"0123456789" * 10)[:50], id="partial body"),
        pytest.param(framed(b"wrong checksum")[:-1] + b"?", id="flipped body byte"),
        pytest.param(bytes(32), id="zeros"),
    ],
)
def test_torn_tail_is_quarantined_and_good_records_kept(
    directory: Path, tail: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_two_records(directory)
    with path.open("ab") as handle:
        handle.write(tail)
    with caplog.at_level(logging.ERROR, logger="ingest.spool"):
        spool = Spool(directory, budget_bytes=10_000)
    assert path.stat().st_size == 2 * record_size()
    quarantine = directory / "quarantine" / f"{path.stem}.{2 * record_size()}.bad"
    assert [r.getMessage() for r in caplog.records] == [
        f"SPOOL DAMAGE in segment {path.name}: {len(tail)} unreadable bytes at offset "
        f"{2 * record_size()} moved to {quarantine}; the intact records around them are kept"
    ]
    assert quarantine.read_bytes() == tail
    assert spool.quarantined == [Quarantined(path.name, 2 * record_size(), len(tail), quarantine)]
    assert spool.stats().records == 2
    spool.append(body(2))
    assert drain(spool) == [body(0), body(1), body(2)]
    spool.close()


def test_a_corrupt_record_costs_only_itself(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=10_000)
    for i in range(3):
        spool.append(body(i))
    spool.close()
    [path] = sorted(directory.glob("*.spool"))
    data = bytearray(path.read_bytes())
    data[record_size() + HEADER + 3] ^= 0xFF  # inside the second record's body
    path.write_bytes(bytes(data))
    spool = Spool(directory, budget_bytes=10_000)
    assert drain(spool) == [body(0), body(2)]
    assert [(q.offset, q.size) for q in spool.quarantined] == [(record_size(), record_size())]
    spool.close()


def small_segment(directory: Path) -> tuple[Path, bytes, list[tuple[int, int]]]:
    """A closed segment of three records of different sizes, and each record's byte range."""
    spool = Spool(directory, budget_bytes=10_000)
    bodies = [body(0, 5), body(1, 17), body(2, 9)]
    for item in bodies:
        spool.append(item)
    spool.close()
    [path] = sorted(directory.glob("*.spool"))
    ranges = []
    offset = 0
    for item in bodies:
        ranges.append((offset, offset + HEADER + len(item)))
        offset += HEADER + len(item)
    return path, path.read_bytes(), ranges


BODIES = [body(0, 5), body(1, 17), body(2, 9)]
SEGMENT_SIZE = 3 * HEADER + 5 + 17 + 9


def survivors(damaged: range) -> list[bytes]:
    """The records whose bytes the damage does not touch."""
    found = []
    offset = 0
    for item in BODIES:
        end = offset + HEADER + len(item)
        if not (damaged.start < end and offset < damaged.stop):
            found.append(item)
        offset = end
    return found


def reopen_after(
    directory: Path, damage: Callable[[bytearray], bytes]
) -> tuple[list[bytes], Spool, int]:
    path, data, _ = small_segment(directory)
    path.write_bytes(damage(bytearray(data)))
    damaged_size = path.stat().st_size
    spool = Spool(directory, budget_bytes=10_000)
    return drain(spool), spool, damaged_size


def check_accounting(spool: Spool, damaged_size: int, delivered: list[bytes]) -> None:
    intact = sum(HEADER + len(b) for b in delivered)
    assert sum(q.size for q in spool.quarantined) == damaged_size - intact
    assert all(q.path.read_bytes() for q in spool.quarantined)


@pytest.mark.parametrize("offset", range(SEGMENT_SIZE))
def test_a_bit_flip_anywhere_costs_only_its_record(directory: Path, offset: int) -> None:
    def flip(data: bytearray) -> bytes:
        data[offset] ^= 0x10
        return bytes(data)

    delivered, spool, size = reopen_after(directory, flip)
    assert delivered == survivors(range(offset, offset + 1))
    check_accounting(spool, size, delivered)
    spool.close()


@pytest.mark.parametrize("width", [1, 4, 13])
@pytest.mark.parametrize("offset", range(0, SEGMENT_SIZE, 3))
def test_a_zeroed_range_anywhere_costs_only_the_records_it_touches(
    directory: Path, offset: int, width: int
) -> None:
    end = min(offset + width, SEGMENT_SIZE)

    changed: list[int] = []

    def zero(data: bytearray) -> bytes:
        changed.extend(i for i in range(offset, end) if data[i])
        data[offset:end] = bytes(end - offset)
        return bytes(data)

    delivered, spool, size = reopen_after(directory, zero)
    # Zeroing bytes that were zero already (a length's high bytes) damages nothing.
    touched = range(changed[0], changed[-1] + 1) if changed else range(0)
    assert delivered == survivors(touched)
    check_accounting(spool, size, delivered)
    spool.close()


@pytest.mark.parametrize("length", range(SEGMENT_SIZE + 1))
def test_a_truncated_segment_keeps_every_whole_record(directory: Path, length: int) -> None:
    delivered, spool, size = reopen_after(directory, lambda data: bytes(data[:length]))
    assert delivered == survivors(range(length, SEGMENT_SIZE + 1))
    check_accounting(spool, size, delivered)
    spool.close()


def test_damage_is_quarantined_once(directory: Path) -> None:
    path, data, _ = small_segment(directory)
    path.write_bytes(data[:-3])
    first = Spool(directory, budget_bytes=10_000)
    assert len(first.quarantined) == 1
    first.close()
    again = Spool(directory, budget_bytes=10_000)
    assert again.quarantined == []
    assert drain(again) == BODIES[:2]
    again.close()


def test_segments_of_the_earlier_format_are_still_read(directory: Path) -> None:
    directory.mkdir(parents=True)
    legacy = b"".join(struct.pack(">II", len(item), zlib.crc32(item, 1)) + item for item in BODIES)
    (directory / "000000000003.spool").write_bytes(legacy)
    spool = Spool(directory, budget_bytes=10_000)
    spool.append(b"new")
    assert segment_names(directory) == ["000000000003.spool", "000000000004.spool"]
    assert drain(spool) == [*BODIES, b"new"]
    assert spool.quarantined == []
    spool.close()


def test_segment_that_is_entirely_torn_is_empty(directory: Path) -> None:
    directory.mkdir(parents=True)
    (directory / "000000000007.spool").write_bytes(b"\x00\x00\x01")
    spool = Spool(directory, budget_bytes=10_000)
    assert spool.empty
    spool.append(b"after")
    assert segment_names(directory) == ["000000000007.spool", "000000000008.spool"]
    assert drain(spool) == [b"after"]
    spool.close()


def test_zero_filled_tail_is_not_read_as_records(directory: Path) -> None:
    path = write_two_records(directory)
    with path.open("ab") as handle:
        handle.write(bytes(32))
    spool = Spool(directory, budget_bytes=10_000)
    assert drain(spool) == [body(0), body(1)]
    spool.close()


def test_pop_of_a_record_that_is_not_the_oldest(directory: Path) -> None:
    spool = Spool(directory, budget_bytes=10_000, segment_bytes=34)
    for i in range(3):
        spool.append(body(i))
    oldest = spool.peek()
    assert oldest is not None
    second = SpoolEntry(1, 2 * record_size(), body(1))
    with pytest.raises(SpoolError, match="not the oldest"):
        spool.pop(second)
    with pytest.raises(SpoolError, match="not the oldest"):
        spool.pop(SpoolEntry(2, record_size(), body(2)))  # the newest segment
    spool.pop(oldest)
    with pytest.raises(SpoolError, match="not the oldest"):
        spool.pop(oldest)  # twice
    assert drain(spool) == [body(1), body(2)]
    with pytest.raises(SpoolError, match="not the oldest"):
        spool.pop(oldest)  # on an empty spool
    spool.close()

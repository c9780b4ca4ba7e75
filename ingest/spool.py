"""A durable on-disk FIFO of batches, used while the storage backend cannot take them.

Records are appended to segment files and fsync'd before :meth:`Spool.append` returns, so a
batch in the spool survives a crash and may be acknowledged upstream. Each record is framed as
``magic (4 bytes) | length (4) | crc32 of length and body (4) | body``.

Opening the spool reads every segment. Bytes that do not frame a record (a bad sector, a bit
flip, a torn write at the end) are moved to ``quarantine/<segment>.<offset>.bad`` with their
offset, logged at ERROR and counted; reading resynchronises at the next magic marker whose
record checks out, so every intact record after the damage is still delivered. A damaged
segment is then rewritten with its intact records only.

Segments of the earlier format (``length | crc32 | body``, no marker) are still read; they are
never appended to, so they disappear once drained.

The spool is synchronous and thread-safe; async callers run it in a worker thread.
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import SpoolError, SpoolFullError
from ingest.settings import SpoolSettings

log = logging.getLogger(__name__)

MAGIC = b"\xa7SpL"
_HEADER = struct.Struct(">4sII")  # magic, length, crc32(length bytes + body)
HEADER_BYTES = _HEADER.size
_LEGACY_HEADER = struct.Struct(">II")  # length, crc32(body): the format before the marker
_SUFFIX = ".spool"
_SPOOL = SpoolSettings.model_fields  # the settings tree: one source of defaults
QUARANTINE = "quarantine"
_CRC_SEED = 1  # crc32(b"") is 0: unseeded, a zero-filled torn tail would read as empty records


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """How much waits in the spool."""

    records: int
    bytes: int
    budget_bytes: int

    @property
    def fill_ratio(self) -> float:
        """Used fraction of the disk budget."""
        return self.bytes / self.budget_bytes if self.budget_bytes else 0.0


@dataclass(frozen=True, slots=True)
class Quarantined:
    """Bytes of a segment that framed no record, moved aside.

    Attributes:
        segment: The segment file's name.
        offset: Where the unreadable bytes began in it.
        size: How many bytes.
        path: The quarantine file that holds them.
        records: How many records they held (record markers; at least one): batches the spool
            no longer drains.
    """

    segment: str
    offset: int
    size: int
    path: Path
    records: int = 1


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    """The oldest record, and where it lies (to pop it once stored)."""

    segment: int
    end_offset: int
    body: bytes


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    size: int
    record_ends: list[int]
    read_index: int = 0
    header_size: int = _HEADER.size

    def start(self, index: int) -> int:
        return self.record_ends[index - 1] if index else 0


def frame(body: bytes) -> bytes:
    """One record as written: marker, length, checksum, body."""
    length = struct.pack(">I", len(body))
    crc = zlib.crc32(body, zlib.crc32(length, _CRC_SEED))
    return MAGIC + length + struct.pack(">I", crc) + body


def record_end(data: bytes, offset: int) -> int | None:
    """The end of the record framed at ``offset``, or None when none is."""
    if data[offset : offset + 4] != MAGIC or offset + _HEADER.size > len(data):
        return None
    _, length, crc = _HEADER.unpack_from(data, offset)
    end: int = offset + _HEADER.size + int(length)
    if end > len(data):
        return None
    length_bytes = data[offset + 4 : offset + 8]
    if zlib.crc32(data[offset + _HEADER.size : end], zlib.crc32(length_bytes, _CRC_SEED)) != crc:
        return None
    return end


def scan_records(data: bytes) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Intact records ``(start, end)`` and damaged ranges ``(start, end)`` of a segment."""
    records: list[tuple[int, int]] = []
    damaged: list[tuple[int, int]] = []
    offset = 0
    size = len(data)
    while offset < size:
        end = record_end(data, offset)
        if end is not None:
            records.append((offset, end))
            offset = end
            continue
        # Resynchronise: the next marker that frames a record that checks out.
        candidate = data.find(MAGIC, offset + 1)
        while candidate != -1 and record_end(data, candidate) is None:
            candidate = data.find(MAGIC, candidate + 1)
        resume = size if candidate == -1 else candidate
        damaged.append((offset, resume))
        offset = resume
    return records, damaged


def _scan_legacy(data: bytes) -> list[int] | None:
    """Record ends of a segment in the earlier format, or None unless it reads cleanly."""
    ends: list[int] = []
    offset = 0
    while offset + _LEGACY_HEADER.size <= len(data):
        length, crc = _LEGACY_HEADER.unpack_from(data, offset)
        end = offset + _LEGACY_HEADER.size + length
        if end > len(data):
            return None
        if zlib.crc32(data[offset + _LEGACY_HEADER.size : end], _CRC_SEED) != crc:
            return None
        ends.append(end)
        offset = end
    return ends if offset == len(data) else None


class Spool:
    """A bounded, durable FIFO of byte records in a directory.

    Args:
        directory: Where segment files live; created if missing.
        budget_bytes: The most disk the spool may use; an append beyond it raises
            :class:`SpoolFullError` (nothing is ever evicted).
        segment_bytes: A segment is closed and a new one begun past this size
            (``spool.segment_bytes``).
    """

    def __init__(
        self,
        directory: Path,
        budget_bytes: int,
        segment_bytes: int = _SPOOL["segment_bytes"].default,
    ) -> None:
        self._directory = directory
        self._budget = budget_bytes
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {directory}: {exc.strerror}") from exc
        self.quarantined: list[Quarantined] = []
        """What opening the spool moved to quarantine."""
        self._segments: list[_Segment] = [self._scan(path) for path in self._segment_paths()]
        self._writer: int | None = None  # file descriptor of the last segment, opened lazily

    def _segment_paths(self) -> list[Path]:
        return sorted(self._directory.glob(f"*{_SUFFIX}"))

    def _scan(self, path: Path) -> _Segment:
        data = path.read_bytes()
        number = int(path.stem)
        if not data.startswith(MAGIC):
            legacy = _scan_legacy(data)
            if legacy is not None:
                return _Segment(number, path, len(data), legacy, header_size=_LEGACY_HEADER.size)
        records, damaged = scan_records(data)
        if not damaged:
            return _Segment(number, path, len(data), [end for _, end in records])
        for start, end in damaged:
            self._quarantine(path, start, data[start:end])
        # Keep only the intact records, written aside and renamed over: no damage is read twice.
        intact = b"".join(data[start:end] for start, end in records)
        temporary = path.with_suffix(".rewrite")
        try:
            with temporary.open("wb") as handle:
                handle.write(intact)
                handle.flush()
                os.fsync(handle.fileno())
            temporary.replace(path)
            self._fsync_directory()
        except OSError as exc:
            raise SpoolError(f"cannot rewrite damaged spool segment {path.name}: {exc}") from exc
        ends: list[int] = []
        offset = 0
        for start, end in records:
            offset += end - start
            ends.append(offset)
        return _Segment(number, path, len(intact), ends)

    def _quarantine(self, segment: Path, offset: int, data: bytes) -> None:
        directory = self._directory / QUARANTINE
        target = directory / f"{segment.stem}.{offset}.bad"
        try:
            directory.mkdir(exist_ok=True)
            with target.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise SpoolError(f"cannot write spool quarantine file {target}: {exc}") from exc
        log.error(
            "SPOOL DAMAGE in segment %s: %d unreadable bytes at offset %d moved to %s; "
            "the intact records around them are kept",
            segment.name,
            len(data),
            offset,
            target,
        )
        records = data.count(MAGIC) + (not data.startswith(MAGIC))
        self.quarantined.append(Quarantined(segment.name, offset, len(data), target, records))

    def _fsync_directory(self) -> None:
        directory_fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)

    def stats(self) -> SpoolStats:
        """Records and bytes waiting, and the budget."""
        with self._lock:
            return self._stats()

    def _stats(self) -> SpoolStats:
        records = sum(len(s.record_ends) - s.read_index for s in self._segments)
        size = sum(s.size for s in self._segments)
        return SpoolStats(records, size, self._budget)

    @property
    def empty(self) -> bool:
        """Whether no record waits."""
        with self._lock:
            return all(s.read_index == len(s.record_ends) for s in self._segments)

    def append(self, body: bytes) -> None:
        """Append one record and fsync it.

        Raises:
            SpoolFullError: The record would take the spool past its budget.
            SpoolError: The disk refused the write.
        """
        record = frame(body)
        with self._lock:
            used = sum(s.size for s in self._segments)
            if used + len(record) > self._budget:
                raise SpoolFullError(
                    f"spool at {used} of {self._budget} bytes cannot take {len(record)} more"
                )
            try:
                segment = self._writable_segment()
                assert self._writer is not None
                os.write(self._writer, record)
                os.fsync(self._writer)
            except OSError as exc:
                raise SpoolError(f"cannot write spool: {exc.strerror}") from exc
            segment.size += len(record)
            segment.record_ends.append(segment.size)

    def _writable_segment(self) -> _Segment:
        last = self._segments[-1] if self._segments else None
        if last is not None and self._writer is not None and last.size < self._segment_bytes:
            return last
        self._close_writer()
        number = (last.number + 1) if last is not None else 1
        path = self._directory / f"{number:012d}{_SUFFIX}"
        self._writer = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        # The new file's directory entry must be durable too, or a crash could lose the file.
        self._fsync_directory()
        segment = _Segment(number, path, 0, [])
        self._segments.append(segment)
        return segment

    def _close_writer(self) -> None:
        if self._writer is not None:
            os.close(self._writer)
            self._writer = None

    def peek(self) -> SpoolEntry | None:
        """The oldest record not yet popped, or None."""
        with self._lock:
            for segment in self._segments:
                if segment.read_index < len(segment.record_ends):
                    end = segment.record_ends[segment.read_index]
                    start = segment.start(segment.read_index) + segment.header_size
                    with segment.path.open("rb") as handle:
                        handle.seek(start)
                        body = handle.read(end - start)
                    return SpoolEntry(segment.number, end, body)
            return None

    def pop(self, entry: SpoolEntry) -> None:
        """Mark ``entry`` (the oldest record) as stored; a segment fully stored is deleted."""
        with self._lock:
            segment = self._segments[0] if self._segments else None
            while segment is not None and segment.read_index == len(segment.record_ends):
                self._drop(segment)
                segment = self._segments[0] if self._segments else None
            if segment is None or segment.number != entry.segment:
                raise SpoolError("pop() of a record that is not the oldest")
            if segment.record_ends[segment.read_index] != entry.end_offset:
                raise SpoolError("pop() of a record that is not the oldest")
            segment.read_index += 1
            if segment.read_index == len(segment.record_ends):
                self._drop(segment)

    def _drop(self, segment: _Segment) -> None:
        if segment is self._segments[-1]:
            self._close_writer()
        segment.path.unlink(missing_ok=True)
        self._segments.remove(segment)

    def close(self) -> None:
        """Close the open segment file."""
        with self._lock:
            self._close_writer()

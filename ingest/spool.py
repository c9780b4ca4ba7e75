"""A durable on-disk FIFO of batches, used while the storage backend cannot take them.

Records are appended to segment files and fsync'd before :meth:`Spool.append` returns, so a
batch in the spool survives a crash and may be acknowledged upstream. Each record is framed as
``length (4 bytes) | crc32 (4 bytes) | body``; a torn record at the end of a segment (a crash in
mid-write, before the batch was acknowledged) is cut off when the spool is opened.

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

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">II")
_SUFFIX = ".spool"
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


class Spool:
    """A bounded, durable FIFO of byte records in a directory.

    Args:
        directory: Where segment files live; created if missing.
        budget_bytes: The most disk the spool may use; an append beyond it raises
            :class:`SpoolFullError` (nothing is ever evicted).
        segment_bytes: A segment is closed and a new one begun past this size.
    """

    def __init__(self, directory: Path, budget_bytes: int, segment_bytes: int = 64 << 20) -> None:
        self._directory = directory
        self._budget = budget_bytes
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create spool directory {directory}: {exc.strerror}") from exc
        self._segments: list[_Segment] = [self._scan(path) for path in self._segment_paths()]
        self._writer: int | None = None  # file descriptor of the last segment, opened lazily

    def _segment_paths(self) -> list[Path]:
        return sorted(self._directory.glob(f"*{_SUFFIX}"))

    def _scan(self, path: Path) -> _Segment:
        data = path.read_bytes()
        ends: list[int] = []
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            if end > len(data) or zlib.crc32(data[offset + _HEADER.size : end], _CRC_SEED) != crc:
                break
            ends.append(end)
            offset = end
        if offset != len(data):
            log.error(
                "spool segment %s: cutting %d bytes of a torn or corrupt record at offset %d",
                path.name,
                len(data) - offset,
                offset,
            )
            with path.open("r+b") as handle:
                handle.truncate(offset)
                os.fsync(handle.fileno())
        return _Segment(int(path.stem), path, offset, ends)

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
        record = _HEADER.pack(len(body), zlib.crc32(body, _CRC_SEED)) + body
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
        directory_fd = os.open(self._directory, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
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
                    start = segment.record_ends[segment.read_index - 1] if segment.read_index else 0
                    with segment.path.open("rb") as handle:
                        handle.seek(start + _HEADER.size)
                        body = handle.read(end - start - _HEADER.size)
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

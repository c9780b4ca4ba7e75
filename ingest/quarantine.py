"""What a spool quarantine file still holds, and storing what of it can be read again.

Opening a spool moves the bytes that frame no record (a bad sector, a bit flip, a torn write)
to ``quarantine/<segment>.<offset>.bad`` (:mod:`ingest.spool`). Those bytes are records whose
checksum failed: most often one damaged batch, its body still readable when the damage hit its
header or a byte the JSON does not need. :func:`read_quarantine` splits a file into the records
it held and decodes each (pure); :func:`replay` stores what decodes, through the one
:class:`~ingest.storage.base.Storage` interface, each reading checked again as ingest checks it
live (the checksum failed, so a value may be wrong: one outside its station's range is left
out). A reading's identity (station, time) makes a second replay overwrite the first.
"""

from __future__ import annotations

import re
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from devices import Reading, Rejection
from devices.registry import load_registry
from devices.stations import StationRegistry
from devices.timestamps import NS_PER_S, format_rfc3339
from ingest.batch import Batch, deserialize_batch
from ingest.errors import ConfigError
from ingest.runtime import open_storage, select_backend
from ingest.settings import Settings
from ingest.spool import HEADER_BYTES, MAGIC, QUARANTINE, record_end
from ingest.storage.base import Storage
from ingest.storage.influx import registry_tags
from ingest.validation import check_reading, metric_ranges

_LENGTH = struct.Struct(">I")
_NAME = re.compile(r"^(?P<segment>\d+)\.(?P<offset>\d+)\.bad$")


@dataclass(frozen=True, slots=True)
class QuarantinedRecord:
    """One record (or what is left of one) in a quarantine file.

    Attributes:
        offset: Where it starts in the quarantine file.
        size: Its bytes.
        problem: Why it was quarantined, in words (a checksum that fails, a header cut short).
        batch: Its batch when the body still decodes; None when it does not.
    """

    offset: int
    size: int
    problem: str
    batch: Batch | None

    @property
    def readable(self) -> bool:
        """Whether its body still decodes into a batch."""
        return self.batch is not None


@dataclass(frozen=True, slots=True)
class QuarantineFile:
    """A quarantine file and what it holds.

    Attributes:
        path: The file.
        segment: The spool segment the bytes came from (from the file's name).
        segment_offset: Where they began in that segment.
        records: What it holds, in order.
    """

    path: Path
    segment: str
    segment_offset: int | None
    records: list[QuarantinedRecord]

    @property
    def size(self) -> int:
        """The file's bytes."""
        return sum(r.size for r in self.records)


def _decode(body: bytes) -> tuple[Batch | None, str]:
    try:
        return deserialize_batch(body), ""
    except orjson.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at byte {exc.pos})"
    except (KeyError, ValueError, TypeError) as exc:
        return None, f"not a batch ({type(exc).__name__}: {exc})"


def _framed(data: bytes, start: int, stop: int) -> tuple[QuarantinedRecord, int]:
    """The record at ``start`` (a marker), whose bytes run at most to ``stop`` or its length."""
    if start + HEADER_BYTES > len(data):
        return QuarantinedRecord(start, len(data) - start, "header cut short", None), len(data)
    (length,) = _LENGTH.unpack_from(data, start + 4)
    end = start + HEADER_BYTES + length
    check = "checksum fails" if record_end(data, start) is None else "checksum holds"
    if end <= len(data):
        batch, why = _decode(data[start + HEADER_BYTES : end])
        if batch is not None:
            return QuarantinedRecord(start, end - start, f"{check}; the body decodes", batch), end
        if end == stop:
            return QuarantinedRecord(start, end - start, f"{check}; {why}", None), end
    # The length is damaged, or the write was torn: the body runs to the next marker.
    batch, why = _decode(data[start + HEADER_BYTES : stop])
    said = "its length is damaged or the write was torn"
    problem = f"{said}; the body decodes" if batch else f"{said}; {why}"
    return QuarantinedRecord(start, stop - start, problem, batch), stop


def read_quarantine(data: bytes) -> list[QuarantinedRecord]:
    """The records a quarantine file's bytes held, each decoded when it still can be."""
    records: list[QuarantinedRecord] = []
    position = 0
    while position < len(data):
        following = data.find(MAGIC, position + 1)
        stop = len(data) if following == -1 else following
        if data.startswith(MAGIC, position):
            record, position = _framed(data, position, stop)
        else:
            batch, why = _decode(data[position:stop])
            problem = "no record marker; the bytes decode" if batch else f"no record marker; {why}"
            record, position = QuarantinedRecord(position, stop - position, problem, batch), stop
        records.append(record)
    return records


def quarantine_files(path: Path) -> list[Path]:
    """The quarantine files at ``path``: a file itself, a quarantine directory, or a spool
    directory (its ``quarantine/``)."""
    if path.is_file():
        return [path]
    if (path / QUARANTINE).is_dir():
        path /= QUARANTINE
    return sorted(path.glob("*.bad"))


def inspect(path: Path) -> QuarantineFile:
    """Read one quarantine file.

    Raises:
        OSError: It cannot be read.
    """
    found = _NAME.match(path.name)
    return QuarantineFile(
        path,
        segment=f"{found['segment']}.spool" if found else path.name,
        segment_offset=int(found["offset"]) if found else None,
        records=read_quarantine(path.read_bytes()),
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def describe(quarantined: QuarantineFile, name_of: Callable[[str], str]) -> list[str]:
    """What ``siaga spool inspect`` says of one file: a line for it, a line per record.

    Args:
        name_of: A station's name for its id (people read names).
    """
    where = (
        f"spool segment {quarantined.segment} at offset {quarantined.segment_offset}"
        if quarantined.segment_offset is not None
        else "a file not named <segment>.<offset>.bad"
    )
    lines = [
        f"{quarantined.path}: {quarantined.size} bytes from {where}, "
        f"{_plural(len(quarantined.records), 'record')}"
    ]
    for record in quarantined.records:
        line = f"  offset {record.offset}, {record.size} bytes: {record.problem}"
        batch = record.batch
        if batch is not None:
            line += f"; {_plural(len(batch.readings), 'reading')}"
            if batch.readings:
                times = [r.ts_ns for r in batch.readings]
                stations = sorted({name_of(r.station_id) for r in batch.readings})
                line += f" of {', '.join(stations[:5])}" + (" …" if len(stations) > 5 else "")
                line += f", {format_rfc3339(min(times))} to {format_rfc3339(max(times))}"
            line += f", {_plural(len(batch.rejections), 'rejection')}"
        lines.append(line)
    return lines


def summary(files: Iterable[QuarantineFile]) -> str:
    """One line over every file: records readable or not, readings, unreadable bytes."""
    files = list(files)
    records = [r for f in files for r in f.records]
    readable = [r.batch for r in records if r.batch is not None]
    unreadable = [r for r in records if r.batch is None]
    return (
        f"{_plural(len(files), 'quarantine file')}, {_plural(len(records), 'record')}: "
        f"{len(readable)} readable ({_plural(sum(len(b.readings) for b in readable), 'reading')}, "
        f"{_plural(sum(len(b.rejections) for b in readable), 'rejection')}), "
        f"{len(unreadable)} unreadable ({sum(r.size for r in unreadable)} bytes)"
    )


@dataclass(slots=True)
class ReplayReport:
    """What a replay stored and left out.

    Attributes:
        files: Quarantine files read.
        records: Records found in them.
        unreadable: Records whose body does not decode (nothing of them is stored).
        readings: Readings stored.
        rejections: Stored rejections of the batches (as they were when spooled) stored.
        left_out: Reason → readings or metrics left out as ingest would refuse them now.
    """

    files: int = 0
    records: int = 0
    unreadable: int = 0
    readings: int = 0
    rejections: int = 0
    left_out: Counter[str] = field(default_factory=Counter)

    def said(self) -> str:
        """What ``siaga spool replay`` did, in words."""
        text = (
            f"replayed {_plural(self.files, 'quarantine file')}, "
            f"{_plural(self.records, 'record')}: stored "
            f"{_plural(self.readings, 'reading')} and {_plural(self.rejections, 'rejection')} "
            f"of {self.records - self.unreadable} readable; {self.unreadable} unreadable "
            "(nothing of them can be stored)"
        )
        if self.left_out:
            refused = ", ".join(f"{n} {why}" for why, n in sorted(self.left_out.items()))
            text += f"; left out as ingest refuses them: {refused}"
        return text + (
            ". A reading keeps its identity (station, time): replaying again overwrites the "
            "same points."
        )


def recheck(
    batch: Batch,
    registry: StationRegistry,
    newest_ns: int,
    oldest_ns: int,
    left_out: Counter[str],
) -> Batch:
    """The batch with each reading checked again as ingest checks it live.

    A record whose checksum failed may carry a flipped digit: a value outside its station's
    range, a metric or station the registry does not know, is left out and counted.
    """
    kept: list[Reading] = []
    for reading in batch.readings:
        station = registry.get(reading.station_id)
        if station is None:
            left_out["unknown_station"] += 1
            continue
        refused: list[Rejection] = []
        checked = check_reading(reading, metric_ranges(station), newest_ns, oldest_ns, refused)
        left_out.update(r.reason.value for r in refused)
        if checked is not None:
            kept.append(checked)
    return Batch(kept, list(batch.rejections))


async def replay(
    files: Iterable[QuarantineFile],
    storage: Storage,
    check: Callable[[Batch, Counter[str]], Batch],
) -> ReplayReport:
    """Store every batch that still decodes, checked by ``check`` (e.g. :func:`recheck`).

    Raises:
        StorageError: Storage refused a write (what was written before stays; a replay again
            overwrites it by identity).
    """
    report = ReplayReport()
    for quarantined in files:
        report.files += 1
        for record in quarantined.records:
            report.records += 1
            if record.batch is None:
                report.unreadable += 1
                continue
            batch = check(record.batch, report.left_out)
            if batch:
                await storage.write(batch)
            report.readings += len(batch.readings)
            report.rejections += len(batch.rejections)
    return report


async def replay_with_settings(settings: Settings, files: Iterable[QuarantineFile]) -> ReplayReport:
    """:func:`replay` into the storage the settings choose (as ``siaga ingest`` does), each
    reading checked against the registry and the time bounds ingest applies now.

    Raises:
        ConfigError: The registry cannot be read.
        StorageError: Storage refused a write.
    """
    try:
        registry = load_registry(settings.stations.file, settings.stations.devices_file)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    now_ns = time.time_ns()
    newest_ns = now_ns + int(settings.validation.max_future_s * NS_PER_S)
    oldest_ns = now_ns - int(settings.max_age_s * NS_PER_S)

    def check(batch: Batch, left_out: Counter[str]) -> Batch:
        return recheck(batch, registry, newest_ns, oldest_ns, left_out)

    backend = await select_backend(settings)
    async with open_storage(settings, backend, registry_tags(registry)) as storage:
        await storage.prepare()
        return await replay(files, storage, check)


__all__ = [
    "QuarantineFile",
    "QuarantinedRecord",
    "ReplayReport",
    "describe",
    "inspect",
    "quarantine_files",
    "read_quarantine",
    "recheck",
    "replay",
    "replay_with_settings",
    "summary",
]

"""An in-memory storage backend with InfluxDB's overwrite semantics.

Used by component tests and anywhere no database is wanted. ``available`` can be switched off to
rehearse an outage: writes then fail as a real unreachable server's would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from devices import Reason
from devices.health import StationHealth
from ingest.batch import Batch, StoredRejection
from ingest.errors import RetryableStorageError, StorageError
from ingest.storage.base import AlertRecord, LatestReading, MetricSpan, WindowStat, WriteReport


class MemoryStorage:
    """Readings keyed by identity ``(station, ts)``; fields of a repeated identity merge."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, int], dict[str, float]] = {}
        self.stored_rejections: list[StoredRejection] = []
        self.health_snapshots: dict[str, StationHealth] = {}
        self.alert_records: dict[tuple[str, str, str, str, int], AlertRecord] = {}
        self.available = True
        self.failure: StorageError | None = None
        """Raised by every write while set (e.g. a PermanentStorageError for a bad token)."""
        self.gate: asyncio.Event | None = None
        """While set to an Event that is not set, writes wait at it (tests force an order)."""
        self.writes = 0
        self.written: list[Batch] = []
        """Every batch stored, in order."""

    async def prepare(self) -> None:
        """Nothing to create."""

    async def write(self, batch: Batch) -> WriteReport:
        """Store a batch, or fail like an unreachable server while ``available`` is False."""
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        if not self.available:
            raise RetryableStorageError("memory storage is switched off")
        self.writes += 1
        self.written.append(batch)
        for reading in batch.readings:
            fields = self.points.setdefault((reading.station_id, reading.ts_ns), {})
            fields.update(reading.values)
            if reading.seq is not None:
                fields["seq"] = float(reading.seq)
        self.stored_rejections.extend(batch.rejections)
        return WriteReport(len(batch))

    async def latest(self, station_ids: Sequence[str] | None = None) -> dict[str, LatestReading]:
        """Each station's reading with the newest timestamp."""
        wanted = None if station_ids is None else set(station_ids)
        newest: dict[str, LatestReading] = {}
        for (station_id, ts_ns), values in self.points.items():
            if wanted is not None and station_id not in wanted:
                continue
            current = newest.get(station_id)
            if current is None or ts_ns > current.ts_ns:
                metrics = {name: value for name, value in values.items() if name != "seq"}
                newest[station_id] = LatestReading(station_id, ts_ns, metrics)
        return newest

    async def window(
        self, station_id: str, metric: str, start_ns: int, end_ns: int, window_s: int
    ) -> list[WindowStat]:
        """Windows aligned to the epoch, like InfluxQL's ``GROUP BY time()``."""
        width = window_s * 1_000_000_000
        buckets: dict[int, list[float]] = {}
        for (sid, ts_ns), values in self.points.items():
            if sid == station_id and start_ns <= ts_ns < end_ns and metric in values:
                buckets.setdefault(ts_ns - ts_ns % width, []).append(values[metric])
        return [
            WindowStat(start, sum(v) / len(v), min(v), max(v), len(v))
            for start, v in sorted(buckets.items())
        ]

    async def rejections(
        self,
        since_ns: int,
        limit: int = 100,
        reason: Reason | None = None,
        station_id: str | None = None,
        until_ns: int | None = None,
    ) -> list[StoredRejection]:
        """Newest first."""
        found = [
            r
            for r in self.stored_rejections
            if r.received_ns >= since_ns
            and (until_ns is None or r.received_ns < until_ns)
            and (reason is None or r.rejection.reason == reason)
            and (station_id is None or r.rejection.station_id == station_id)
        ]
        found.sort(key=lambda r: r.received_ns, reverse=True)
        return found[:limit]

    async def readings(
        self, station_id: str, metric: str, start_ns: int, end_ns: int, limit: int
    ) -> list[tuple[int, float]]:
        """Oldest first, at most ``limit``."""
        found = sorted(
            (ts_ns, values[metric])
            for (sid, ts_ns), values in self.points.items()
            if sid == station_id and start_ns <= ts_ns < end_ns and metric in values
        )
        return found[:limit]

    async def spans(
        self, metric: str, since_ns: int, station_ids: Sequence[str] | None = None
    ) -> dict[str, MetricSpan]:
        """Each station's first and last value of ``metric`` at or after ``since_ns``."""
        wanted = None if station_ids is None else set(station_ids)
        found: dict[str, MetricSpan] = {}
        for (sid, ts_ns), values in sorted(self.points.items()):
            if ts_ns < since_ns or metric not in values or (wanted and sid not in wanted):
                continue
            value = values[metric]
            span = found.get(sid)
            if span is None:
                found[sid] = MetricSpan(sid, ts_ns, value, ts_ns, value)
            else:
                found[sid] = MetricSpan(sid, span.first_ns, span.first, ts_ns, value)
        return found

    async def write_health(self, snapshots: Sequence[StationHealth], ts_ns: int) -> None:
        """Keep the latest snapshot per station."""
        if not self.available:
            raise RetryableStorageError("memory storage is switched off")
        for snapshot in snapshots:
            self.health_snapshots[snapshot.station_id] = snapshot

    async def health(self) -> dict[str, StationHealth]:
        """The latest snapshot per station."""
        return dict(self.health_snapshots)

    async def write_alerts(self, records: Sequence[AlertRecord]) -> None:
        """Keep records by InfluxDB's identity: series (station, kind, rule, level) and time."""
        if not self.available:
            raise RetryableStorageError("memory storage is switched off")
        for record in records:
            key = (record.station_id, record.kind, record.rule, record.level, record.ts_ns)
            self.alert_records[key] = record

    async def alerts(
        self,
        since_ns: int,
        until_ns: int | None = None,
        station_ids: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[AlertRecord]:
        """Oldest first."""
        wanted = None if station_ids is None else set(station_ids)
        found = [
            r
            for r in self.alert_records.values()
            if r.ts_ns >= since_ns
            and (until_ns is None or r.ts_ns < until_ns)
            and (wanted is None or r.station_id in wanted)
        ]
        found.sort(key=lambda r: (r.ts_ns, r.station_id, r.kind, r.rule, r.level))
        return found[:limit]

    async def aclose(self) -> None:
        """Nothing to release."""

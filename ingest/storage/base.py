"""The one storage interface: what the worker writes through and operators read through."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from devices import Reason
from devices.health import StationHealth
from ingest.batch import Batch, StoredRejection

TELEMETRY = "telemetry"
REJECTED = "rejected"
DEVICE_HEALTH = "device_health"
ALERTS = "alerts"


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert event as stored in measurement ``alerts`` (Grafana annotations).

    Attributes:
        ts_ns: The event time (the reading's time).
        station_id: The event's subject (a station, or ``regency:<name>`` for a group).
        kind: ``level``, ``rate``, ``upstream``, ``no_data``, ``sensor_fault``.
        rule: The rule instance (``level``, ``rate:rise``, ...).
        level: Canonical level name: NORMAL, WASPADA, SIAGA, AWAS.
        firing: True when the condition holds, False when it cleared.
        late: The reading was a backlog when it arrived.
        text: One line for people.
        event_id: The event's stable id.
    """

    ts_ns: int
    station_id: str
    kind: str
    rule: str
    level: str
    firing: bool
    late: bool
    text: str
    event_id: str


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What a write did.

    Attributes:
        stored: Entries the backend accepted.
        refused: Entries the backend refused as bad data; they were stored as rejections with
            reason ``storage_rejected`` instead.
    """

    stored: int
    refused: int = 0


@dataclass(frozen=True, slots=True)
class LatestReading:
    """A station's newest reading, by the reading's own time (not by arrival)."""

    station_id: str
    ts_ns: int
    values: dict[str, float]


@dataclass(frozen=True, slots=True)
class WindowStat:
    """One time window of a metric: start, mean, min, max and how many readings."""

    start_ns: int
    mean: float
    min: float
    max: float
    count: int


class Storage(Protocol):
    """A time-series store for readings and rejections."""

    async def prepare(self) -> None:
        """Create what must exist (database, retention policy); idempotent."""
        ...

    async def write(self, batch: Batch) -> WriteReport:
        """Store a batch. Storing the same reading again overwrites it (same identity).

        Raises:
            RetryableStorageError: The store is unreachable or failing; try again later.
            PermanentStorageError: The store refuses the request itself (credentials, database).
        """
        ...

    async def latest(self, station_ids: Sequence[str] | None = None) -> dict[str, LatestReading]:
        """Each station's newest reading; all stations when ``station_ids`` is None."""
        ...

    async def window(
        self, station_id: str, metric: str, start_ns: int, end_ns: int, window_s: int
    ) -> list[WindowStat]:
        """A metric over ``[start_ns, end_ns)`` aggregated into windows of ``window_s``."""
        ...

    async def rejections(
        self, since_ns: int, limit: int = 100, reason: Reason | None = None
    ) -> list[StoredRejection]:
        """The newest rejections received at or after ``since_ns``, newest first."""
        ...

    async def write_health(self, snapshots: Sequence[StationHealth], ts_ns: int) -> None:
        """Store device health snapshots taken at ``ts_ns`` (measurement ``device_health``)."""
        ...

    async def health(self) -> dict[str, StationHealth]:
        """Each station's latest stored health."""
        ...

    async def write_alerts(self, records: Sequence[AlertRecord]) -> None:
        """Store alert events (measurement ``alerts``); the same event again overwrites itself.

        Raises:
            RetryableStorageError: The store is unreachable; the caller spools and retries.
        """
        ...

    async def alerts(
        self,
        since_ns: int,
        until_ns: int | None = None,
        station_ids: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[AlertRecord]:
        """Alert events with ``since_ns <= ts < until_ns``, oldest first, at most ``limit``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...

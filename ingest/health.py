"""Device health in the worker: observe durable readings, store snapshots periodically."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from devices import Reading, StationRegistry
from devices.health import HealthTracker
from ingest.errors import StorageError
from ingest.storage.base import Storage

log = logging.getLogger(__name__)

_CHUNK = 500
_FULL_EVERY = 10


class HealthRecorder:
    """Feeds a :class:`HealthTracker` from the worker and writes ``device_health`` points.

    Health is derived state: when storage is down a snapshot is skipped, not spooled; the next
    one carries the same information.

    Args:
        registry: Stations and their intervals.
        storage: Where snapshots go.
        interval_s: How often to store a snapshot.
        clock_ns: Wall clock.
    """

    def __init__(
        self,
        registry: StationRegistry,
        storage: Storage,
        interval_s: float = 60.0,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.tracker = HealthTracker(registry)
        self._storage = storage
        self._interval_s = interval_s
        self._clock_ns = clock_ns

    async def observe(self, readings: Sequence[Reading]) -> None:
        """Worker observer: readings just made durable."""
        self.tracker.observe(readings, self._clock_ns())

    async def record(self, everyone: bool = False) -> int:
        """Store snapshots of the stations that reported since the last call (or of all).

        Snapshots are computed in chunks that yield to the event loop, so a national fleet
        does not stall ingestion. Returns how many stations were stored.
        """
        changed = self.tracker.take_changed()
        station_ids = self.tracker.station_ids if everyone else changed
        stored = 0
        for start in range(0, len(station_ids), _CHUNK):
            now_ns = self._clock_ns()
            snapshots = self.tracker.snapshot(now_ns, station_ids[start : start + _CHUNK])
            try:
                await self._storage.write_health(snapshots, now_ns)
            except StorageError as exc:
                log.warning("device health not stored this time: %s", exc)
                return stored
            stored += len(snapshots)
            await asyncio.sleep(0)
        return stored

    async def run(self) -> None:
        """Store snapshots every ``interval_s`` until cancelled.

        Every tenth round covers every station, so that a station gone silent shows its
        completeness falling even though it sends nothing.
        """
        rounds = 0
        while True:
            await asyncio.sleep(self._interval_s)
            rounds += 1
            await self.record(everyone=rounds % _FULL_EVERY == 0)

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

    async def record(self) -> int:
        """Store one snapshot of every observed station; returns how many stations."""
        now_ns = self._clock_ns()
        snapshots = self.tracker.snapshot(now_ns)
        if snapshots:
            try:
                await self._storage.write_health(snapshots, now_ns)
            except StorageError as exc:
                log.warning("device health not stored this time: %s", exc)
                return 0
        return len(snapshots)

    async def run(self) -> None:
        """Store a snapshot every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self._interval_s)
            await self.record()

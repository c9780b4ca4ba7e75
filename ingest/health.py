"""Device health in the worker: observe durable readings, store snapshots when they matter."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devices import Reading, StationRegistry
from devices.health import HealthTracker, StationHealth
from ingest.errors import StorageError
from ingest.settings import HealthSettings
from ingest.storage.base import Storage

log = logging.getLogger(__name__)

_CHUNK = 500
_HEALTH = HealthSettings.model_fields  # the settings tree: one source of defaults
NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Materiality:
    """How much a snapshot must differ from the stored one to be stored again.

    Attributes:
        completeness_pct: Percentage points of completeness.
        readings_fraction: Readings in the window, as a fraction of what the station's interval
            promises over a whole window (at least 1 reading).
        battery_v: Volts.
        battery_pct: Percent.
        rssi_dbm: Decibels.
        snr_db: Decibels.
        clock_skew_s: Seconds.
    """

    completeness_pct: float = 1.0
    readings_fraction: float = 0.01
    battery_v: float = 0.05
    battery_pct: float = 1.0
    rssi_dbm: float = 3.0
    snr_db: float = 2.0
    clock_skew_s: float = 5.0


def _moved(old: float | None, new: float | None, step: float) -> bool:
    if old is None or new is None:
        return old is not new
    return abs(new - old) >= step or math.isnan(old) != math.isnan(new)


def changed_materially(
    old: StationHealth, new: StationHealth, limits: Materiality, promised: int
) -> bool:
    """Whether ``new`` says something ``old`` did not (pure; last seen alone is not news).

    Args:
        old: The snapshot stored last.
        new: The snapshot now.
        limits: What counts as a change.
        promised: Readings the station's interval promises over a whole window.
    """
    readings_step = max(1.0, limits.readings_fraction * promised)
    return (
        new.missing_by_seq != old.missing_by_seq
        or abs(new.readings_24h - old.readings_24h) >= readings_step
        or _moved(old.completeness_pct, new.completeness_pct, limits.completeness_pct)
        or _moved(old.battery_v, new.battery_v, limits.battery_v)
        or _moved(old.battery_pct, new.battery_pct, limits.battery_pct)
        or _moved(old.rssi_dbm, new.rssi_dbm, limits.rssi_dbm)
        or _moved(old.snr_db, new.snr_db, limits.snr_db)
        or _moved(old.clock_skew_s, new.clock_skew_s, limits.clock_skew_s)
    )


class HealthRecorder:
    """Feeds a :class:`HealthTracker` from the worker and writes ``device_health`` points.

    A station's snapshot is stored when it changed materially since the one last stored, or
    when that one is ``heartbeat_s`` old: the write load follows change, not the fleet's size.
    Every round also looks at a share of all stations (so that each is looked at once per
    heartbeat), which is how a station gone silent shows its completeness falling.

    Health is derived state: when storage is down a snapshot is skipped, not spooled; the next
    one carries the same information.

    Args:
        registry: Stations and their intervals.
        storage: Where snapshots go.
        interval_s: How often to look for snapshots to store.
        clock_ns: Wall clock.
        heartbeat_s: The longest a station's stored snapshot goes without being renewed.
        materiality: What counts as a change.
    """

    def __init__(
        self,
        registry: StationRegistry,
        storage: Storage,
        interval_s: float = _HEALTH["interval_s"].default,
        clock_ns: Callable[[], int] = time.time_ns,
        *,
        heartbeat_s: float = _HEALTH["heartbeat_s"].default,
        materiality: Materiality | None = None,
    ) -> None:
        self.tracker = HealthTracker(registry)
        self._storage = storage
        self._interval_s = interval_s
        self._clock_ns = clock_ns
        self._heartbeat_ns = int(heartbeat_s * NS_PER_S)
        self._limits = materiality or Materiality()
        self._stored: dict[str, tuple[int, StationHealth]] = {}
        self._sweep_at = 0
        self.snapshots_stored = 0
        self.snapshots_skipped = 0

    async def observe(self, readings: Sequence[Reading]) -> None:
        """Worker observer: readings just made durable."""
        self.tracker.observe(readings, self._clock_ns())

    def _sweep(self) -> list[str]:
        """The next share of all stations, round-robin: all of them once per heartbeat."""
        everyone = self.tracker.station_ids
        if not everyone:
            return []
        share = math.ceil(len(everyone) * self._interval_s * NS_PER_S / self._heartbeat_ns)
        start = self._sweep_at % len(everyone)
        picked = everyone[start : start + share]
        if len(picked) < share:
            picked += everyone[: share - len(picked)]
        self._sweep_at = start + share
        return picked

    def _due(self, snapshot: StationHealth, now_ns: int) -> bool:
        stored = self._stored.get(snapshot.station_id)
        if stored is None or now_ns - stored[0] >= self._heartbeat_ns:
            return True
        promised = self.tracker.promised(snapshot.station_id)
        return changed_materially(stored[1], snapshot, self._limits, promised)

    async def record(self, everyone: bool = False) -> int:
        """Store the snapshots that are due, of stations that reported or are swept (or all).

        Snapshots are computed in chunks that yield to the event loop, so a national fleet
        does not stall ingestion. Returns how many stations were stored.
        """
        changed = self.tracker.take_changed()
        station_ids = self.tracker.station_ids if everyone else sorted({*changed, *self._sweep()})
        stored = 0
        for start in range(0, len(station_ids), _CHUNK):
            now_ns = self._clock_ns()
            snapshots = self.tracker.snapshot(now_ns, station_ids[start : start + _CHUNK])
            due = snapshots if everyone else [s for s in snapshots if self._due(s, now_ns)]
            self.snapshots_skipped += len(snapshots) - len(due)
            if due:
                try:
                    await self._storage.write_health(due, now_ns)
                except StorageError as exc:
                    log.warning("device health not stored this time: %s", exc)
                    return stored
                for snapshot in due:
                    self._stored[snapshot.station_id] = (now_ns, snapshot)
                stored += len(due)
                self.snapshots_stored += len(due)
            await asyncio.sleep(0)
        return stored

    async def run(self) -> None:
        """Store due snapshots every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self._interval_s)
            await self.record()

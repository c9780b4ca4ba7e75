"""Device health from the readings themselves. Pure: readings in, snapshots out.

"Last seen" is the newest reading *time*, not the last arrival: a store-and-forward backlog
arrives late and out of order and must not make a station look fresh (or stale).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from devices.readings import Reading
from devices.stations import StationRegistry

NS_PER_S = 1_000_000_000
_SKEW_SAMPLES = 20


@dataclass(frozen=True, slots=True)
class StationHealth:
    """One station's health at a moment.

    Attributes:
        station_id: The station.
        last_seen_ns: Time of its newest reading (by the reading's own clock).
        readings_24h: Distinct readings in the window (counted up to twice what the station's
            interval promises: memory is bounded per station, not by traffic).
        expected_24h: Readings its interval promises over the part of the window it was known.
        completeness_pct: ``readings / expected`` over the window, at most 100.
        missing_by_seq: Readings missing by gaps in its sequence numbers (or frame counters).
        clock_skew_s: Arrival minus reading time, the smallest of the latest readings: positive
            when the device clock lags (or the network delays), negative when it runs ahead.
        battery_v, battery_pct, rssi_dbm, snr_db: From its newest reading carrying each.
    """

    station_id: str
    last_seen_ns: int
    readings_24h: int
    expected_24h: int
    completeness_pct: float
    missing_by_seq: int
    clock_skew_s: float | None
    battery_v: float | None = None
    battery_pct: float | None = None
    rssi_dbm: float | None = None
    snr_db: float | None = None


_VITALS = ("battery_v", "battery_pct", "rssi_dbm", "snr_db")


def _reading_time(reading: Reading) -> int:
    return reading.ts_ns


@dataclass
class _Track:
    first_seen_ns: int
    # ts_ns -> seq, bounded: at most a little over what the interval promises per window.
    readings: dict[int, int | None] = field(default_factory=dict)
    vitals: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> (ts, value)
    skews_ns: collections.deque[int] = field(
        default_factory=lambda: collections.deque(maxlen=_SKEW_SAMPLES)
    )


def missing_from_sequence(points: Iterable[tuple[int, int | None]]) -> int:
    """Readings missing by sequence gaps, given ``(ts_ns, seq)`` pairs in any order.

    Ordered by time, a sequence that falls back starts a new run (a reboot or counter reset);
    each run misses ``max - min + 1 - distinct`` numbers.
    """
    missing = 0
    run: set[int] = set()
    previous: int | None = None
    for _, seq in sorted(p for p in points if p[1] is not None):
        assert seq is not None
        if previous is not None and seq < previous and seq not in run:
            missing += max(run) - min(run) + 1 - len(run)
            run = set()
        run.add(seq)
        previous = seq
    if run:
        missing += max(run) - min(run) + 1 - len(run)
    return missing


class HealthTracker:
    """Keeps a sliding window of each station's readings and derives its health.

    Args:
        registry: Stations and their reporting intervals.
        window_s: The completeness window (24 h).
    """

    def __init__(self, registry: StationRegistry, window_s: float = 86400.0) -> None:
        self._registry = registry
        self._window_s = window_s
        self._window_ns = int(window_s * NS_PER_S)
        self._tracks: dict[str, _Track] = {}
        self._caps: dict[str, int] = {}
        self._changed: set[str] = set()

    def _cap(self, station_id: str) -> int:
        # Memory per station is bounded by what its interval promises over the window (twice,
        # for duplicates and a faster-than-configured device), not by how much it sends.
        cap = self._caps.get(station_id)
        if cap is None:
            station = self._registry.get(station_id)
            interval_s = station.interval_s if station else 900
            cap = self._caps[station_id] = 2 * int(self._window_s / interval_s) + 16
        return cap

    def use_registry(self, registry: StationRegistry) -> None:
        """Follow a reloaded registry (intervals may have changed)."""
        self._registry = registry
        self._caps.clear()

    def observe(self, readings: Sequence[Reading], arrival_ns: int) -> None:
        """Take readings that arrived (were made durable) at ``arrival_ns``.

        Work is per station of the batch wherever it can be: this runs for every stored reading.
        """
        by_station: dict[str, list[Reading]] = {}
        for reading in readings:
            group = by_station.get(reading.station_id)
            if group is None:
                by_station[reading.station_id] = [reading]
            else:
                group.append(reading)
        for station_id, group in by_station.items():
            self._observe_station(station_id, group, arrival_ns)
        self._changed.update(by_station)

    def _observe_station(self, station_id: str, group: list[Reading], arrival_ns: int) -> None:
        track = self._tracks.get(station_id)
        single = len(group) == 1  # the usual case: one reading of a station per batch
        oldest_ns = group[0].ts_ns if single else min(r.ts_ns for r in group)
        if track is None:
            track = self._tracks[station_id] = _Track(first_seen_ns=oldest_ns)
        elif oldest_ns < track.first_seen_ns:
            track.first_seen_ns = oldest_ns
        kept = track.readings
        for reading in group:
            kept[reading.ts_ns] = reading.seq
        cap = self._cap(station_id)
        if len(kept) > cap + cap // 2:
            # Trim in bulk (amortised): keep the newest ``cap`` readings.
            for ts in sorted(kept)[: len(kept) - cap]:
                del kept[ts]
        newest = group[0] if single else max(group, key=_reading_time)
        # The freshest reading of the batch has the smallest delay: the best skew sample.
        track.skews_ns.append(arrival_ns - newest.ts_ns)
        vitals = track.vitals
        for name in _VITALS:
            value = newest.values.get(name)
            if value is not None:
                ts_ns = newest.ts_ns
            elif single:
                continue
            else:
                # Rare (a status message apart from the readings): look through the batch.
                found = [(r.ts_ns, r.values[name]) for r in group if name in r.values]
                if not found:
                    continue
                ts_ns, value = max(found)
            seen = vitals.get(name)
            if seen is None or ts_ns >= seen[0]:
                vitals[name] = (ts_ns, value)

    def take_changed(self) -> list[str]:
        """Stations that received readings since the last call, sorted."""
        changed, self._changed = sorted(self._changed), set()
        return changed

    @property
    def station_ids(self) -> list[str]:
        """Every observed station, sorted."""
        return sorted(self._tracks)

    def snapshot(
        self, now_ns: int, station_ids: Iterable[str] | None = None
    ) -> list[StationHealth]:
        """Health now of the given stations (default: all observed); old readings are forgotten."""
        start_ns = now_ns - self._window_ns
        snapshots = []
        wanted = self.station_ids if station_ids is None else station_ids
        for station_id in wanted:
            track = self._tracks.get(station_id)
            if track is None:
                continue
            for ts in [ts for ts in track.readings if ts < start_ns]:
                del track.readings[ts]
            station = self._registry.get(station_id)
            interval_ns = (station.interval_s if station else 900) * NS_PER_S
            known_from_ns = max(start_ns, track.first_seen_ns)
            expected = max(1, (now_ns - known_from_ns) // interval_ns)
            received = len({ts // interval_ns for ts in track.readings})
            last_seen = max(track.readings, default=None)
            if last_seen is None:
                last_seen = max((ts for ts, _ in track.vitals.values()), default=start_ns)
            vitals = {name: value for name, (_, value) in track.vitals.items()}
            snapshots.append(
                StationHealth(
                    station_id=station_id,
                    last_seen_ns=last_seen,
                    readings_24h=len(track.readings),
                    expected_24h=int(expected),
                    completeness_pct=round(min(100.0, 100.0 * received / expected), 2),
                    missing_by_seq=missing_from_sequence(track.readings.items()),
                    clock_skew_s=(min(track.skews_ns) / NS_PER_S) if track.skews_ns else None,
                    **vitals,
                )
            )
        return snapshots

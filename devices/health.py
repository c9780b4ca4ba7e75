"""Device health from the readings themselves. Pure: readings in, snapshots out.

"Last seen" is the newest reading *time*, not the last arrival: a store-and-forward backlog
arrives late and out of order and must not make a station look fresh (or stale).

Memory is bounded by design: each station holds a fixed number of bytes whatever its interval,
its traffic and the window. The window is a ring of :data:`BUCKETS` time buckets of counts
(readings, interval slots with a reading, readings missing by sequence), plus small bitmaps of
the latest slots and sequence numbers that recognise duplicates and late arrivals. The answers
equal those of keeping every reading (:func:`missing_from_sequence` is that reference) except
at the edges of what the bitmaps see, documented on :class:`HealthTracker`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from devices.readings import Reading
from devices.stations import StationRegistry

NS_PER_S = 1_000_000_000
BUCKETS = 48
"""Time buckets per window (30 minutes each over 24 h)."""
RECENT = 64
"""Slots and sequence numbers behind the newest that are remembered one by one (bitmaps)."""
_RECENT_MASK = (1 << RECENT) - 1
_SKEW_SAMPLES = 20
_RECENT_TIMES = 4
_DEFAULT_INTERVAL_S = 900
# Per bucket, three counters side by side in one array.
_READINGS, _SLOTS, _GAPS = 0, 1, 2
_FIELDS = 3


@dataclass(frozen=True, slots=True)
class StationHealth:
    """One station's health at a moment.

    Attributes:
        station_id: The station.
        last_seen_ns: Time of its newest reading (by the reading's own clock).
        readings_24h: Distinct readings in the window (counted up to twice what the station's
            interval promises: a chatty device does not inflate it).
        expected_24h: Readings its interval promises over the part of the window it was known.
        completeness_pct: Interval slots with a reading over those expected, at most 100.
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
_VITAL_SLOTS = tuple(enumerate(_VITALS))
_NEVER = -(2**63)


_reading_time = attrgetter("ts_ns")


class _Track:
    """One station's state: a fixed number of bytes (about 1.9 KB), whatever its traffic."""

    __slots__ = (
        "base",
        "counts",
        "first_seen_ns",
        "newest_ns",
        "newest_slot",
        "previous_seq",
        "recent_times",
        "recent_times_at",
        "run_max",
        "run_min",
        "run_ts_ns",
        "seq_bits",
        "skew_count",
        "skews_ns",
        "slot_bits",
        "vital_times",
        "vitals",
    )

    def __init__(self, first_seen_ns: int, ring: int) -> None:
        self.first_seen_ns = first_seen_ns
        self.newest_ns = -(2**63)
        self.base = _NEVER  # the newest bucket number held by the ring
        self.counts = array("i", bytes(4 * _FIELDS * ring))
        self.newest_slot = -(2**63)
        self.slot_bits = 0  # bit k: slot ``newest_slot - k`` has a reading
        self.recent_times = array("q", bytes(8 * _RECENT_TIMES))
        self.recent_times_at = 0
        self.run_max = -1  # the current sequence run's highest number (-1: none yet)
        self.run_min = -1  # and its lowest
        self.previous_seq = -1  # the sequence number of the newest reading that carried one
        self.run_ts_ns = -(2**63)  # time of the newest reading that carried a sequence number
        self.seq_bits = 0  # bit k: sequence number ``run_max - k`` was seen in this run
        self.skews_ns = array("q", bytes(8 * _SKEW_SAMPLES))
        self.skew_count = 0
        # Per name of _VITALS: its newest value and that reading's time (_NEVER: none yet).
        self.vitals = array("d", bytes(8 * len(_VITALS)))
        self.vital_times = array("q", [_NEVER] * len(_VITALS))


def missing_from_sequence(points: Iterable[tuple[int, int | None]]) -> int:
    """Readings missing by sequence gaps, given ``(ts_ns, seq)`` pairs in any order.

    Ordered by time, a sequence that falls back starts a new run (a reboot or counter reset);
    each run misses ``max - min + 1 - distinct`` numbers. This keeps every point: it is the
    reference that :class:`HealthTracker`'s bounded counters are tested against.
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
    """Keeps each station's health over a sliding window in constant memory per station.

    The window is held as :data:`BUCKETS` buckets (the window's start is rounded down to a
    bucket boundary). Duplicates are recognised exactly among a station's latest readings and
    within :data:`RECENT` interval slots / sequence numbers of its newest; a backlog arriving
    later than that is counted once per slot (capped by what the slot's bucket can hold), and a
    late reading fills a sequence gap only within :data:`RECENT` numbers of the newest.

    Args:
        registry: Stations and their reporting intervals.
        window_s: The completeness window (24 h).
    """

    def __init__(self, registry: StationRegistry, window_s: float = 86400.0) -> None:
        self._registry = registry
        self._window_s = window_s
        self._window_ns = int(window_s * NS_PER_S)
        self._bucket_ns = max(self._window_ns // BUCKETS, 1)
        # One bucket more than the window: the window's first bucket is usually partial.
        self._ring = -(-self._window_ns // self._bucket_ns) + 1
        self._tracks: dict[str, _Track] = {}
        self._intervals: dict[str, int] = {}
        self._changed: set[str] = set()

    def _interval_ns(self, station_id: str) -> int:
        interval = self._intervals.get(station_id)
        if interval is None:
            station = self._registry.get(station_id)
            interval_s = station.interval_s if station else _DEFAULT_INTERVAL_S
            interval = self._intervals[station_id] = interval_s * NS_PER_S
        return interval

    def promised(self, station_id: str) -> int:
        """Readings the station's interval promises over a whole window."""
        return int(self._window_ns // self._interval_ns(station_id))

    def use_registry(self, registry: StationRegistry) -> None:
        """Follow a reloaded registry (intervals may have changed)."""
        self._registry = registry
        self._intervals.clear()

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
        if len(group) > 1:
            group.sort(key=_reading_time)
        oldest_ns = group[0].ts_ns
        if track is None:
            track = self._tracks[station_id] = _Track(oldest_ns, self._ring)
        elif oldest_ns < track.first_seen_ns:
            track.first_seen_ns = oldest_ns
        interval_ns = self._intervals.get(station_id) or self._interval_ns(station_id)
        count = self._count
        for reading in group:
            count(track, reading, interval_ns)
        newest = group[-1]
        newest_ns = newest.ts_ns
        # The freshest reading of the batch has the smallest delay: the best skew sample.
        track.skews_ns[track.skew_count % _SKEW_SAMPLES] = arrival_ns - newest_ns
        track.skew_count += 1
        vitals, vital_times = track.vitals, track.vital_times
        values = newest.values
        single = len(group) == 1
        for at, name in _VITAL_SLOTS:
            value = values.get(name)
            if value is not None:
                ts_ns = newest_ns
            elif single:
                continue
            else:
                # Rare (a status message apart from the readings): look through the batch.
                found = [(r.ts_ns, r.values[name]) for r in group if name in r.values]
                if not found:
                    continue
                ts_ns, value = max(found)
            if ts_ns >= vital_times[at]:
                vitals[at], vital_times[at] = value, ts_ns

    def _slot_index(self, track: _Track, ts_ns: int) -> int | None:
        """The ring index of ``ts_ns``'s bucket, advancing the ring; None when too old for it."""
        bucket = ts_ns // self._bucket_ns
        ring = self._ring
        if bucket > track.base:
            if track.base != _NEVER:  # a new track's ring is all zeros already
                counts = track.counts
                for step in range(1, min(bucket - track.base, ring) + 1):
                    at = ((track.base + step) % ring) * _FIELDS
                    counts[at] = counts[at + 1] = counts[at + 2] = 0
            track.base = bucket
        elif bucket <= track.base - ring:
            return None
        return (bucket % ring) * _FIELDS

    def _count(self, track: _Track, reading: Reading, interval_ns: int) -> None:
        ts_ns = reading.ts_ns
        if ts_ns in track.recent_times:
            return  # a duplicate of one of the latest readings (QoS 1 redelivery, a re-send)
        track.recent_times[track.recent_times_at % _RECENT_TIMES] = ts_ns
        track.recent_times_at += 1
        if ts_ns > track.newest_ns:  # noqa: PLR1730 - faster than max() on the hot path
            track.newest_ns = ts_ns
        bucket_ns = self._bucket_ns
        bucket = ts_ns // bucket_ns
        if bucket == track.base:  # the usual case, inlined: the ring's newest bucket
            at = (bucket % self._ring) * _FIELDS
        else:
            found = self._slot_index(track, ts_ns)
            if found is None:
                return
            at = found
        counts = track.counts
        per_bucket = bucket_ns // interval_ns + 2  # slots a bucket touches, at most
        if counts[at + _READINGS] < 2 * per_bucket:
            counts[at + _READINGS] += 1
        slot = ts_ns // interval_ns
        behind = track.newest_slot - slot
        if behind < 0:
            track.slot_bits = ((track.slot_bits << -behind) | 1) & _RECENT_MASK
            track.newest_slot = slot
            new_slot = True
        elif behind < RECENT:
            new_slot = not (track.slot_bits >> behind) & 1
            track.slot_bits |= 1 << behind
        else:
            new_slot = True  # too far back to remember one by one: the bucket's cap bounds it
        if new_slot and counts[at + _SLOTS] < per_bucket:
            counts[at + _SLOTS] += 1
        seq = reading.seq
        if seq is not None:
            if ts_ns >= track.run_ts_ns and seq > track.run_max:
                # The usual case, inlined: in time order, the run's next numbers.
                behind = track.run_max - seq
                if track.run_max >= 0:
                    previous_ns = track.run_ts_ns
                    previous = (
                        at  # the reading before it is in the same bucket, usually
                        if previous_ns // bucket_ns == bucket
                        else self._slot_index(track, previous_ns)
                    )
                    if previous is not None:
                        # The gap belongs to the reading before it, so it leaves the window
                        # with it.
                        counts[previous + _GAPS] += -behind - 1
                    track.seq_bits = ((track.seq_bits << -behind) | 1) & _RECENT_MASK
                    track.run_max = seq
                else:
                    track.run_max, track.run_min, track.seq_bits = seq, seq, 1
                track.run_ts_ns = ts_ns
                track.previous_seq = seq
            else:
                self._sequence(track, seq, ts_ns)

    def _sequence(self, track: _Track, seq: int, ts_ns: int) -> None:
        """Count gaps in the sequence numbers incrementally (see :func:`missing_from_sequence`)."""
        behind = track.run_max - seq
        if ts_ns >= track.run_ts_ns:
            # In time order: the usual case.
            previous_at = self._slot_index(track, track.run_ts_ns) if track.run_max >= 0 else None
            track.run_ts_ns = ts_ns
            seen = 0 <= behind < RECENT and (track.seq_bits >> behind) & 1
            previous, track.previous_seq = track.previous_seq, seq
            if track.run_max < 0 or (seq < previous and not seen):
                # Fell back: a reboot or a counter reset starts a new run.
                track.run_max, track.run_min, track.seq_bits = seq, seq, 1
            elif behind < 0:
                if previous_at is not None:
                    # The gap belongs to the reading before it, so it leaves the window with it.
                    track.counts[previous_at + _GAPS] += -behind - 1
                track.seq_bits = ((track.seq_bits << -behind) | 1) & _RECENT_MASK
                track.run_max = seq
            elif not seen and behind < RECENT:
                track.seq_bits |= 1 << behind
                at = self._slot_index(track, ts_ns)
                if at is not None:
                    track.counts[at + _GAPS] -= 1  # fills a gap of the run
        elif 0 < behind < RECENT and not (track.seq_bits >> behind) & 1:
            track.seq_bits |= 1 << behind
            at = self._slot_index(track, ts_ns)
            if at is None:
                return
            if seq > track.run_min:
                track.counts[at + _GAPS] -= 1  # a late reading inside the run fills a gap
            else:
                # A late reading before the run's first extends it back, maybe over a gap.
                track.counts[at + _GAPS] += track.run_min - seq - 1
                track.run_min = seq

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
        first_bucket = start_ns // self._bucket_ns
        ring = self._ring
        snapshots = []
        wanted = self.station_ids if station_ids is None else station_ids
        for station_id in wanted:
            track = self._tracks.get(station_id)
            if track is None:
                continue
            interval_ns = self._interval_ns(station_id)
            readings = slots = gaps = 0
            counts = track.counts
            for bucket in range(max(first_bucket, track.base - ring + 1), track.base + 1):
                at = (bucket % ring) * _FIELDS
                readings += counts[at + _READINGS]
                slots += counts[at + _SLOTS]
                gaps += counts[at + _GAPS]
            known_from_ns = max(start_ns, track.first_seen_ns)
            expected = max(1, (now_ns - known_from_ns) // interval_ns)
            promised = int(self._window_s * NS_PER_S // interval_ns)
            samples = track.skews_ns[: min(track.skew_count, _SKEW_SAMPLES)]
            vitals = {
                name: track.vitals[at]
                for at, name in enumerate(_VITALS)
                if track.vital_times[at] != _NEVER
            }
            snapshots.append(
                StationHealth(
                    station_id=station_id,
                    last_seen_ns=track.newest_ns,
                    readings_24h=min(readings, 2 * promised + 16),
                    expected_24h=int(expected),
                    completeness_pct=round(min(100.0, 100.0 * slots / expected), 2),
                    missing_by_seq=max(gaps, 0),
                    clock_skew_s=(min(samples) / NS_PER_S) if samples else None,
                    **vitals,
                )
            )
        return snapshots


BACK_DATED_AFTER_S = 3600.0
"""Readings arriving this long after their own time are a backlog, a replay or a simulation."""


def time_basis(clock_skew_s: float | None) -> str:
    """How to read a station's completeness and skew: ``live``, ``unknown`` or ``back-dated``.

    A replayed CSV, an accelerated simulation or a store-and-forward backlog delivers readings
    days after their own time. Completeness (judged over the last 24 h by reading time) and
    clock skew then describe the delivery, not the device: a demo flood shows 0 % and a skew of
    days. Operators see that labelled, not as an alarming fault.
    """
    if clock_skew_s is None:
        return "unknown"
    return "back-dated" if clock_skew_s > BACK_DATED_AFTER_S else "live"

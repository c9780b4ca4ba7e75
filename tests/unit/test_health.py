"""Device health from readings: last seen by reading time, completeness, gaps, skew, vitals."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from devices import Reading
from devices.health import HealthTracker, missing_from_sequence
from devices.stations import parse_stations

S = 1_000_000_000
REGISTRY = parse_stations(
    """
stations:
  - {id: g1, name: G1, regency: R, latitude: 0, longitude: 0, interval_s: 600,
     metrics: {water_level_cm: {unit: cm, min: 0, max: 2000}, battery_v: {unit: V, min: 0, max: 15},
               rssi_dbm: {unit: dBm, min: -150, max: 0}}}
"""
)
NOW = 1_800_000_000 * S


def reading(minutes_ago: float, seq: int | None = None, **values: float) -> Reading:
    return Reading("g1", NOW - int(minutes_ago * 60 * S), {"water_level_cm": 1.0, **values}, seq)


def test_last_seen_is_the_newest_reading_time_even_when_a_backlog_arrives_last() -> None:
    tracker = HealthTracker(REGISTRY)
    tracker.observe([reading(5, battery_v=3.9)], arrival_ns=NOW)
    tracker.observe([reading(600, battery_v=4.1), reading(590)], arrival_ns=NOW + 10 * S)
    (health,) = tracker.snapshot(NOW + 20 * S)
    assert health.last_seen_ns == NOW - 5 * 60 * S
    assert health.battery_v == 3.9  # the newest reading's battery, not the backlog's


def test_completeness_over_the_window_from_the_interval() -> None:
    tracker = HealthTracker(REGISTRY)
    # 24 h at 10 min is 144 slots; 36 of them are missing.
    known_before_the_window = reading(24 * 60 + 30)
    tracker.observe([known_before_the_window], arrival_ns=NOW)
    tracker.observe([reading(10 * i + 5) for i in range(144) if i % 4 != 0], arrival_ns=NOW)
    (health,) = tracker.snapshot(NOW)
    assert health.expected_24h == 144
    assert health.readings_24h == 108
    assert health.completeness_pct == 75.0


def test_a_new_station_is_not_blamed_for_the_time_before_it_existed() -> None:
    tracker = HealthTracker(REGISTRY)
    tracker.observe(
        [reading(55), reading(45), reading(35), reading(25), reading(15), reading(5)],
        arrival_ns=NOW,
    )
    (health,) = tracker.snapshot(NOW)
    assert health.expected_24h == 5
    assert health.completeness_pct == 100.0


def test_sequence_gaps_count_missing_readings_across_a_counter_reset() -> None:
    assert missing_from_sequence([(1, 5), (2, 6), (3, 9), (4, 0), (5, 2)]) == 3
    assert missing_from_sequence([(3, 3), (1, 1), (2, 2)]) == 0  # out of order, complete
    assert missing_from_sequence([(1, None), (2, None)]) == 0


def test_clock_skew_is_the_smallest_recent_delay() -> None:
    tracker = HealthTracker(REGISTRY)
    tracker.observe([reading(0)], arrival_ns=NOW + 3 * S)
    tracker.observe([reading(1)], arrival_ns=NOW + 62 * S)
    (health,) = tracker.snapshot(NOW)
    assert health.clock_skew_s == 3.0


def test_a_device_clock_running_ahead_gives_negative_skew() -> None:
    tracker = HealthTracker(REGISTRY)
    tracker.observe([reading(-2)], arrival_ns=NOW)  # stamped two minutes in the future
    (health,) = tracker.snapshot(NOW)
    assert health.clock_skew_s == -120.0


def test_readings_older_than_the_window_are_forgotten() -> None:
    tracker = HealthTracker(REGISTRY, window_s=3600)
    tracker.observe([reading(90, seq=1), reading(30, seq=2)], arrival_ns=NOW)
    (health,) = tracker.snapshot(NOW)
    assert health.readings_24h == 1


def test_memory_per_station_is_bounded_by_its_interval_not_its_traffic() -> None:
    tracker = HealthTracker(REGISTRY, window_s=3600)  # 10 min interval: 6 promised per window
    tracker.observe([reading(i / 600, seq=i) for i in range(10_000)], arrival_ns=NOW)
    (health,) = tracker.snapshot(NOW)
    assert health.readings_24h <= 2 * 6 + 16 + (2 * 6 + 16) // 2
    assert health.last_seen_ns == NOW  # the newest readings are the ones kept


def test_only_stations_that_reported_are_listed_as_changed() -> None:
    tracker = HealthTracker(REGISTRY)
    tracker.observe([reading(5)], arrival_ns=NOW)
    assert tracker.take_changed() == ["g1"]
    assert tracker.take_changed() == []
    assert tracker.station_ids == ["g1"]


def test_a_vital_carried_by_an_older_reading_of_the_batch_is_kept() -> None:
    tracker = HealthTracker(REGISTRY)
    status = Reading("g1", NOW - 120 * S, {"battery_v": 3.6})
    tracker.observe([status, reading(1), reading(0, rssi_dbm=-90.0)], arrival_ns=NOW)
    (health,) = tracker.snapshot(NOW)
    assert health.battery_v == 3.6
    assert health.rssi_dbm == -90.0


# Bounded memory: the counters give the answers of keeping every reading.


class _KeepEverything:
    """The simple reference: every reading kept, answers computed from scratch."""

    def __init__(self, interval_s: int, window_s: int) -> None:
        self.interval_ns = interval_s * S
        self.window_ns = window_s * S
        self.points: dict[int, int | None] = {}

    def observe(self, readings: list[Reading]) -> None:
        for r in readings:
            self.points[r.ts_ns] = r.seq

    def answers(self, now_ns: int) -> tuple[int, int, int, int]:
        start = now_ns - self.window_ns
        kept = {ts: seq for ts, seq in self.points.items() if ts >= start}
        slots = len({ts // self.interval_ns for ts in kept})
        return len(kept), slots, missing_from_sequence(kept.items()), max(self.points)


def _stream(rng: random.Random, interval_s: int, slots: int, *, resets: bool) -> list[Reading]:
    """Readings slot by slot: some slots empty, some twice, sequence gaps and resets."""
    readings: list[Reading] = []
    seq = run_start = 1_000_000 + rng.randrange(1000)
    for slot in range(slots):
        for _ in range(rng.choice([0, 1, 1, 1, 2])):
            seq += rng.choice([1, 1, 1, 2, 3])
            if resets and rng.randrange(30) == 0:
                seq = run_start = run_start - 1000  # a counter reset, below the run it ends
            ts = NOW - (slots - slot) * interval_s * S + rng.randrange(interval_s) * S
            if not readings or ts > readings[-1].ts_ns:
                readings.append(Reading("g1", ts, {"water_level_cm": 1.0}, seq))
    return readings


def in_time_order(seed: int) -> tuple[list[list[Reading]], int]:
    """Batches in time order, with duplicates; the stream may be longer than the window."""
    rng = random.Random(seed)
    batches: list[list[Reading]] = []
    for r in _stream(rng, 600, rng.randrange(1, 400), resets=True):
        batch = [r, r] if rng.randrange(10) == 0 else [r]  # a QoS 1 redelivery
        if batches and rng.randrange(2):
            batches[-1].extend(batch)
        else:
            batches.append(batch)
    return batches, rng.choice([3600, 6 * 3600, 86400])


def a_little_out_of_order(seed: int) -> tuple[list[list[Reading]], int]:
    """Batches of one sequence run, some delivered before the batch before them."""
    rng = random.Random(seed)
    readings = _stream(rng, 600, rng.randrange(1, 140), resets=False)  # within the window
    batches = [readings[i : i + 4] for i in range(0, len(readings), 4)]
    for i in range(len(batches) - 1):
        if rng.randrange(4) == 0:
            batches[i], batches[i + 1] = batches[i + 1], batches[i]
    return batches, 86400


def _compare(batches: list[list[Reading]], window_s: int) -> None:
    tracker = HealthTracker(REGISTRY, window_s=window_s)
    reference = _KeepEverything(600, window_s)
    for batch in batches:
        if batch:
            tracker.observe(list(batch), arrival_ns=NOW)
            reference.observe(batch)
    if not reference.points:
        return
    (health,) = tracker.snapshot(NOW)
    readings, slots, missing, newest = reference.answers(NOW)
    first = min(reference.points)
    expected = max(1, (NOW - max(NOW - window_s * S, first)) // (600 * S))
    assert health.readings_24h == readings
    assert health.expected_24h == expected
    assert health.completeness_pct == round(min(100.0, 100.0 * slots / expected), 2)
    assert health.missing_by_seq == missing
    assert health.last_seen_ns == newest


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32))
def test_bounded_counters_equal_keeping_every_reading_in_time_order(seed: int) -> None:
    _compare(*in_time_order(seed))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32))
def test_bounded_counters_equal_keeping_every_reading_out_of_order(seed: int) -> None:
    _compare(*a_little_out_of_order(seed))


def test_a_station_holds_the_same_bytes_after_a_day_of_readings_as_after_one() -> None:
    tracker = HealthTracker(REGISTRY)
    tracker.observe([reading(24 * 60, seq=0, battery_v=3.9)], arrival_ns=NOW)
    track = tracker._tracks["g1"]
    sizes = (len(track.counts), len(track.skews_ns), len(track.recent_times))
    tracker.observe(
        [reading(24 * 60 - i / 60, seq=i, battery_v=3.9) for i in range(1, 86_400)],
        arrival_ns=NOW,
    )
    assert (len(track.counts), len(track.skews_ns), len(track.recent_times)) == sizes
    assert len(track.vitals) == 4
    assert track.slot_bits.bit_length() <= 64
    assert track.seq_bits.bit_length() <= 64

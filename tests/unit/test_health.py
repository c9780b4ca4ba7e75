"""Device health from readings: last seen by reading time, completeness, gaps, skew, vitals."""

from __future__ import annotations

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

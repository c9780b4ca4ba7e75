"""Health snapshots are stored when they change materially or at a heartbeat, not every round."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from devices import Reading
from devices.health import StationHealth
from devices.stations import parse_stations
from ingest.health import HealthRecorder, Materiality, changed_materially
from ingest.storage.memory import MemoryStorage

S = 1_000_000_000
START = 1_800_000_000 * S
REGISTRY = parse_stations(
    "stations:\n"
    + "".join(
        f"  - {{id: s{i}, name: S, regency: R, latitude: 0, longitude: 0, interval_s: 60,"
        " metrics: {water_level_cm: {unit: cm, min: 0, max: 2000},"
        " battery_v: {unit: V, min: 0, max: 15}}}\n"
        for i in range(10)
    )
)


class CountingStorage(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[list[str]] = []

    async def write_health(self, snapshots: Sequence[StationHealth], ts_ns: int) -> None:
        self.writes.append([s.station_id for s in snapshots])
        await super().write_health(snapshots, ts_ns)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> int:
        return self.now


def minutes(recorder: HealthRecorder, clock: Clock, count: int, battery: float = 12.6) -> int:
    """``count`` one-minute rounds in which every station reports once; snapshots stored."""
    stored = 0
    for _ in range(count):
        clock.now += 60 * S
        readings = [
            Reading(f"s{i}", clock.now - S, {"water_level_cm": 100.0, "battery_v": battery})
            for i in range(10)
        ]
        asyncio.run(recorder.observe(readings))
        stored += asyncio.run(recorder.record())
    return stored


def with_a_day_behind(recorder: HealthRecorder, clock: Clock) -> None:
    """Stations that have reported every minute for a day (so one more reading is not news)."""
    day = [
        Reading(f"s{i}", clock.now - m * 60 * S, {"water_level_cm": 100.0, "battery_v": 12.6})
        for i in range(10)
        for m in range(1, 1441)
    ]
    asyncio.run(recorder.observe(day))
    recorder.tracker.take_changed()


def test_steady_stations_are_stored_once_then_at_the_heartbeat() -> None:
    storage, clock = CountingStorage(), Clock()
    recorder = HealthRecorder(REGISTRY, storage, 60.0, clock_ns=clock, heartbeat_s=600.0)
    with_a_day_behind(recorder, clock)
    # Minute 1 stores all ten; their completeness then stays 100% and their battery steady.
    assert minutes(recorder, clock, 1) == 10
    steady = minutes(recorder, clock, 9)
    assert steady == 0
    # Each station's stored snapshot is renewed once per heartbeat (ten minutes).
    assert minutes(recorder, clock, 10) == 10
    assert set(storage.health_snapshots) == {f"s{i}" for i in range(10)}


def test_a_material_change_is_stored_at_once() -> None:
    storage, clock = CountingStorage(), Clock()
    recorder = HealthRecorder(REGISTRY, storage, 60.0, clock_ns=clock, heartbeat_s=3600.0)
    with_a_day_behind(recorder, clock)
    minutes(recorder, clock, 2)
    assert minutes(recorder, clock, 1, battery=11.9) == 10
    assert storage.health_snapshots["s0"].battery_v == 11.9


def test_a_station_gone_silent_is_still_looked_at_within_a_heartbeat() -> None:
    storage, clock = CountingStorage(), Clock()
    recorder = HealthRecorder(REGISTRY, storage, 60.0, clock_ns=clock, heartbeat_s=300.0)
    minutes(recorder, clock, 1)
    for _ in range(10):  # ten silent minutes: the sweep reaches every station twice
        clock.now += 60 * S
        asyncio.run(recorder.record())
    completeness = {h.completeness_pct for h in storage.health_snapshots.values()}
    assert max(completeness) < 100.0
    assert len(storage.health_snapshots) == 10


def test_what_counts_as_material() -> None:
    base = StationHealth("s", START, 8000, 8640, 92.59, 3, 0.5, 12.6, None, -80.0, None)
    limits = Materiality()

    def with_(**changes: object) -> StationHealth:
        fields = {name: getattr(base, name) for name in StationHealth.__slots__}
        return StationHealth(**{**fields, **changes})  # type: ignore[arg-type]

    assert not changed_materially(base, with_(last_seen_ns=START + 60 * S), limits, 8640)
    assert not changed_materially(base, with_(readings_24h=8080, battery_v=12.62), limits, 8640)
    assert changed_materially(base, with_(readings_24h=8090), limits, 8640)  # over 1% of 8640
    assert not changed_materially(base, with_(readings_24h=8001), limits, 8640)
    assert changed_materially(base, with_(readings_24h=8001), limits, 96)  # a 15-minute gauge
    assert changed_materially(base, with_(missing_by_seq=4), limits, 8640)
    assert changed_materially(base, with_(completeness_pct=91.5), limits, 8640)
    assert changed_materially(base, with_(battery_v=12.5), limits, 8640)
    assert changed_materially(base, with_(rssi_dbm=None), limits, 8640)
    assert changed_materially(base, with_(snr_db=7.0), limits, 8640)

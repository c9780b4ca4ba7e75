"""One contract, three backends: InfluxDB (real server), SQLite and in-memory answer alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devices import Reading, Reason, Rejection
from devices.health import StationHealth
from ingest.batch import Batch, StoredRejection
from ingest.settings import InfluxSettings
from ingest.storage.base import AlertRecord, LatestReading, MetricSpan, Storage, WindowStat
from ingest.storage.influx import InfluxStorage
from ingest.storage.memory import MemoryStorage
from ingest.storage.sqlite import SqliteStorage
from ops.servers import InfluxServer

pytestmark = pytest.mark.integration

T0 = 1_790_000_400_000_000_000  # a multiple of 10 min: windows align to the epoch
MIN = 60_000_000_000


@pytest.fixture(params=["influx", "memory", "sqlite"])
async def storage(
    request: pytest.FixtureRequest, influx_session: InfluxServer, database: str, tmp_path: Path
) -> AsyncIterator[Storage]:
    if request.param == "memory":
        yield MemoryStorage()
        return
    if request.param == "sqlite":
        sqlite = SqliteStorage(tmp_path / "siaga.sqlite")
        await sqlite.prepare()
        yield sqlite
        await sqlite.aclose()
        return
    tags = {"station": "", "regency": "Tulang Bawang", "river": "Way Tulang Bawang"}
    influx = InfluxStorage(
        InfluxSettings(url=influx_session.url, database=database),
        lambda station_id: {**tags, "station": station_id},
    )
    await influx.prepare()
    yield influx
    await influx.aclose()


def level(station: str, minute: float, cm: float, seq: int | None = None) -> Reading:
    return Reading(station, T0 + int(minute * MIN), {"water_level_cm": cm, "battery_v": 3.9}, seq)


async def test_latest_is_the_newest_reading_time_not_the_last_written(storage: Storage) -> None:
    await storage.write(Batch([level("a", 5, 150.0, 5), level("b", 1, 80.0)]))
    await storage.write(Batch([level("a", 2, 120.0, 2)]))  # a late backlog reading
    latest = await storage.latest()
    assert latest["a"] == LatestReading(
        "a", T0 + 5 * MIN, {"water_level_cm": 150.0, "battery_v": 3.9}
    )
    assert set(latest) == {"a", "b"}
    assert set(await storage.latest(["b"])) == {"b"}
    assert await storage.latest([]) == {}


async def test_a_rewritten_reading_overwrites_itself(storage: Storage) -> None:
    await storage.write(Batch([level("a", 1, 100.0)]))
    await storage.write(Batch([level("a", 1, 101.0)]))
    (stat,) = await storage.window("a", "water_level_cm", T0, T0 + 10 * MIN, 600)
    assert stat.count == 1
    assert stat.mean == 101.0


async def test_windows_aggregate_mean_min_max_count(storage: Storage) -> None:
    await storage.write(
        Batch([level("a", m, cm) for m, cm in [(0, 100.0), (1, 110.0), (2, 130.0), (11, 90.0)]])
    )
    stats = await storage.window("a", "water_level_cm", T0, T0 + 20 * MIN, 600)
    assert stats == [
        WindowStat(T0, 340.0 / 3, 100.0, 130.0, 3),
        WindowStat(T0 + 10 * MIN, 90.0, 90.0, 90.0, 1),
    ]
    assert await storage.window("a", "water_level_cm", T0 + 30 * MIN, T0 + 40 * MIN, 60) == []


async def test_rejections_newest_first_and_by_reason(storage: Storage) -> None:
    def rejected(reason: Reason, at: int, station: str | None = "a") -> StoredRejection:
        return StoredRejection(
            Rejection(reason, f"{reason} detail", station), "siaga/a/telemetry", '{"x": 1}', T0 + at
        )

    await storage.write(
        Batch(
            [],
            [
                rejected(Reason.OUT_OF_RANGE, 1),
                rejected(Reason.BAD_SHAPE, 2),
                rejected(Reason.UNKNOWN_STATION, 3, None),
            ],
        )
    )
    found = await storage.rejections(T0)
    assert [r.received_ns for r in found] == [T0 + 3, T0 + 2, T0 + 1]
    assert found[0].rejection.station_id is None
    assert found[2] == rejected(Reason.OUT_OF_RANGE, 1)
    only = await storage.rejections(T0, reason=Reason.BAD_SHAPE)
    assert [r.rejection.reason for r in only] == [Reason.BAD_SHAPE]
    assert len(await storage.rejections(T0, limit=2)) == 2
    assert await storage.rejections(T0 + 4) == []


async def test_health_snapshots_round_trip(storage: Storage) -> None:
    health = StationHealth("a", T0, 90, 96, 93.75, 3, 1.5, battery_v=3.9, rssi_dbm=-97.0)
    await storage.write_health([health], T0 + MIN)
    assert (await storage.health())["a"] == health


async def test_raw_readings_of_one_metric_oldest_first_up_to_a_limit(storage: Storage) -> None:
    await storage.write(Batch([level("a", m, 100.0 + m) for m in (3, 1, 2)] + [level("b", 1, 5)]))
    await storage.write(Batch([Reading("a", T0 + 4 * MIN, {"battery_v": 3.8})]))
    found = await storage.readings("a", "water_level_cm", T0, T0 + 10 * MIN, 100)
    assert found == [(T0 + MIN, 101.0), (T0 + 2 * MIN, 102.0), (T0 + 3 * MIN, 103.0)]
    assert len(await storage.readings("a", "water_level_cm", T0, T0 + 10 * MIN, 2)) == 2
    assert await storage.readings("a", "water_level_cm", T0 + 2 * MIN, T0 + 3 * MIN, 9) == [
        (T0 + 2 * MIN, 102.0)
    ]


async def test_spans_give_each_stations_first_and_last_value_since(storage: Storage) -> None:
    await storage.write(
        Batch([level("a", m, 100.0 + 10 * m) for m in (0, 5, 9)] + [level("b", 8, 40.0)])
    )
    spans = await storage.spans("water_level_cm", T0 + MIN)
    assert spans["a"] == MetricSpan("a", T0 + 5 * MIN, 150.0, T0 + 9 * MIN, 190.0)
    assert spans["b"] == MetricSpan("b", T0 + 8 * MIN, 40.0, T0 + 8 * MIN, 40.0)
    assert set(await storage.spans("water_level_cm", T0, ["b"])) == {"b"}
    assert await storage.spans("water_level_cm", T0 + 10 * MIN) == {}


async def test_rejections_by_station_and_until(storage: Storage) -> None:
    def rejected(at: int, station: str | None) -> StoredRejection:
        return StoredRejection(
            Rejection(Reason.OUT_OF_RANGE, "too high", station), "t", "{}", T0 + at * MIN
        )

    await storage.write(Batch(rejections=[rejected(1, "a"), rejected(2, "b"), rejected(3, "a")]))
    by_station = await storage.rejections(T0, station_id="a")
    assert [r.received_ns for r in by_station] == [T0 + 3 * MIN, T0 + MIN]
    until = await storage.rejections(T0, until_ns=T0 + 3 * MIN)
    assert [r.received_ns for r in until] == [T0 + 2 * MIN, T0 + MIN]


async def test_names_influxql_must_escape_are_asked_for_safely(storage: Storage) -> None:
    # Quotes and backslashes round-trip; a line break (InfluxQL's \n escape) finds nothing
    # and is no error (a raw newline ended the string and InfluxDB answered 400).
    odd = ["it's", 'say "x"', "back\\slash", "a\\'b"]
    rows = [
        StoredRejection(Rejection(Reason.OUT_OF_RANGE, "x", name), "t", "{}", T0 + i * MIN)
        for i, name in enumerate(odd, start=1)
    ]
    await storage.write(Batch(rejections=rows))
    for name in odd:
        found = await storage.rejections(T0, station_id=name)
        assert [r.rejection.station_id for r in found] == [name]
    for name in ("a\nb", "a\r\nb", "a\rb", "a\x00b", "x' OR station =~ /./ OR station = 'y"):
        assert await storage.rejections(T0, station_id=name) == []


def alert(
    station: str, minute: float, level: str, firing: bool = True, **extra: object
) -> AlertRecord:
    values: dict[str, object] = {
        "ts_ns": T0 + int(minute * MIN),
        "station_id": station,
        "kind": "level",
        "rule": "level",
        "level": level,
        "firing": firing,
        "late": False,
        "text": f'{station} {level}, "naik" = cepat',
        "event_id": f"e{station}{minute}",
    }
    values.update(extra)
    return AlertRecord(**values)  # type: ignore[arg-type]


async def test_alerts_come_back_oldest_first_by_time_and_station(storage: Storage) -> None:
    records = [
        alert("b", 3, "SIAGA"),
        alert("a", 1, "WASPADA"),
        alert("a", 2, "AWAS", late=True),
        alert("regency:Tulang Bawang", 4, "NORMAL", firing=False, kind="no_data", rule="no_data"),
    ]
    await storage.write_alerts(records)
    assert await storage.alerts(T0) == [records[1], records[2], records[0], records[3]]
    assert await storage.alerts(T0 + 2 * MIN, T0 + 4 * MIN) == [records[2], records[0]]
    assert await storage.alerts(T0, station_ids=["a"]) == [records[1], records[2]]
    assert await storage.alerts(T0, station_ids=[]) == []
    assert await storage.alerts(T0, limit=1) == [records[1]]


async def test_the_same_alert_written_twice_is_stored_once(storage: Storage) -> None:
    await storage.write_alerts([alert("a", 1, "SIAGA")])
    await storage.write_alerts([alert("a", 1, "SIAGA")])
    await storage.write_alerts([])
    assert await storage.alerts(T0) == [alert("a", 1, "SIAGA")]

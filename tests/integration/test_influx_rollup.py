"""Hourly rollups answer long windows exactly as raw readings do, late readings included."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from devices import Reading
from ingest.batch import Batch
from ingest.settings import InfluxSettings
from ingest.storage.base import WindowStat
from ingest.storage.influx import InfluxStorage, RollupPass
from ingest.storage.rollup import ALL_STATIONS, HOUR_NS, NS, Marks, merge, plan
from ops.servers import InfluxServer, MosquittoServer
from tests.helpers import influx_count, influx_query, wait_for
from tests.integration.conftest import NewWorker
from tests.integration.drivers import WorkerProcess, paho_publish, telemetry_messages

pytestmark = pytest.mark.integration

NOW = 1_790_000_000 * NS + 1234  # not on an hour: windows must still line up
DAY = 24 * HOUR_NS


@pytest.fixture
async def storage(influx_session: InfluxServer, database: str) -> AsyncIterator[InfluxStorage]:
    influx = InfluxStorage(
        InfluxSettings(url=influx_session.url, database=database),
        lambda station_id: {"station": station_id, "regency": "R"},
    )
    influx.clock_ns = lambda: NOW
    await influx.prepare()
    assert influx.rollups_ready
    yield influx
    await influx.aclose()


def _level(minute: int) -> float:
    return 100.0 + (minute * 7919) % 113 / 3


async def _both(
    storage: InfluxStorage, start: int, end: int, window_s: int
) -> tuple[list[WindowStat], list[WindowStat]]:
    with_rollup = await storage.window("a", "water_level_cm", start, end, window_s)
    storage.rollups_ready = False
    raw = await storage.window("a", "water_level_cm", start, end, window_s)
    storage.rollups_ready = True
    return with_rollup, raw


def _same(left: list[WindowStat], right: list[WindowStat]) -> None:
    assert [(w.start_ns, w.count, w.min, w.max) for w in left] == [
        (w.start_ns, w.count, w.min, w.max) for w in right
    ]
    for a, b in zip(left, right, strict=True):
        assert a.mean == pytest.approx(b.mean, rel=1e-12)


async def test_long_windows_from_the_rollup_equal_raw_ones(storage: InfluxStorage) -> None:
    minutes = 4 * 24 * 60
    readings = [
        Reading("a", NOW - (minutes - m) * 60 * NS, {"water_level_cm": _level(m)})
        for m in range(0, minutes, 7)
    ]
    await storage.write(Batch(readings))
    # What the continuous query would have done by now (the test server runs none).
    await storage.refresh_rollup(NOW - 5 * DAY, NOW)
    # And the background pass, so that no hour is read raw for being dirty.
    storage.clock_ns = lambda: NOW + 60 * NS
    assert (await storage.refresh_dirty()).hours > 24
    storage.clock_ns = lambda: NOW
    assert await storage._dirty_hours("a", NOW - 5 * DAY, NOW) == []
    start = NOW - 3 * DAY - 1234567
    assert plan(start, NOW, 3600, NOW).use_rollup
    for window_s in (3600, 86400):
        with_rollup, raw = await _both(storage, start, NOW, window_s)
        assert len(raw) > 3
        _same(with_rollup, raw)


async def _rows(storage: InfluxStorage, station: str, start: int, end: int) -> list[float]:
    """The stored rollup's hourly maxima (what the chart would read without the marks)."""
    return [row[4] for row in await storage._rollup_rows(station, "water_level_cm", start, end)]


async def test_a_late_reading_is_read_raw_until_the_background_pass_rolls_it_up(
    storage: InfluxStorage,
) -> None:
    clock = [NOW]
    storage.clock_ns = lambda: clock[0]
    hour = NOW - DAY * 2 - (NOW - DAY * 2) % HOUR_NS
    await storage.write(
        Batch([Reading("a", hour + m * 60 * NS, {"water_level_cm": 1.0}) for m in range(600)])
    )
    # Ten hours, all late: rolled up by the next pass, once it is rollup_settle_s (30 s) old.
    clock[0] = NOW + 31 * NS
    assert (await storage.refresh_dirty()).hours == 10
    # More of the backlog arrives: two days old, far beyond the continuous query's reach.
    await storage.write(Batch([Reading("a", hour + 30 * NS, {"water_level_cm": 99.0})]))
    # Acknowledged without any rollup on the write path: the stored rollup is stale...
    assert max(await _rows(storage, "a", hour, hour + HOUR_NS)) == 1.0
    # ... but charts are exact at once: the dirty hour is read raw.
    with_rollup, raw = await _both(storage, NOW - 3 * DAY, NOW, 3600)
    _same(with_rollup, raw)
    assert max(w.max for w in with_rollup) == 99.0
    # Marks younger than rollup_settle_s wait: a write that made them may still be on its way.
    clock[0] = NOW + 41 * NS
    assert (await storage.refresh_dirty()).hours == 0
    assert await storage._dirty_hours("a", hour, hour + HOUR_NS) == [hour]
    clock[0] = NOW + 62 * NS
    done = await storage.refresh_dirty()
    assert (done.marks, done.hours, done.statements) == (1, 1, 1)
    assert max(await _rows(storage, "a", hour, hour + HOUR_NS)) == 99.0
    assert await storage._dirty_hours("a", hour, hour + HOUR_NS) == []
    with_rollup, raw = await _both(storage, NOW - 3 * DAY, NOW, 3600)
    _same(with_rollup, raw)
    # Each dirty hour is recomputed once: a second pass finds nothing.
    assert await storage.refresh_dirty() == RollupPass()


async def test_marks_outlive_the_worker_that_wrote_them(
    influx_session: InfluxServer, database: str, storage: InfluxStorage
) -> None:
    """kill -9 after the acknowledgement, before any pass: the next worker's pass rolls up."""
    hour = NOW - DAY - (NOW - DAY) % HOUR_NS
    batch = Batch(
        [Reading(s, hour + k * 60 * NS, {"water_level_cm": float(k)}) for s in "ab" for k in (1, 2)]
    )
    await storage.write(batch)
    assert await _rows(storage, "a", hour, hour + HOUR_NS) == []
    await storage.aclose()  # the dead worker: nothing of it survives but what InfluxDB holds
    successor = InfluxStorage(
        InfluxSettings(url=influx_session.url, database=database),
        lambda station_id: {"station": station_id, "regency": "R"},
    )
    successor.clock_ns = lambda: NOW + 60 * NS
    await successor.prepare()
    done = await successor.refresh_dirty()
    assert (done.hours, done.statements) == (1, 1)
    for station in "ab":
        assert await _rows(successor, station, hour, hour + HOUR_NS) == [2.0]
    await successor.aclose()


async def test_a_batch_over_its_bound_marks_the_hour_dirty_for_every_station(
    influx_session: InfluxServer, database: str
) -> None:
    storage = InfluxStorage(
        InfluxSettings(url=influx_session.url, database=database, rollup_marks_per_batch=1),
        lambda station_id: {"station": station_id, "regency": "R"},
    )
    storage.clock_ns = lambda: NOW
    await storage.prepare()
    seen: list[Marks] = []
    storage.on_marks = seen.append
    hour = NOW - 2 * DAY - (NOW - 2 * DAY) % HOUR_NS
    await storage.write(Batch([Reading("c", hour + 5 * NS, {"water_level_cm": 3.0})]))
    await storage.refresh_rollup(hour, hour + HOUR_NS)
    storage.clock_ns = lambda: NOW + 60 * NS
    assert (await storage.refresh_dirty()).hours == 1  # the first write's mark
    await storage.write(Batch([Reading(s, hour + 60 * NS, {"water_level_cm": 7.0}) for s in "ab"]))
    assert seen[-1] == Marks(frozenset({(hour, ALL_STATIONS)}), coalesced=2)
    # Station c got no new reading, but its hour is marked dirty with the others': still exact.
    assert await storage._dirty_hours("c", hour, hour + HOUR_NS) == [hour]
    storage.clock_ns = lambda: NOW + 120 * NS
    done = await storage.refresh_dirty()
    assert (done.hours, done.statements) == (1, 1)
    for station, high in (("a", 7.0), ("b", 7.0), ("c", 3.0)):
        assert await _rows(storage, station, hour, hour + HOUR_NS) == [high]
    await storage.aclose()


def test_merge_combines_pieces_of_one_window_by_sums_and_counts() -> None:
    day = 86400
    raw = [WindowStat(0, 2.0, 1.0, 3.0, 2)]
    rows = [(HOUR_NS, 30.0, 3, 5.0, 15.0), (2 * HOUR_NS, 0.0, 0, 0.0, 0.0)]
    (merged,) = merge(day, raw, rows)
    assert (merged.start_ns, merged.count, merged.min, merged.max) == (0, 5, 1.0, 15.0)
    assert merged.mean == pytest.approx(34 / 5)


async def test_a_chart_over_many_separate_dirty_hours_reads_its_middle_raw(
    storage: InfluxStorage,
) -> None:
    start = NOW - 4 * DAY
    await storage.write(
        Batch(
            [Reading("a", start + m * 600 * NS, {"water_level_cm": _level(m)}) for m in range(500)]
        )
    )
    await storage.refresh_rollup(start, NOW)
    storage.clock_ns = lambda: NOW + 60 * NS
    await storage.refresh_dirty()
    storage.clock_ns = lambda: NOW
    # Twelve late readings, every other hour: more separate dirty runs than one chart queries.
    late = [
        Reading("a", start + (2 * k + 1) * HOUR_NS, {"water_level_cm": 500.0 + k})
        for k in range(12)
    ]
    await storage.write(Batch(late))
    with_rollup, raw = await _both(storage, start, NOW, 3600)
    _same(with_rollup, raw)
    assert max(w.max for w in with_rollup) == 511.0


def _rolled_up(influx: InfluxServer, database: str) -> tuple[int, float]:
    """Readings counted in the stored rollup, and the sum of their levels."""
    series = influx_query(
        influx.url,
        database,
        'SELECT sum("count_water_level_cm"), sum("sum_water_level_cm") '
        'FROM "siaga_rollup"."telemetry_1h"',
    )
    return (
        (int(series[0]["values"][0][1]), float(series[0]["values"][0][2])) if series else (0, 0.0)
    )


def _marks(influx: InfluxServer, database: str) -> int:
    series = influx_query(influx.url, database, 'SELECT count("hour") FROM rollup_dirty')
    return int(series[0]["values"][0][1]) if series else 0


def test_a_worker_killed_before_its_pass_leaves_marks_that_the_next_one_rolls_up(
    tmp_path: Path,
    new_worker: NewWorker,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> None:
    """kill -9 after the acknowledgement and before any pass: no rollup is wrong for ever."""

    def worker() -> WorkerProcess:
        return new_worker(tmp_path / "w", {"SIAGA_INFLUX__ROLLUP_SETTLE_S": "0"})

    total = 600
    two_days_ago_ms = time.time_ns() // 1_000_000 - 2 * 86_400_000
    first = worker()
    messages = telemetry_messages(total, two_days_ago_ms, prefix=first.topic_prefix)
    running = first.start()
    # Its first pass runs at start; publish only once it has run, with nothing yet marked.
    wait_for(lambda: running.metric("siaga_rollup_passes_total") >= 1, 30, "first pass")
    paho_publish(broker_session.port, messages, f"pub-{first.topic_prefix}")
    wait_for(lambda: influx_count(influx_session.url, database) == total, 60, "all stored")
    running.kill()
    assert _marks(influx_session, database) >= 1
    assert _rolled_up(influx_session, database) == (0, 0.0)
    with worker():
        # The next worker's first pass, at once: every late reading is in the rollup.
        wait_for(lambda: _rolled_up(influx_session, database)[0] == total, 60, "rolled up")
        wait_for(lambda: _marks(influx_session, database) == 0, 10, "marks deleted")
    assert _rolled_up(influx_session, database) == (total, float(sum(range(total))))

"""Hourly rollups answer long windows exactly as raw readings do, late readings included."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devices import Reading
from ingest.batch import Batch
from ingest.settings import InfluxSettings
from ingest.storage.base import WindowStat
from ingest.storage.influx import InfluxStorage
from ingest.storage.rollup import HOUR_NS, NS, merge, plan
from ops.servers import InfluxServer

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
    start = NOW - 3 * DAY - 1234567
    assert plan(start, NOW, 3600, NOW).use_rollup
    for window_s in (3600, 86400):
        with_rollup, raw = await _both(storage, start, NOW, window_s)
        assert len(raw) > 3
        _same(with_rollup, raw)


async def test_a_late_reading_is_rolled_up_by_the_writer(storage: InfluxStorage) -> None:
    await storage.write(
        Batch(
            [Reading("a", NOW - DAY * 2 + m * 60 * NS, {"water_level_cm": 1.0}) for m in range(600)]
        )
    )
    await storage.refresh_rollup(NOW - 3 * DAY, NOW)
    # A backlog arrives: two days old, far beyond what the continuous query recomputes.
    await storage.write(Batch([Reading("a", NOW - DAY * 2 + 30 * NS, {"water_level_cm": 99.0})]))
    with_rollup, raw = await _both(storage, NOW - 3 * DAY, NOW, 3600)
    _same(with_rollup, raw)
    assert max(w.max for w in with_rollup) == 99.0


def test_merge_combines_pieces_of_one_window_by_sums_and_counts() -> None:
    day = 86400
    raw = [WindowStat(0, 2.0, 1.0, 3.0, 2)]
    rows = [(HOUR_NS, 30.0, 3, 5.0, 15.0), (2 * HOUR_NS, 0.0, 0, 0.0, 0.0)]
    (merged,) = merge(day, raw, rows)
    assert (merged.start_ns, merged.count, merged.min, merged.max) == (0, 5, 1.0, 15.0)
    assert merged.mean == pytest.approx(34 / 5)

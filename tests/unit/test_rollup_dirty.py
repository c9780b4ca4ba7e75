"""Dirty hours of the hourly rollup: which, how coalesced, what to recompute, what to read raw."""

from __future__ import annotations

from devices import Reading
from ingest.storage.rollup import (
    ALL_STATIONS,
    HOUR_NS,
    NS,
    Marks,
    Refresh,
    dirty_marks,
    dirty_runs,
    late_horizon,
    mark_lines,
    refreshes,
)

H = 1_790_000_000 // 3600 * HOUR_NS  # an hour boundary


def _reading(station: str, ts_ns: int) -> Reading:
    return Reading(station, ts_ns, {"water_level_cm": 1.0})


def test_only_readings_beyond_the_continuous_querys_reach_make_hours_dirty() -> None:
    now = H + 10 * HOUR_NS + 17
    horizon = late_horizon(now)
    assert horizon == now - 2 * HOUR_NS
    readings = [
        _reading("a", horizon - 1),  # late: its hour is dirty
        _reading("a", horizon),  # the continuous query still recomputes it
        _reading("b", H + 5),
        _reading("b", H + 60 * NS),  # same hour, same station: one mark
    ]
    marks = dirty_marks(readings, horizon, max_marks=10)
    assert marks == Marks(frozenset({(H + 8 * HOUR_NS, "a"), (H, "b")}), 0)


def test_nothing_late_marks_nothing() -> None:
    assert dirty_marks([_reading("a", H)], H, max_marks=1) == Marks(frozenset(), 0)


def test_over_the_bound_the_busiest_hours_become_whole_hour_marks() -> None:
    readings = [_reading(f"s{i}", H + i) for i in range(5)]  # 5 stations in hour H
    readings += [_reading(f"s{i}", H + HOUR_NS + i) for i in range(3)]  # 3 in hour H+1
    readings += [_reading("s0", H + 2 * HOUR_NS)]  # 1 in hour H+2
    marks = dirty_marks(readings, H + 10 * HOUR_NS, max_marks=5)
    # 9 pairs > 5: hour H (5 stations) becomes one mark: 1 + 3 + 1 = 5, within the bound.
    assert marks.pairs == frozenset(
        {(H, ALL_STATIONS), (H + 2 * HOUR_NS, "s0")} | {(H + HOUR_NS, f"s{i}") for i in range(3)}
    )
    assert marks.coalesced == 5
    # A tighter bound folds the next busiest hour too; every late hour keeps a mark.
    tight = dirty_marks(readings, H + 10 * HOUR_NS, max_marks=3)
    assert tight.pairs == frozenset(
        {(H, ALL_STATIONS), (H + HOUR_NS, ALL_STATIONS), (H + 2 * HOUR_NS, "s0")}
    )
    assert tight.coalesced == 8


def test_a_batch_spanning_more_hours_than_the_bound_keeps_one_mark_per_hour() -> None:
    readings = [_reading("a", H + k * HOUR_NS) for k in range(6)]
    marks = dirty_marks(readings, H + 10 * HOUR_NS, max_marks=2)
    # Folding a one-station hour saves nothing: never widen a mark for no gain.
    assert marks.pairs == frozenset((H + k * HOUR_NS, "a") for k in range(6))
    assert marks.coalesced == 0


def test_mark_lines_give_every_mark_its_own_time() -> None:
    marks = Marks(frozenset({(H, "b"), (H, ALL_STATIONS), (H + HOUR_NS, "a b")}))
    lines = mark_lines(marks, 1000, "w1")
    assert lines == [
        f"rollup_dirty,station=*,writer=w1 hour={H}i 1000",
        f"rollup_dirty,station=b,writer=w1 hour={H}i 1001",
        f"rollup_dirty,station=a\\ b,writer=w1 hour={H + HOUR_NS}i 1002",
    ]


def test_refreshes_recompute_each_hour_once_for_its_stations() -> None:
    dirty = {
        "a": [H, H + HOUR_NS, H + 30 * NS],  # H twice: one recompute
        "b": [H, H + HOUR_NS, H + 3 * HOUR_NS],
    }
    assert refreshes(dirty, max_stations=10, max_hours=24) == [
        Refresh(H, H + 2 * HOUR_NS, ("a", "b")),
        Refresh(H + 3 * HOUR_NS, H + 4 * HOUR_NS, ("b",)),
    ]


def test_refreshes_take_every_station_for_a_whole_hour_mark_or_too_many_stations() -> None:
    dirty = {ALL_STATIONS: [H], "a": [H, H + HOUR_NS], "b": [H + HOUR_NS], "c": [H + HOUR_NS]}
    assert refreshes(dirty, max_stations=2, max_hours=24) == [
        Refresh(H, H + 2 * HOUR_NS, None),
    ]
    assert refreshes(dirty, max_stations=3, max_hours=24) == [
        Refresh(H, H + HOUR_NS, None),
        Refresh(H + HOUR_NS, H + 2 * HOUR_NS, ("a", "b", "c")),
    ]


def test_refreshes_split_long_ranges() -> None:
    dirty = {"a": [H + k * HOUR_NS for k in range(5)]}
    assert refreshes(dirty, max_stations=10, max_hours=2) == [
        Refresh(H, H + 2 * HOUR_NS, ("a",)),
        Refresh(H + 2 * HOUR_NS, H + 4 * HOUR_NS, ("a",)),
        Refresh(H + 4 * HOUR_NS, H + 5 * HOUR_NS, ("a",)),
    ]
    assert refreshes({}, max_stations=1, max_hours=1) == []


def test_dirty_runs_join_adjacent_hours_and_clip_to_the_range() -> None:
    hours = [H + 5 * HOUR_NS, H, H + HOUR_NS, H + 3 * HOUR_NS, H + 9 * HOUR_NS]
    start, end = H + HOUR_NS // 2, H + 4 * HOUR_NS
    assert dirty_runs(start, end, hours) == [
        (start, H + 2 * HOUR_NS),
        (H + 3 * HOUR_NS, H + 4 * HOUR_NS),
    ]
    assert dirty_runs(H, H + HOUR_NS, []) == []

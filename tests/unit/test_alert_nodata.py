"""No data: silent stations, never-seen ones, and one grouped event for a silent regency."""

from __future__ import annotations

from alerts.engine import Engine
from alerts.model import EventKind
from tests.alerting import MINUTE_NS, T0, level, registry, station

# interval 10 min, missed_intervals 3: overdue after 30 min; group_wait 15 min.


def no_data(engine: Engine, minutes: float) -> list[tuple[str, bool, tuple[str, ...]]]:
    step = engine.tick(T0 + int(minutes * MINUTE_NS))
    return [(e.subject, e.firing, e.stations) for e in step.events if e.kind is EventKind.NO_DATA]


def test_a_station_never_seen_fires_after_its_missed_intervals() -> None:
    engine = Engine(registry(station("lonely", regency="Alone")), started_ns=T0)
    assert no_data(engine, 29) == []
    assert no_data(engine, 30) == [("lonely", True, ())]
    assert no_data(engine, 40) == []  # once


def test_a_reading_clears_it_on_arrival() -> None:
    engine = Engine(registry(station("lonely", regency="Alone")), started_ns=T0)
    no_data(engine, 30)
    step = engine.process([level("lonely", 31, 50)], T0 + 31 * MINUTE_NS)
    assert [(e.kind, e.firing) for e in step.events] == [(EventKind.NO_DATA, False)]
    assert [t.state.value for t in step.transitions] == ["resolved"]


def test_silence_is_judged_on_reading_time_not_arrival() -> None:
    engine = Engine(registry(station("late", regency="Alone")), started_ns=T0)
    # A backlog arriving now with readings an hour old does not make the station fresh.
    engine.process([level("late", 0, 50)], T0 + 60 * MINUTE_NS)
    assert no_data(engine, 60) == [("late", True, ())]


def test_a_whole_silent_regency_is_one_grouped_event() -> None:
    stations = [station(f"r{i}", regency="Gelap") for i in range(5)] + [
        station("other", regency="Terang")
    ]
    engine = Engine(registry(*stations), started_ns=T0)
    engine.process([level("other", m, 50) for m in range(0, 120, 10)], T0)
    # Different last readings: overdue at different times, but within the group wait.
    engine.process([level(f"r{i}", i * 3, 50) for i in range(5)], T0 + 15 * MINUTE_NS)
    found = []
    for minutes in range(0, 120, 1):
        found += no_data(engine, minutes)
    assert found == [("regency:Gelap", True, ("r0", "r1", "r2", "r3", "r4"))]
    back = engine.process([level("r2", 121, 50)], T0 + 121 * MINUTE_NS)
    assert [(e.subject, e.firing) for e in back.events] == []  # r2 was covered by the group
    assert no_data(engine, 122) == []  # four of five still silent: the group holds
    engine.process([level(r, 123, 50) for r in ("r0", "r1")], T0 + 123 * MINUTE_NS)
    assert no_data(engine, 124) == [
        ("regency:Gelap", False, ("r0", "r1", "r2", "r3", "r4")),
        ("r3", True, ()),
        ("r4", True, ()),
    ]


def test_a_station_silent_alone_fires_after_the_group_wait() -> None:
    stations = [station("a", regency="R"), station("b", regency="R")]
    engine = Engine(registry(*stations), started_ns=T0)
    engine.process([level("b", m, 50) for m in range(0, 100, 10)], T0)
    engine.process([level("a", 0, 50)], T0)
    assert no_data(engine, 44) == []  # overdue at 30, waits 15 min for its regency
    assert no_data(engine, 45) == [("a", True, ())]

"""No data: silent stations, never-seen ones, and one grouped event for a silent regency."""

from __future__ import annotations

import pytest

from alerts.engine import Engine
from alerts.model import EventKind
from alerts.rules.config import RulesFileError, parse_rules
from tests.alerting import MINUTE_NS, NS_PER_S, T0, level, registry, station

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


def test_silence_is_judged_on_the_station_s_own_clock() -> None:
    engine = Engine(registry(station("late", regency="Alone")), started_ns=T0)
    # A reading an hour old: the station's clock is an hour behind the wall clock, and it is
    # silent three intervals after that reading on its own clock, 30 minutes after it came.
    engine.process([level("late", 0, 50)], T0 + 60 * MINUTE_NS)
    assert no_data(engine, 89) == []
    assert no_data(engine, 90) == [("late", True, ())]


def test_a_replay_faster_than_its_own_time_is_never_silent() -> None:
    # Readings ten minutes apart, a day old, one a second (the demo plays at 3600x): however
    # long the engine has been up and wherever a tick falls, the stream is not silent ...
    engine = Engine(registry(station("replay", regency="Alone")), started_ns=T0)
    wall = T0 + 2 * 24 * 60 * MINUTE_NS
    for i in range(200):
        engine.process([level("replay", i * 10, 50)], wall + i * NS_PER_S)
        assert no_data(engine, (wall - T0 + i * NS_PER_S + NS_PER_S // 2) / MINUTE_NS) == []
    # ... until it stops: then three intervals of its own time later (30 wall minutes).
    stopped = (wall - T0 + 199 * NS_PER_S) / MINUTE_NS
    assert no_data(engine, stopped + 29.9) == []
    assert no_data(engine, stopped + 30) == [("replay", True, ())]


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


def test_after_a_restart_a_silence_fires_once_and_a_fired_one_not_again() -> None:
    reg = registry(station("a", regency="Alone"), station("b", regency="Other"))
    before = Engine(reg, started_ns=T0)
    before.process([level("a", 0, 50), level("b", 0, 50)], T0)
    assert no_data(before, 30) == [("a", True, ()), ("b", True, ())]
    before.process([level("b", 31, 50)], T0 + 31 * MINUTE_NS)
    durable = before.state()
    # Restarted an hour later: a is still silent (fired already), b went silent meanwhile.
    after = Engine(reg, started_ns=T0 + 90 * MINUTE_NS)
    after.restore(durable)
    assert no_data(after, 90) == [("b", True, ())]
    assert no_data(after, 100) == []
    back = after.process([level("a", 101, 50)], T0 + 101 * MINUTE_NS)
    assert [(e.subject, e.firing) for e in back.events] == [("a", False)]


def test_a_silent_regency_survives_a_restart() -> None:
    reg = registry(*(station(f"r{i}", regency="Gelap") for i in range(3)))
    before = Engine(reg, started_ns=T0)
    assert no_data(before, 30) == [("regency:Gelap", True, ("r0", "r1", "r2"))]
    after = Engine(reg, started_ns=T0 + 40 * MINUTE_NS)
    after.restore(before.state())
    assert no_data(after, 45) == []
    after.process([level(f"r{i}", 46, 50) for i in range(2)], T0 + 46 * MINUTE_NS)
    assert no_data(after, 47) == [
        ("regency:Gelap", False, ("r0", "r1", "r2")),
        ("r2", True, ()),  # the straggler, on its own now
    ]


def test_a_backlog_ends_the_silence_at_its_first_new_reading_marked_late() -> None:
    engine = Engine(registry(station("logger", regency="Alone")), started_ns=T0)
    engine.process([level("logger", 0, 50)], T0)
    assert no_data(engine, 30) == [("logger", True, ())]
    now = T0 + 120 * MINUTE_NS
    # The logger's store arrives: its stream is back, 80 minutes behind the wall clock.
    old = engine.process([level("logger", 40, 50)], now)
    assert [(e.kind, e.firing, e.late, e.at_ns) for e in old.events] == [
        (EventKind.NO_DATA, False, True, T0 + 40 * MINUTE_NS)
    ]
    assert engine.process([level("logger", 100, 50)], now).events == []
    assert no_data(engine, 120 + 29) == []
    # A redelivered older reading is not news: it neither clears nor delays a silence.
    assert no_data(engine, 150) == [("logger", True, ())]
    assert engine.process([level("logger", 50, 50)], T0 + 151 * MINUTE_NS).events == []


def test_stations_behind_one_gateway_are_one_group() -> None:
    rules = parse_rules("groups: [{name: 'gateway:menggala-01', stations: [g1, g2]}]\n")
    stations = [station("g1", regency="A"), station("g2", regency="B"), station("x", regency="A")]
    engine = Engine(registry(*stations), rules, started_ns=T0)
    engine.process([level("x", m, 50) for m in range(0, 60, 10)], T0)
    assert no_data(engine, 30) == [("gateway:menggala-01", True, ("g1", "g2"))]


def test_a_station_in_two_groups_is_refused() -> None:
    with pytest.raises(RulesFileError, match="both"):
        parse_rules(
            "groups: [{name: 'gateway:a', stations: [s]}, {name: 'gateway:b', stations: [s]}]"
        )


def test_a_pending_silence_of_a_back_dated_stream_fires_on_the_wall_clock() -> None:
    # A silence is dated by the wall clock it is judged at, whatever the stream's lag.
    rules = parse_rules("defaults: {pending_s: {no_data: 600}}")
    engine = Engine(registry(station("replay", regency="Alone")), rules, started_ns=T0)
    arrived = T0 + 24 * 60 * MINUTE_NS
    engine.process([level("replay", 0, 50)], arrived)
    judged = engine.tick(arrived + 30 * MINUTE_NS)
    assert [(t.state.value, t.event.at_ns) for t in judged.transitions] == [
        ("pending", arrived + 30 * MINUTE_NS)
    ]
    assert engine.tick(arrived + 39 * MINUTE_NS).transitions == []
    fired = engine.tick(arrived + 40 * MINUTE_NS)
    assert [(t.state.value, t.event.at_ns) for t in fired.transitions] == [
        ("firing", arrived + 40 * MINUTE_NS)
    ]

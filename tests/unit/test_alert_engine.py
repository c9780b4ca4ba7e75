"""The engine: incidents, redelivery, restart, scope, hot swaps, late data, arrival order."""

from __future__ import annotations

import itertools
import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.engine import ENGINE_KEY, SEEN_PER_STATION, STATE_VERSION, Engine, Scope, Step
from alerts.model import AlertEvent, IncidentState
from alerts.rules.config import RulesConfig, parse_rules
from devices.levels import Level
from devices.readings import Reading
from tests.alerting import MINUTE_NS, T0, level, registry, station

RIVER = registry(
    station("up", regency="Hulu", downstream=[("down", 120)]),
    station("down", regency="Hilir"),
    station("side", regency="Hilir"),
)
FLOOD = [0, 50, 90, 105, 140, 190, 230, 260, 240, 200, 150, 110, 80, 60, 50]


def flood(station_id: str = "up", every_min: float = 10) -> list[Reading]:
    return [level(station_id, i * every_min, v) for i, v in enumerate(FLOOD, start=1)]


def transitions(step: Step) -> list[tuple[str, str, str | None, str, str]]:
    return [
        (
            t.subject,
            t.rule,
            t.previous_state.value if t.previous_state else None,
            t.state.value,
            t.event.severity.name,
        )
        for t in step.transitions
    ]


def run(engine: Engine, readings: list[Reading], batch: int = 1) -> Step:
    total = Step()
    for start in range(0, len(readings), batch):
        chunk = readings[start : start + batch]
        total.extend(engine.process(chunk, max(r.ts_ns for r in chunk)))
    return total


def test_an_incident_opens_firing_escalates_and_resolves() -> None:
    step = run(Engine(RIVER, started_ns=T0), flood())
    level_only = [t for t in transitions(step) if t[:2] == ("up", "level")]
    assert level_only == [
        ("up", "level", None, "firing", "WASPADA"),
        ("up", "level", "firing", "firing", "SIAGA"),
        ("up", "level", "firing", "firing", "WASPADA"),
        ("up", "level", "firing", "resolved", "NORMAL"),
    ]


def test_a_redelivered_reading_transitions_nothing_twice() -> None:
    engine = Engine(RIVER, started_ns=T0)
    first = run(engine, flood(), batch=4)
    again = run(engine, flood(), batch=3)
    assert first.transitions
    assert again.transitions == []
    assert again.duplicates == len(FLOOD)


def test_dedup_memory_is_bounded_per_station() -> None:
    engine = Engine(RIVER, started_ns=T0)
    run(engine, [level("side", m, 10) for m in range(500)], batch=50)
    assert len(engine._states["side"].seen) == SEEN_PER_STATION
    # Older than everything remembered: taken as handled, never evaluated again.
    assert engine.process([level("side", 1, 500)], T0).duplicates == 1


def test_kill_and_restart_loses_and_repeats_no_transition() -> None:
    readings = flood() + flood("side", every_min=7)
    readings.sort(key=lambda r: r.ts_ns)
    whole = run(Engine(RIVER, started_ns=T0), readings, batch=2)
    for crash_after in range(0, len(readings), 2):
        before = Engine(RIVER, started_ns=T0)
        durable: dict[str, bytes] = {}
        seen = Step()
        # The process makes each step durable with the dirty state, then acknowledges.
        for start in range(0, crash_after, 2):
            chunk = readings[start : start + 2]
            seen.extend(before.process(chunk, max(r.ts_ns for r in chunk)))
            durable.update(before.dirty_state())
        # kill -9 here; the broker redelivers the unacknowledged (and a few acknowledged) ones.
        after = Engine(RIVER, started_ns=T0)
        after.restore(durable)
        redelivered = readings[max(0, crash_after - 3) :]
        for start in range(0, len(redelivered), 2):
            chunk = redelivered[start : start + 2]
            seen.extend(after.process(chunk, max(r.ts_ns for r in chunk)))
        assert transitions(seen) == transitions(whole), crash_after


def test_state_is_versioned_and_compact() -> None:
    engine = Engine(RIVER, started_ns=T0)
    run(engine, flood())
    blobs = engine.dirty_state()
    assert set(blobs) == {"up", "down", ENGINE_KEY}
    assert all(b'"v":%d' % STATE_VERSION in blob for blob in blobs.values())
    assert len(blobs["up"]) < 4096
    assert engine.dirty_state() == {}


def test_reading_times_shared_by_the_rate_window_and_the_memory_are_stored_once() -> None:
    engine = Engine(RIVER, started_ns=T0)
    # Every 10 minutes: the rate window holds the newest of the remembered times; every
    # minute: the 64 remembered times are the newest of the window's.
    run(engine, flood("up") + [level("side", m, 100 + m % 7) for m in range(100)], batch=5)
    snapshot = engine.state()
    up, side = orjson.loads(snapshot["up"]), orjson.loads(snapshot["side"])
    up_times = len(engine._states["up"].rate.times_ns)
    assert 0 < up_times < len(FLOOD)
    assert up["rt"][0] == up_times
    assert len(up["sn"]) == len(FLOOD)
    assert side["sn"] == SEEN_PER_STATION
    assert len(side["rt"][0]) > SEEN_PER_STATION
    again = Engine(RIVER, started_ns=T0)
    again.restore(snapshot)
    assert again.state() == snapshot
    for key in ("up", "side"):
        assert again._states[key] == engine._states[key]


def test_a_version_2_state_restores() -> None:
    engine = Engine(RIVER, started_ns=T0)
    run(engine, flood("up") + [level("side", m, 100 + m % 7) for m in range(100)], batch=5)
    snapshot = engine.state()
    old: dict[str, bytes] = {}
    for key, blob in snapshot.items():
        document = orjson.loads(blob)
        document["v"] = 2
        if key in engine._states:  # times written out in full, as version 2 did
            state = engine._states[key]
            document["rt"][0] = _deltas(list(state.rate.times_ns))
            document["sn"] = _deltas(state.seen)
        old[key] = orjson.dumps(document)
    assert old != snapshot
    again = Engine(RIVER, started_ns=T0)
    again.restore(old)
    assert again.state() == snapshot


def _deltas(times: list[int]) -> list[int]:
    return [times[0], *(b - a for a, b in itertools.pairwise(times))] if times else []


def test_scope_by_regency_evaluates_only_its_stations() -> None:
    engine = Engine(RIVER, scope=Scope(regencies=frozenset({"Hilir"})), started_ns=T0)
    step = run(engine, flood() + flood("side"))
    assert step.ignored == len(FLOOD)
    assert {e.subject for e in step.events} == {"side"}
    assert not engine.in_scope("up")


def test_upstream_warnings_cross_scopes_from_the_source_s_engine() -> None:
    engine = Engine(RIVER, scope=Scope(stations=frozenset({"up"})), started_ns=T0)
    step = run(engine, flood())
    assert "down" in {e.subject for e in step.events}


def test_a_reading_older_than_the_lag_makes_late_events() -> None:
    engine = Engine(RIVER, late_lag_s=600, started_ns=T0)
    backlog = engine.process(flood("side")[:5], T0 + 6 * 3600 * 10**9)
    assert backlog.events
    assert all(e.late for e in backlog.events)
    live = Engine(RIVER, late_lag_s=600, started_ns=T0)
    assert not any(e.late for e in run(live, flood("side")[:5]).events)


def test_registry_hot_swap_keeps_state_and_takes_new_thresholds() -> None:
    engine = Engine(RIVER, started_ns=T0)
    engine.process([level("side", 0, 150)], T0)
    assert engine.level_of("side") == Level.WASPADA
    stricter = registry(
        station("up", regency="Hulu"),
        station("down", regency="Hilir"),
        station("side", regency="Hilir", waspada=50, siaga=140, awas=300),
    )
    engine.use_registry(stricter)
    step = engine.process([level("side", 10, 150)], T0)
    assert [(e.previous, e.severity) for e in step.events] == [(Level.WASPADA, Level.SIAGA)]


def test_rules_hot_swap_applies_to_the_next_reading() -> None:
    engine = Engine(RIVER, started_ns=T0)
    engine.process([level("side", 0, 210)], T0)
    engine.use_rules(parse_rules("defaults: {level: {recovery_band_cm: 50}}"))
    assert engine.process([level("side", 10, 170)], T0).events == []
    assert engine.rules.defaults.level.recovery_band_cm == 50


def test_pending_incidents_fire_after_their_pending_time() -> None:
    rules = parse_rules("defaults: {pending_s: {level: 600}}")
    engine = Engine(RIVER, rules, started_ns=T0)
    step = engine.process([level("side", 0, 150)], T0)
    assert transitions(step) == [("side", "level", None, "pending", "WASPADA")]
    assert engine.tick(T0 + 5 * MINUTE_NS).transitions == []
    promoted = engine.tick(T0 + 10 * MINUTE_NS)
    assert transitions(promoted) == [("side", "level", "pending", "firing", "WASPADA")]
    assert engine.incidents()[("side", "level")] == (IncidentState.FIRING, Level.WASPADA)


def test_a_station_outside_the_registry_is_ignored() -> None:
    step = Engine(RIVER, started_ns=T0).process([level("nowhere", 0, 999)], T0)
    assert (step.events, step.ignored) == ([], 1)


def test_device_health_comes_from_all_readings() -> None:
    engine = Engine(RIVER, started_ns=T0)
    run(engine, flood("side"), batch=5)
    (health,) = engine.health_snapshot(T0 + 200 * MINUTE_NS)
    assert health.station_id == "side"
    assert health.last_seen_ns == flood("side")[-1].ts_ns


def test_defaults_alert_from_the_registry_alone() -> None:
    assert Engine(RIVER, RulesConfig(), started_ns=T0).rules == RulesConfig()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), batch=st.integers(1, 8))
def test_reordering_arrivals_does_not_change_the_events(seed: int, batch: int) -> None:
    # Stations interleave in any order and the readings of one delivery (a store-and-forward
    # batch, a chunk of messages) come in any order: each station's events are the same as
    # when everything arrives one by one sorted by time. (A reading older than one already
    # judged in an earlier call is history for the level rule: see the rate rule's tests.)
    readings = flood() + flood("side", every_min=7)
    sorted_events = run(
        Engine(RIVER, started_ns=T0), sorted(readings, key=lambda r: r.ts_ns)
    ).events
    per_station: dict[str, list[Reading]] = {"up": flood(), "side": flood("side", every_min=7)}
    rng = random.Random(seed)
    engine = Engine(RIVER, started_ns=T0)
    shuffled = Step()
    while any(per_station.values()):
        name = rng.choice([n for n, left in per_station.items() if left])
        take = rng.randint(1, batch)
        chunk, per_station[name] = per_station[name][:take], per_station[name][take:]
        rng.shuffle(chunk)
        shuffled.extend(engine.process(chunk, T0))

    def by_subject(events: list[AlertEvent]) -> dict[str, list[tuple[int, str, bool, str]]]:
        out: dict[str, list[tuple[int, str, bool, str]]] = {}
        for e in events:
            out.setdefault(e.subject, []).append((e.at_ns, e.rule, e.firing, e.severity.name))
        return out

    assert by_subject(shuffled.events) == by_subject(sorted_events)


@settings(max_examples=100, deadline=None)
@given(
    noise=st.lists(st.floats(-0.95, 0.95), min_size=1, max_size=80),
    every_min=st.floats(0.25, 0.7),  # 80 readings span less than the hold time (1 h)
)
def test_the_whole_engine_does_not_flap_at_a_threshold(
    noise: list[float], every_min: float
) -> None:
    # Every rule at once (faults, rate, level, upstream) on a level hovering at SIAGA's 200 cm
    # within the band, for less than the hold time: the level only ever rises.
    engine = Engine(RIVER, started_ns=T0)
    readings = [level("up", i * every_min, 200 + n * 10) for i, n in enumerate(noise)]
    step = run(engine, readings, batch=3)
    changes = [(e.previous, e.severity) for e in step.events if e.rule == "level"]
    assert all(previous is not None and new > previous for previous, new in changes)
    assert len({e.subject for e in step.events if e.kind.value == "upstream"} - {"down"}) == 0


def test_state_round_trips_exactly() -> None:
    engine = Engine(RIVER, started_ns=T0)
    run(engine, flood() + flood("side", every_min=7), batch=4)
    snapshot = engine.state()
    again = Engine(RIVER, started_ns=T0 + 10**12)
    again.restore(snapshot)
    assert again.state() == snapshot
    assert again.incidents() == engine.incidents()


def test_a_capture_encodes_the_state_of_its_instant_however_late() -> None:
    engine = Engine(RIVER, started_ns=T0)
    run(engine, flood()[:8])
    then = engine.state()
    capture = engine.capture_dirty()
    # The engine goes on (remembered times are a list it changes in place) ...
    run(engine, flood()[8:])
    assert engine.state() != then
    # ... and the capture, encoded a key at a time afterwards, still says how it was.
    encoded: dict[str, bytes] = {}
    while not capture.done:
        encoded |= capture.encode(1)
    assert encoded == then
    assert len(capture) == len(then)
    assert capture.encode() == {}


def test_a_back_dated_stream_promotes_its_pending_incidents_on_its_own_clock() -> None:
    # A day-old replay, a reading a second: the wall clock is a day past the incident's start,
    # but its pending time runs on the station's clock, which its readings move.
    rules = parse_rules("defaults: {pending_s: {level: 1200}}")
    wall = T0 + 24 * 60 * MINUTE_NS
    for ticking in (False, True):
        engine = Engine(RIVER, rules, started_ns=wall)
        found: list[tuple[str, str | None, str, int]] = []
        for i, minutes in enumerate(range(0, 50, 10)):
            now = wall + i * 1_000_000_000
            step = engine.process([level("side", minutes, 150)], now)
            if ticking:
                step.extend(engine.tick(now + 500_000_000))
            found += [
                (t.rule, t.previous_state and t.previous_state.value, t.state.value, t.event.at_ns)
                for t in step.transitions
            ]
        # Pending at minute 0; firing once its 20 minutes ran out, dated by that moment.
        assert found == [
            ("level", None, "pending", T0),
            ("level", "pending", "firing", T0 + 20 * MINUTE_NS),
        ]


def test_a_version_3_state_restores_its_stations_as_live() -> None:
    engine = Engine(RIVER, started_ns=T0)
    run(engine, flood("up"))
    snapshot = engine.state()
    document = orjson.loads(snapshot["up"])
    assert document["ar"] == 0  # arrived at its own time
    del document["ar"]
    document["v"] = 3
    again = Engine(RIVER, started_ns=T0)
    again.restore({**snapshot, "up": orjson.dumps(document)})
    assert again._states["up"].arrived_ns is None
    assert again.state()["up"] == orjson.dumps({**document, "v": STATE_VERSION})

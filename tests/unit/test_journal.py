"""The input journal: a snapshot plus the entries after it give back the engine exactly."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import journal
from alerts.engine import Engine, Step
from alerts.journal import JournalBuffer, JournalError
from devices.readings import Reading
from tests.alerting import MINUTE_NS, T0, HeldJournal, level, registry, station

RIVER = registry(
    station("up", regency="Hulu", downstream=[("down", 120)]),
    station("down", regency="Hilir"),
    station("side", regency="Hilir"),
)
RISE = [40, 90, 105, 140, 190, 230, 260, 320, 240, 200, 150, 110, 80, 60, 50, 45]


def inputs() -> list[tuple[int, list[Reading]] | tuple[int]]:
    """A flood on ``up`` and ``down`` (a spike, batteries, an out-of-order pair, a redelivery),
    ``side`` reporting once from a backlog two days old (its clock two days behind: silent
    30 minutes after it came), and ticks between: ``(now,)`` is a tick."""
    ops: list[tuple[int, list[Reading]] | tuple[int]] = [
        (T0 + MINUTE_NS, [level("side", -2 * 24 * 60, 20.0)]),
        (T0 + 5 * MINUTE_NS,),
    ]
    for i, cm in enumerate(RISE):
        minutes = 10 * (i + 1)
        now = T0 + (minutes + 1) * MINUTE_NS
        readings = [level("up", minutes, float(cm)), level("down", minutes - 5, cm * 0.8 + 3)]
        if i == 5:
            readings.append(level("down", minutes - 2, 1900.0))  # a spike that returns
        if i % 4 == 0:
            readings.append(Reading("up", T0 + minutes * MINUTE_NS + 1, {"battery_v": 11.0}, 7))
        if i == 9:
            readings.reverse()
            readings.append(level("up", minutes, float(cm)))  # the same reading again
        ops.append((now, readings))
        if i % 3 == 2:
            ops.append((now + 30 * MINUTE_NS,))
    return ops


def apply(engine: Engine, op: tuple[int, list[Reading]] | tuple[int]) -> Step:
    if len(op) == 1:
        return engine.tick(op[0])
    return engine.process(op[1], op[0])


def ids(step: Step) -> list[tuple[str, str]]:
    return [(t.event.id, t.state.value) for t in step.transitions]


@settings(max_examples=40, deadline=None)
@given(
    checkpoints=st.lists(st.booleans(), min_size=40, max_size=40),
    snapshots=st.lists(st.booleans(), min_size=40, max_size=40),
    crash_at=st.integers(min_value=0, max_value=40),
)
def test_snapshot_and_replay_give_back_the_engine_and_its_transitions(
    checkpoints: list[bool], snapshots: list[bool], crash_at: int
) -> None:
    ops = inputs()[:crash_at]
    live = Engine(RIVER, started_ns=T0)
    buffer = JournalBuffer()
    store = HeldJournal()
    transitions_by_entry: dict[int, list[tuple[str, str]]] = {}
    pending: list[tuple[str, str]] = []
    for index, op in enumerate(ops):
        step = apply(live, op)
        pending += ids(step)
        if len(op) == 1:
            buffer.record_tick(op[0])
        else:
            buffer.record_process(op[1], op[0])
        if not checkpoints[index]:
            continue
        number = store.checkpoint(buffer)
        transitions_by_entry[number], pending = pending, []
        if snapshots[index] or number == 1:  # (as the loop: its first checkpoint snapshots)
            store.snapshot(live)
    # kill -9: what was not checkpointed is gone (the broker redelivers those readings).
    saved = journal.split(store.held)
    restarted = Engine(RIVER, started_ns=T0 + 999 * MINUTE_NS)
    restarted.restore(saved.states)
    replayed = journal.replay(restarted, (body for _, body in saved.entries))
    expected = [t for n, _ in saved.entries for t in transitions_by_entry[n]]
    assert ids(replayed.step) == expected
    assert saved.next_number == store.number + 1
    # The same engine as the one that ran (less what came after the last checkpoint).
    last = max((i for i in range(len(ops)) if checkpoints[i]), default=-1)
    reference = Engine(RIVER, started_ns=T0 if last >= 0 else T0 + 999 * MINUTE_NS)
    for op in ops[: last + 1]:
        apply(reference, op)
    assert restarted.state() == reference.state()
    assert restarted.incidents() == reference.incidents()


def test_readings_come_back_exactly() -> None:
    buffer = JournalBuffer()
    readings = [
        Reading("a", T0, {"water_level_cm": 0.1 + 0.2, "battery_v": 12}, None),
        Reading("b", T0 + 1, {"water_level_cm": 1e-300}, 2**40),
    ]
    buffer.record_process(readings, T0 + 5)
    assert buffer.readings == 2
    body = buffer.take()
    assert body is not None
    assert not buffer
    assert buffer.take() is None
    [op] = orjson.loads(body)["ops"]
    assert op[0] == T0 + 5
    assert [Reading(*row) for row in op[1]] == readings
    assert isinstance(op[1][0][2]["battery_v"], int)


def test_split_orders_entries_and_sets_aside_the_covered_ones() -> None:
    held = {
        "up": b"state",
        journal.entry_key(12): b"twelve",
        journal.entry_key(3): b"three",
        journal.entry_key(10): b"ten",
        journal.MARK_KEY: b"10",
    }
    saved = journal.split(held)
    assert saved.states == {"up": b"state"}
    assert saved.entries == [(12, b"twelve")]
    assert saved.stale == [3, 10]
    assert saved.covered == 10
    assert saved.next_number == 13
    # A store from before the journal: state only, nothing to replay.
    assert journal.split({"up": b"state"}) == journal.Saved(states={"up": b"state"})
    assert journal.split({}).next_number == 1


def test_a_snapshot_deletes_what_it_covers() -> None:
    rows = journal.snapshot({"up": b"s"}, 7, [5, 6, 7])
    assert rows == {
        journal.entry_key(5): None,
        journal.entry_key(6): None,
        journal.entry_key(7): None,
        "up": b"s",
        journal.MARK_KEY: b"7",
    }


@pytest.mark.parametrize(
    ("held", "message"),
    [
        ({journal.MARK_KEY: b"ten"}, "not a number"),
        ({"journal:x1": b"{}"}, "no entry number"),
    ],
)
def test_a_damaged_journal_is_refused(held: dict[str, bytes], message: str) -> None:
    with pytest.raises(JournalError, match=message):
        journal.split(held)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x00garbage", "not JSON"),
        (b'{"v": 99, "ops": []}', "unknown version 99"),
        (b'{"v": 1}', "without its ops"),
        (b"[1, 2]", "unknown version None"),
    ],
)
def test_an_unreadable_entry_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(JournalError, match=message):
        journal.replay(Engine(RIVER, started_ns=T0), [body])

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alerts.pipeline.dedup import delivery_id, fresh, message_id
from alerts.pipeline.escalation import (
    Escalation,
    EscalationChain,
    EscalationStep,
    escalations_due,
)
from tests.unit.pipeline_helpers import T0, notice

MIN = 60 * 1_000_000_000
CHAIN = EscalationChain(
    steps=[
        EscalationStep(group="bpbd-duty", after_min=0),
        EscalationStep(group="bpbd-head", after_min=15),
        EscalationStep(group="bnpb", after_min=45),
    ],
    reminder_min=10,
)


def due(
    minutes: float,
    emitted: set[tuple[int, int]] | None = None,
    *,
    ack: bool = False,
    resolved: bool = False,
) -> list[Escalation]:
    return escalations_due(
        CHAIN,
        firing_since_ns=T0,
        now_ns=T0 + int(minutes * MIN),
        acknowledged=ack,
        resolved=resolved,
        emitted=emitted or set(),
    )


def test_unacknowledged_incident_climbs_the_chain() -> None:
    assert due(14) == [Escalation(0, 1, "bpbd-duty")]
    assert due(14, {(0, 1)}) == []
    assert due(15, {(0, 1)}) == [Escalation(1, 0, "bpbd-head")]
    assert due(25, {(0, 1), (1, 0)}) == [Escalation(1, 1, "bpbd-head")]
    assert due(46, {(0, 1), (1, 0), (1, 1), (1, 2)}) == [Escalation(2, 0, "bnpb")]


def test_acknowledgement_or_resolution_stops_everything() -> None:
    assert due(100, ack=True) == []
    assert due(100, resolved=True) == []


def test_after_an_outage_only_the_latest_reminder_is_sent() -> None:
    emitted = {(1, 0), (2, 0)}
    assert due(45 + 95, emitted) == [Escalation(2, 9, "bnpb")]


@given(st.lists(st.floats(min_value=0, max_value=300), max_size=30))
def test_no_escalation_is_emitted_twice(moments: list[float]) -> None:
    emitted: set[tuple[int, int]] = set()
    for minutes in sorted(moments):
        for escalation in due(minutes, emitted):
            key = (escalation.step, escalation.seq)
            assert key not in emitted
            emitted.add(key)


def test_dedup_drops_what_was_sent_and_repeats_within_a_batch() -> None:
    a, b = notice("a", nid="a"), notice("b", nid="b")
    assert fresh("g", [a, b, a], {("g", "b")}) == [a]
    assert fresh("h", [a, b], {("g", "b")}) == [a, b]


def test_message_ids_are_stable_and_distinct() -> None:
    assert message_id("g", ["b", "a"]) == message_id("g", ["a", "b"])
    assert message_id("g", ["a"]) != message_id("h", ["a"])
    assert message_id("g", ["a"], repeat_at_ns=1) != message_id("g", ["a"])
    assert delivery_id("m", "r", "email") != delivery_id("m", "r", "telegram")

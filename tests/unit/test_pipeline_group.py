from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.model import IncidentState
from alerts.pipeline.group import Grouper, Timings
from tests.unit.pipeline_helpers import T0, S, notice

TIMINGS = Timings(group_wait_s=30, group_interval_s=300, repeat_interval_s=3600)


def test_ten_stations_of_one_regency_make_one_message() -> None:
    grouper = Grouper(TIMINGS)
    for index in range(10):
        grouper.add("bpbd", notice(f"st-{index}", incident_id=index), T0 + index * S)
    assert grouper.due(T0 + 29 * S) == []
    batches = grouper.due(T0 + 30 * S)
    assert len(batches) == 1
    assert [n.labels["station"] for n in batches[0].notices] == [f"st-{i}" for i in range(10)]


def test_other_regency_is_another_message() -> None:
    grouper = Grouper(TIMINGS)
    grouper.add("bpbd", notice("a", regency="Jember"), T0)
    grouper.add("bpbd", notice("b", regency="Rembang", incident_id=2), T0)
    assert len(grouper.due(T0 + 30 * S)) == 2


def test_later_notice_waits_for_group_interval() -> None:
    grouper = Grouper(TIMINGS)
    grouper.add("bpbd", notice("a"), T0)
    assert len(grouper.due(T0 + 30 * S)) == 1
    grouper.add("bpbd", notice("b", incident_id=2), T0 + 40 * S)
    assert grouper.next_due_ns() == T0 + 330 * S
    assert grouper.due(T0 + 329 * S) == []
    (batch,) = grouper.due(T0 + 330 * S)
    assert [n.labels["station"] for n in batch.notices] == ["b"]


def test_firing_members_repeat_until_resolved_or_forgotten() -> None:
    grouper = Grouper(TIMINGS)
    grouper.add("bpbd", notice("a"), T0)
    grouper.add("bpbd", notice("b", incident_id=2), T0)
    grouper.due(T0 + 30 * S)
    (repeat,) = grouper.due(T0 + 3630 * S)
    assert repeat.repeat
    assert {n.incident_id for n in repeat.notices} == {1, 2}
    grouper.forget([1])
    grouper.add("bpbd", notice("b", incident_id=2, state=IncidentState.RESOLVED), T0 + 3700 * S)
    (news,) = grouper.due(T0 + 3930 * S)
    assert not news.repeat
    assert grouper.due(T0 + 100_000 * S) == []
    assert grouper.next_due_ns() is None


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2000),
            st.sampled_from(["Jember", "Rembang", "Tabalong"]),
            st.sampled_from(["g1", "g2"]),
            st.sampled_from([IncidentState.FIRING, IncidentState.RESOLVED]),
        ),
        max_size=40,
    ),
    st.lists(st.integers(min_value=0, max_value=2500), max_size=20),
)
def test_grouping_never_loses_or_duplicates_a_notice(
    arrivals: list[tuple[int, str, str, IncidentState]], polls: list[int]
) -> None:
    grouper = Grouper(TIMINGS)
    events = sorted([(t, "add", i) for i, (t, *_rest) in enumerate(arrivals)])
    events += [(t, "poll", -1) for t in polls]
    delivered: list[tuple[str, str]] = []
    for moment, what, index in sorted(events, key=lambda e: (e[0], e[1] == "add")):
        now = T0 + moment * S
        if what == "add":
            _t, regency, group, state = arrivals[index]
            grouper.add(
                group,
                notice(
                    f"s{index}", incident_id=index, regency=regency, state=state, nid=f"n{index}"
                ),
                now,
            )
        else:
            delivered += [
                (b.group, n.id) for b in grouper.due(now) if not b.repeat for n in b.notices
            ]
    delivered += [
        (b.group, n.id) for b in grouper.due(T0 + 10_000 * S) if not b.repeat for n in b.notices
    ]
    expected = [(group, f"n{i}") for i, (_t, _r, group, _s) in enumerate(arrivals)]
    assert sorted(delivered) == sorted(expected)
    assert len(grouper) == 0

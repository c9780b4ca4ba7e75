"""Batches: flushed by size or by age on an injected clock, and spooled byte-exactly."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices import Reading, Reason, Rejection
from ingest.batch import (
    Batch,
    Batcher,
    BatchPolicy,
    StoredRejection,
    deserialize_batch,
    excerpt,
    serialize_batch,
)

TS = 1_700_000_000_000_000_000


def reading(i: int = 0) -> Reading:
    return Reading("tb-menggala", TS + i, {"water_level_cm": 100.0 + i}, i)


def rejection(i: int = 0) -> StoredRejection:
    return StoredRejection(
        Rejection(Reason.OUT_OF_RANGE, f"level {i} too high", "tb-menggala"),
        "siaga/tb-menggala/telemetry",
        '{"level": 1}',
        TS + i,
    )


def test_batch_length_counts_readings_and_rejections() -> None:
    assert len(Batch()) == 0
    assert len(Batch([reading(0), reading(1)], [rejection()])) == 3


def test_new_batcher_is_empty_and_never_due() -> None:
    batcher = Batcher(BatchPolicy(max_points=2, flush_interval_s=0.2))
    assert batcher.empty
    assert batcher.pending == 0
    assert not batcher.due(1e9)
    assert batcher.seconds_until_due(100.0) is None


def test_due_by_size() -> None:
    batcher = Batcher(BatchPolicy(max_points=3, flush_interval_s=10))
    batcher.add([reading(0)], [rejection(0)], "t0", now_s=100.0)
    assert batcher.pending == 2
    assert not batcher.due(100.0)
    batcher.add([reading(1)], [], "t1", now_s=100.0)
    assert batcher.pending == 3
    assert batcher.due(100.0)  # size alone, no time has passed


def test_due_by_age_from_the_first_entry() -> None:
    batcher = Batcher(BatchPolicy(max_points=1000, flush_interval_s=0.2))
    batcher.add([reading(0)], [], "t0", now_s=50.0)
    batcher.add([reading(1)], [], "t1", now_s=50.15)  # a later entry does not reset the age
    assert not batcher.due(50.0)
    assert not batcher.due(50.19)
    assert batcher.due(50.2)
    assert batcher.due(51.0)


def test_seconds_until_due() -> None:
    batcher = Batcher(BatchPolicy(max_points=1000, flush_interval_s=0.25))
    batcher.add([reading()], [], None, now_s=10.0)
    assert batcher.seconds_until_due(10.0) == 0.25
    assert batcher.seconds_until_due(10.125) == 0.125
    assert batcher.seconds_until_due(10.25) == 0.0
    assert batcher.seconds_until_due(99.0) == 0.0  # never negative


def test_a_message_with_nothing_to_store_still_opens_a_batch_for_its_token() -> None:
    # A message whose every part was dropped must still be acknowledged, through a batch.
    batcher = Batcher(BatchPolicy(max_points=10, flush_interval_s=1))
    batcher.add([], [], "only-token", now_s=5.0)
    assert not batcher.empty
    assert batcher.pending == 0
    assert batcher.due(6.0)
    batch, tokens = batcher.take()
    assert len(batch) == 0
    assert tokens == ["only-token"]


def test_take_returns_entries_and_tokens_in_order_and_resets() -> None:
    batcher = Batcher(BatchPolicy(max_points=100, flush_interval_s=1))
    batcher.add([reading(0), reading(1)], [rejection(0)], "t0", now_s=1.0)
    batcher.add([], [rejection(1)], None, now_s=1.1)  # QoS 0: nothing to acknowledge
    batcher.add([reading(2)], [], "t2", now_s=1.2)
    batch, tokens = batcher.take()
    assert batch.readings == [reading(0), reading(1), reading(2)]
    assert batch.rejections == [rejection(0), rejection(1)]
    assert tokens == ["t0", "t2"]
    assert batcher.empty
    assert batcher.pending == 0
    assert not batcher.due(1e9)
    assert batcher.seconds_until_due(5.0) is None
    # The next batch's age counts from its own first entry.
    batcher.add([reading(3)], [], "t3", now_s=7.0)
    assert not batcher.due(7.5)
    assert batcher.due(8.0)
    batch2, tokens2 = batcher.take()
    assert batch2.readings == [reading(3)]
    assert tokens2 == ["t3"]
    assert batch.readings == [reading(0), reading(1), reading(2)]  # the taken batch is its own


def test_take_of_an_empty_batcher() -> None:
    batch, tokens = Batcher(BatchPolicy()).take()
    assert len(batch) == 0
    assert tokens == []


def test_default_policy() -> None:
    assert BatchPolicy() == BatchPolicy(max_points=5000, flush_interval_s=0.05)


@pytest.mark.parametrize(
    ("payload", "limit", "text"),
    [
        (b'{"a": 1}', 512, '{"a": 1}'),
        (b"abcdef", 3, "abc…"),
        (b"abc", 3, "abc"),
        (b"\xff\xfeok", 512, "\\xff\\xfeok"),
        ("é".encode(), 1, "\\xc3…"),  # a character cut in two is escaped, not dropped
        (b"", 512, ""),
    ],
)
def test_excerpt(payload: bytes, limit: int, text: str) -> None:
    assert excerpt(payload, limit) == text


def test_serialized_batch_is_compact_json() -> None:
    batch = Batch(
        [Reading("tb-menggala", TS, {"water_level_cm": 0.1}, None)],
        [StoredRejection(Rejection(Reason.BAD_TOPIC, "d", None), "t", "p", 5)],
    )
    assert serialize_batch(batch) == (
        b'{"r":[["tb-menggala",1700000000000000000,null,{"water_level_cm":0.1}]],'
        b'"j":[["bad_topic","d",null,"t","p",5]]}'
    )


def test_round_trip_of_an_empty_batch() -> None:
    restored = deserialize_batch(serialize_batch(Batch()))
    assert restored.readings == []
    assert restored.rejections == []


FINITE = st.floats(allow_nan=False, allow_infinity=False)
READINGS = st.builds(
    Reading,
    st.text(min_size=1, max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.dictionaries(st.text(max_size=20), FINITE, max_size=5),
    st.none() | st.integers(min_value=0, max_value=2**63 - 1),
)
REJECTIONS = st.builds(
    StoredRejection,
    st.builds(Rejection, st.sampled_from(Reason), st.text(), st.none() | st.text()),
    st.text(),
    st.text(),
    st.integers(min_value=0, max_value=2**63 - 1),
)


@given(st.lists(READINGS, max_size=5), st.lists(REJECTIONS, max_size=5))
def test_serialize_round_trip_is_exact(
    readings: list[Reading], rejections: list[StoredRejection]
) -> None:
    batch = Batch(readings, rejections)
    restored = deserialize_batch(serialize_batch(batch))
    assert restored.readings == readings
    assert restored.rejections == rejections
    for before, after in zip(readings, restored.readings, strict=True):
        for key, value in before.values.items():
            assert type(after.values[key]) is float
            assert math.copysign(1.0, after.values[key]) == math.copysign(1.0, value)
    for stored in restored.rejections:
        assert type(stored.rejection.reason) is Reason


def test_deserialize_refuses_garbage() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        deserialize_batch(b"not json")
    with pytest.raises(KeyError):
        deserialize_batch(b'{"r": []}')

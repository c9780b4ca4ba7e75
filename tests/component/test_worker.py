"""The worker with in-memory parts: acknowledgement only after durability, spooling, order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devices import Reading, Reason, Rejection, TopicScheme, load_stations
from devices.formats import DECODERS, DecodeContext
from devices.readings import Decoded
from ingest.batch import BatchPolicy
from ingest.errors import PermanentStorageError, RetryableStorageError
from ingest.metrics import IngestMetrics
from ingest.retry import RetryPolicy
from ingest.source import Delivery, MemorySource
from ingest.spool import Spool
from ingest.storage.memory import MemoryStorage
from ingest.validation import Limits, Validator
from ingest.worker import IngestWorker, Observer
from tests.conftest import STATIONS_FILE
from tests.helpers import eventually, reading_payload

TOPIC = "siaga/tb-menggala/telemetry"


class FakeClock:
    """The worker's monotonic clock and sleep: time moves only when the worker sleeps.

    Batches are never due by age unless a test advances the clock, so what flushes them
    (size, idle input, stop) is decided by the test, not by the machine's load.
    """

    def __init__(self) -> None:
        self.now_s = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now_s

    async def sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)
        self.now_s += delay_s
        await asyncio.sleep(0.001)  # a real yield, so a retrying loop does not spin


class IdleCountingSource(MemorySource):
    """A memory source that counts the worker's waits that ended with nothing to read."""

    def __init__(self) -> None:
        super().__init__()
        self.idle_waits = 0

    async def next_chunk(self, timeout_s: float | None) -> list[Delivery]:
        chunk = await super().next_chunk(timeout_s)
        self.idle_waits += not chunk
        return chunk

    async def idle_periods(self, count: int) -> None:
        """Return once the worker has waited ``count`` more times for input that never came."""
        target = self.idle_waits + count
        await eventually(lambda: self.idle_waits >= target, what=f"{count} idle periods")


@dataclass
class Rig:
    source: MemorySource
    storage: MemoryStorage
    spool: Spool
    metrics: IngestMetrics
    worker: IngestWorker
    clock: FakeClock
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def finish(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)

    async def aged(self, condition: Callable[[], bool], what: str) -> None:
        """Wait for ``condition`` while moving the clock, so that open batches come of age."""

        def tick() -> bool:
            self.clock.now_s += 1.0
            return condition()

        await eventually(tick, what=what)

    def sample(self, name: str, **labels: str) -> float:
        """A metric's value through the public registry API (0 when never set)."""
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def start_rig(
    tmp_path: Path,
    *,
    spool_budget: int = 50 << 20,
    observers: Sequence[Observer] = (),
    validator: Validator | None = None,
    max_points: int = 100,
    source: MemorySource | None = None,
    idle_flush_s: float | None = 0.001,
    companions: Mapping[str, Callable[[], Coroutine[Any, Any, None]]] | None = None,
) -> Rig:
    source = source or MemorySource()
    storage = MemoryStorage()
    spool = Spool(tmp_path / "spool", spool_budget, segment_bytes=64 << 10)
    metrics = IngestMetrics()
    clock = FakeClock()
    validator = validator or Validator(load_stations(STATIONS_FILE), TopicScheme(), Limits())
    worker = IngestWorker(
        source,
        storage,
        spool,
        validator,
        metrics,
        batch_policy=BatchPolicy(max_points=max_points, flush_interval_s=0.02),
        write_retry=RetryPolicy(initial_s=0.005, max_s=0.02, deadline_s=0.05),
        drain_retry=RetryPolicy(initial_s=0.005, max_s=0.02, deadline_s=None),
        loop_restart=RetryPolicy(initial_s=0.01, max_s=0.04, deadline_s=None),
        max_batches_in_flight=4,
        observers=observers,
        spool_warn_fraction=0.8,
        idle_flush_s=idle_flush_s,
        monotonic=clock.monotonic,
        sleep=clock.sleep,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop, companions))
    await worker.ready.wait()
    return Rig(source, storage, spool, metrics, worker, clock, stop, task)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = await start_rig(tmp_path)
    yield rig
    if not rig.task.done():
        await rig.finish()


def publish_readings(source: MemorySource, count: int, base_ms: int, level: float = 150.0) -> None:
    for i in range(count):
        source.publish(TOPIC, reading_payload(base_ms + i, seq=i, water_level_cm=level + i % 50))


async def test_readings_are_stored_then_acknowledged(rig: Rig) -> None:
    publish_readings(rig.source, 250, now_ms() - 60_000)
    await eventually(lambda: not rig.source.unacked, what="all acknowledged")
    assert len(rig.storage.points) == 250
    assert rig.sample("siaga_readings_stored_total") == 250
    assert rig.sample("siaga_messages_acknowledged_total") == 250


async def test_nothing_is_acknowledged_before_it_is_durable(tmp_path: Path) -> None:
    # Storage down and a spool too small for even one batch: nothing may be acknowledged.
    rig = await start_rig(tmp_path, spool_budget=1 << 10)
    rig.storage.available = False
    publish_readings(rig.source, 300, now_ms() - 60_000)
    await eventually(lambda: rig.sample("siaga_spool_full_total") >= 1, what="spool full")
    assert len(rig.source.unacked) == 300
    assert rig.storage.points == {}
    rig.storage.available = True
    await eventually(lambda: not rig.source.unacked, what="acknowledged after recovery")
    assert len(rig.storage.points) == 300
    await rig.finish()


async def test_outage_spools_acknowledges_and_drains(rig: Rig, tmp_path: Path) -> None:
    rig.storage.available = False
    publish_readings(rig.source, 500, now_ms() - 60_000)
    await eventually(lambda: not rig.source.unacked, what="acknowledged from the spool")
    assert rig.storage.points == {}
    assert rig.spool.stats().records >= 1
    assert rig.sample("siaga_spool_records") >= 1
    rig.storage.available = True
    await eventually(lambda: rig.spool.empty and len(rig.storage.points) == 500, what="drained")
    await eventually(lambda: rig.sample("siaga_spool_records") == 0, what="gauge updated")
    assert list((tmp_path / "spool").glob("*.spool")) == []


async def test_batches_reach_storage_in_order_across_an_outage(rig: Rig) -> None:
    # The same reading (same identity) twice, the newer value last: order decides what stays.
    ts = now_ms() - 60_000
    rig.storage.available = False
    rig.source.publish(TOPIC, reading_payload(ts, water_level_cm=100.0))
    await eventually(lambda: not rig.source.unacked, what="first spooled")
    # Storage is back but every write waits at the gate: the drain holds the first batch.
    rig.storage.gate = asyncio.Event()
    rig.storage.available = True
    rig.source.publish(TOPIC, reading_payload(ts, water_level_cm=200.0))
    # The second batch is acknowledged because it joined the spool behind the first, not
    # because it was written: nothing has been written yet.
    await eventually(lambda: not rig.source.unacked, what="second acknowledged")
    assert rig.spool.stats().records == 2
    assert rig.storage.writes == 0
    rig.storage.gate.set()
    await eventually(lambda: rig.spool.empty and rig.storage.writes == 2, what="drained")
    values = [b.readings[0].values["water_level_cm"] for b in rig.storage.written]
    assert values == [100.0, 200.0]
    ts_ns = ts * 1_000_000
    assert rig.storage.points[("tb-menggala", ts_ns)]["water_level_cm"] == 200.0


async def test_spool_left_by_a_previous_run_is_drained_at_start(tmp_path: Path) -> None:
    first = await start_rig(tmp_path)
    first.storage.available = False
    publish_readings(first.source, 120, now_ms() - 60_000)
    await eventually(lambda: not first.source.unacked, what="spooled")
    await first.finish()
    first.spool.close()
    second = await start_rig(tmp_path)
    await eventually(lambda: len(second.storage.points) == 120, what="drained by the next run")
    await second.finish()


async def test_redelivery_after_a_crash_stores_each_reading_once(rig: Rig) -> None:
    rig.storage.available = False
    publish_readings(rig.source, 50, now_ms() - 60_000)
    rig.source.crash()  # the broker offers everything unacknowledged again
    rig.storage.available = True
    await rig.aged(lambda: not rig.source.unacked and rig.spool.empty, what="settled")
    assert len(rig.storage.points) == 50


async def test_graceful_stop_flushes_what_it_holds(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path, max_points=10_000)
    publish_readings(rig.source, 40, now_ms() - 60_000)
    await eventually(lambda: rig.sample("siaga_messages_received_total") == 40, what="received")
    await rig.finish()
    assert len(rig.storage.points) == 40
    assert not rig.source.unacked


async def test_bad_input_is_stored_counted_and_acknowledged(rig: Rig) -> None:
    cases = {
        b"\xff\xfe\x00": Reason.UNDECODABLE,
        b"{not json": Reason.INVALID_JSON,
        b'{"ts": 1700000000, "water_level_cm": NaN}': Reason.NON_FINITE,
        b"[1, 2]": Reason.BAD_SHAPE,
        b'{"water_level_cm": 100}': Reason.MISSING_TIMESTAMP,
        b'{"station": "tb-banjar-agung", "ts": 1, "water_level_cm": 1}': Reason.STATION_MISMATCH,
        b'{"ts": "yesterday", "water_level_cm": 1}': Reason.BAD_TIMESTAMP,
    }
    for payload in cases:
        rig.source.publish(TOPIC, payload)
    rig.source.publish("siaga/no-such-station/telemetry", reading_payload(now_ms(), x=1))
    rig.source.publish(TOPIC, b" " * (70 * 1024))
    await eventually(lambda: not rig.source.unacked, what="all acknowledged")
    stored = {r.rejection.reason for r in rig.storage.stored_rejections}
    assert stored == {*cases.values(), Reason.UNKNOWN_STATION, Reason.PAYLOAD_TOO_LARGE}
    tally = Counter(r.rejection.reason for r in rig.storage.stored_rejections)
    assert tally[Reason.BAD_SHAPE] == 2  # one per array element
    for reason, count in tally.items():
        assert rig.metrics.rejected_total(reason) == count
    unknown = next(
        r for r in rig.storage.stored_rejections if r.rejection.reason is Reason.UNKNOWN_STATION
    )
    assert unknown.rejection.station_id is None
    assert unknown.topic == "siaga/no-such-station/telemetry"
    excerpts = {r.rejection.reason: r.payload_excerpt for r in rig.storage.stored_rejections}
    assert excerpts[Reason.UNDECODABLE] == "\\xff\\xfe\x00"
    assert len(excerpts[Reason.PAYLOAD_TOO_LARGE]) == 513  # 512 bytes and an ellipsis
    timestamps = [r.received_ns for r in rig.storage.stored_rejections]
    assert len(set(timestamps)) == len(timestamps)


@pytest.mark.logged_exceptions
async def test_a_decoder_bug_costs_one_message_not_the_loop(tmp_path: Path) -> None:
    def explode(payload: bytes, context: DecodeContext) -> Decoded:
        if payload == b"boom":
            raise RuntimeError("decoder bug")
        return DECODERS["native"](payload, context)

    validator = Validator(
        load_stations(STATIONS_FILE), TopicScheme(), Limits(), decoders={"native": explode}
    )
    rig = await start_rig(tmp_path, validator=validator)
    rig.source.publish(TOPIC, b"boom")
    publish_readings(rig.source, 5, now_ms() - 60_000)
    await eventually(lambda: not rig.source.unacked, what="all acknowledged")
    assert len(rig.storage.points) == 5
    assert [r.rejection.reason for r in rig.storage.stored_rejections] == [Reason.DECODER_ERROR]
    await rig.finish()


@pytest.mark.logged_exceptions
async def test_a_decoder_bug_midway_keeps_nothing_of_that_message(tmp_path: Path) -> None:
    # The worker validates into lists it holds for the whole chunk: a message that raises
    # after part of it was appended must leave nothing of itself behind.
    def half(payload: bytes, context: DecodeContext) -> Decoded:
        decoded = DECODERS["native"](payload, context)
        good = decoded.readings[0]
        if good.seq == 2:
            values: dict[str, Any] = {"water_level_cm": "oops"}  # no number: check_reading raises
            bad = Reading(good.station_id, good.ts_ns, values)
            return Decoded([good, bad], [Rejection(Reason.WRONG_TYPE, "first", good.station_id)])
        return decoded

    validator = Validator(
        load_stations(STATIONS_FILE), TopicScheme(), Limits(), decoders={"native": half}
    )
    rig = await start_rig(tmp_path, validator=validator)
    publish_readings(rig.source, 5, now_ms() - 60_000)
    await eventually(lambda: not rig.source.unacked, what="all acknowledged")
    assert len(rig.storage.points) == 4
    assert [r.rejection.reason for r in rig.storage.stored_rejections] == [Reason.DECODER_ERROR]
    await rig.finish()


@pytest.mark.logged_exceptions
async def test_observers_get_durable_readings_and_cannot_stop_ingest(tmp_path: Path) -> None:
    seen: list[Reading] = []

    async def record(readings: Sequence[Reading]) -> None:
        seen.extend(readings)

    async def broken(readings: Sequence[Reading]) -> None:
        raise ValueError("observer bug")

    rig = await start_rig(tmp_path, observers=[broken, record])
    publish_readings(rig.source, 30, now_ms() - 60_000)
    await rig.aged(lambda: len(seen) == 30, what="observed")
    assert [r.seq for r in seen] == list(range(30))
    assert len(rig.storage.points) == 30
    await rig.finish()


async def test_qos0_messages_are_stored_without_tokens(rig: Rig) -> None:
    for i in range(5):
        rig.source.publish(TOPIC, reading_payload(now_ms() - 1000 + i, water_level_cm=1.0), qos=0)
    await eventually(lambda: rig.sample("siaga_messages_received_total") == 5, what="received")
    assert rig.storage.points == {}  # nothing to acknowledge: no early flush, wait for age
    rig.clock.now_s += 1.0
    await eventually(lambda: len(rig.storage.points) == 5, what="stored")
    assert rig.source.acked == []


async def test_a_one_in_flight_broker_is_served_by_idle_flushes(tmp_path: Path) -> None:
    # A broker that sends the next message only after the PUBACK of the last (ejabberd). The
    # clock is frozen: no batch ever comes of age, so only the idle flush can move them.
    rig = await start_rig(tmp_path, source=MemorySource(max_in_flight=1))
    publish_readings(rig.source, 30, now_ms() - 60_000)
    await eventually(lambda: not rig.source.unacked, what="all acknowledged")
    assert len(rig.storage.points) == 30
    assert rig.storage.writes == 30  # one message per batch: each flushed as input went idle
    assert rig.sample("siaga_batch_flushes_total", cause="idle") == 30
    await rig.finish()


async def test_without_idle_flush_a_one_in_flight_broker_waits_for_age(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path, source=MemorySource(max_in_flight=1), idle_flush_s=None)
    publish_readings(rig.source, 3, now_ms() - 60_000)
    await eventually(lambda: rig.sample("siaga_messages_received_total") == 1, what="first")
    assert rig.storage.writes == 0
    rig.clock.now_s += 1.0  # the batch comes of age
    await eventually(lambda: rig.storage.writes == 1, what="flushed by age")
    await rig.finish()


async def test_idle_flush_waits_while_the_writer_is_busy(tmp_path: Path) -> None:
    source = IdleCountingSource()
    rig = await start_rig(tmp_path, max_points=10_000, source=source)
    rig.storage.gate = asyncio.Event()
    publish_readings(rig.source, 5, now_ms() - 60_000)
    await eventually(lambda: rig.worker._in_flight == 1, what="first batch at the writer")
    publish_readings(rig.source, 5, now_ms() - 50_000)
    await eventually(lambda: rig.sample("siaga_messages_received_total") == 10, what="received")
    await source.idle_periods(5)  # the second batch must keep growing
    assert rig.worker._in_flight == 1
    rig.storage.gate.set()
    rig.clock.now_s += 1.0
    await eventually(lambda: not rig.source.unacked, what="all acknowledged")
    assert rig.storage.writes == 2
    await rig.finish()


async def test_stop_disconnects_while_the_source_still_runs(tmp_path: Path) -> None:
    rig = await start_rig(tmp_path)
    publish_readings(rig.source, 3, now_ms() - 60_000)
    await eventually(lambda: not rig.source.unacked, what="acknowledged")
    await rig.finish()
    assert rig.source.disconnected_while_running is True


async def test_a_permanent_storage_error_is_loud_counted_and_backs_off(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.storage.failure = PermanentStorageError("InfluxDB refused the credentials (401)", 401)
    with caplog.at_level(logging.INFO, logger="ingest.worker"):
        publish_readings(rig.source, 3, now_ms() - 60_000)
        await eventually(lambda: not rig.source.unacked, what="spooled and acknowledged")
        await eventually(lambda: len(rig.clock.sleeps) >= 6, what="drain retries")
    status = rig.worker.status()
    assert not status.ready
    assert status.storage_problem == "auth: InfluxDB refused the credentials (401)"
    assert "NOT READY; storage: auth" in status.line
    assert rig.sample("siaga_ready") == 0
    assert rig.sample("siaga_storage_errors_total", kind="auth") >= 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # said once, loudly; not once per retry
    assert "STORAGE REFUSES WRITES (auth)" in errors[0].getMessage()
    assert not [r for r in caplog.records if "still unavailable" in r.getMessage()]
    # The drain backs off (its bound grows 0.005 -> 0.02 s; each wait in [bound/2, bound]).
    assert rig.clock.sleeps[0] <= 0.005
    assert rig.clock.sleeps[-1] >= 0.01
    rig.storage.failure = None
    await eventually(lambda: rig.spool.empty and len(rig.storage.points) == 3, what="drained")
    assert rig.worker.status().ready
    assert rig.sample("siaga_ready") == 1


async def test_the_drain_honours_retry_after(rig: Rig) -> None:
    rig.storage.failure = RetryableStorageError("InfluxDB answered 503", retry_after_s=7.0)
    publish_readings(rig.source, 2, now_ms() - 60_000)
    await eventually(lambda: not rig.source.unacked, what="spooled")
    await eventually(lambda: 7.0 in rig.clock.sleeps, what="a wait of Retry-After")
    assert rig.worker.status().ready  # retryable: not a readiness problem
    assert rig.sample("siaga_storage_errors_total", kind="unavailable") >= 1
    rig.storage.failure = None
    await eventually(lambda: rig.spool.empty, what="drained")


@pytest.mark.logged_exceptions
async def test_a_failing_secondary_loop_is_restarted_and_ingest_goes_on(tmp_path: Path) -> None:
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise RuntimeError("health loop bug")
        await asyncio.Event().wait()

    rig = await start_rig(tmp_path, companions={"health": flaky})
    await eventually(lambda: len(runs) == 3, what="restarted twice")
    assert rig.sample("siaga_loop_restarts_total", loop="health") == 2
    publish_readings(rig.source, 5, now_ms() - 60_000)
    await eventually(lambda: not rig.source.unacked, what="ingest goes on")
    assert not rig.task.done()
    await rig.finish()


async def test_spool_damage_found_at_start_is_counted(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.append(b"a batch that will not be read")
    spool.close()
    [segment] = (tmp_path / "spool").glob("*.spool")
    segment.write_bytes(segment.read_bytes()[:-4])  # a torn tail
    rig = await start_rig(tmp_path)
    header, body = 12, len(b"a batch that will not be read")
    assert rig.sample("siaga_spool_quarantined_bytes_total") == header + body - 4
    assert rig.sample("siaga_spool_damaged_records_total") == 1
    assert rig.sample("siaga_rejections_total", reason="spool_damaged") == 1
    # A stored rejection that says where: the segment and the offset.
    await eventually(lambda: bool(rig.storage.stored_rejections), what="the damage stored")
    [stored] = rig.storage.stored_rejections
    assert stored.rejection.reason is Reason.SPOOL_DAMAGED
    assert stored.rejection.detail.startswith(
        f"spool segment {segment.name} offset 0: {header + body - 4} bytes (1 record) "
        f"unreadable, moved to {tmp_path / 'spool' / 'quarantine' / (segment.stem + '.0.bad')}"
    )
    # Ingest goes on, and a restart does not count the same damage again.
    publish_readings(rig.source, 3, now_ms() - 60_000)
    await eventually(lambda: not rig.source.unacked, what="ingest goes on")
    await rig.finish()
    rig.spool.close()
    again = await start_rig(tmp_path)
    assert again.sample("siaga_rejections_total", reason="spool_damaged") == 0
    await again.finish()


async def test_no_idle_flush_while_many_messages_wait(tmp_path: Path) -> None:
    # A burst of 40 (a paced publisher, not a broker waiting for us): the age decides.
    source = IdleCountingSource()
    rig = await start_rig(tmp_path, max_points=10_000, source=source)
    publish_readings(rig.source, 40, now_ms() - 60_000)
    await eventually(lambda: rig.sample("siaga_messages_received_total") == 40, what="received")
    await source.idle_periods(5)
    assert rig.storage.writes == 0
    rig.clock.now_s += 1.0
    await eventually(lambda: not rig.source.unacked, what="flushed by age")
    assert rig.sample("siaga_batch_flushes_total", cause="age") == 1
    await rig.finish()

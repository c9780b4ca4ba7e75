"""The ingest worker: source → validate → batch → store (or spool) → acknowledge → observers.

A message is acknowledged to its source only after every reading and rejection it produced is
durable: written to storage, or appended and fsync'd to the spool. While the spool holds
anything, new batches join it behind the older ones, so storage receives batches in order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
from ingest.errors import (
    BrokerUnsuitableError,
    SpoolError,
    SpoolFullError,
    StorageError,
    StorageVerdict,
    classify_storage_error,
)
from ingest.metrics import IngestMetrics
from ingest.retry import RetryPolicy
from ingest.settings import BatchSettings
from ingest.source import Delivery, MessageSource
from ingest.spool import Spool
from ingest.storage.base import Storage, WriteReport
from ingest.supervise import supervise
from ingest.validation import Validator

log = logging.getLogger(__name__)

Observer = Callable[[Sequence[Reading]], Awaitable[None]]
"""Called with each batch's readings once they are durable (alert evaluation plugs in here)."""

_IDLE_WAIT_S = 0.25
_BATCH = BatchSettings.model_fields


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """What readiness checks and the status line report.

    Attributes:
        ready: False while storage refuses writes for a reason retrying cannot fix.
        storage_problem: The current storage failure (``kind: message``), if any.
        spooled_batches: Batches waiting in the spool.
    """

    ready: bool
    storage_problem: str | None
    spooled_batches: int

    @property
    def line(self) -> str:
        """One line for people: ``ready`` or what is wrong."""
        state = "ready" if self.ready else "NOT READY"
        parts = [state]
        if self.storage_problem:
            parts.append(f"storage: {self.storage_problem}")
        if self.spooled_batches:
            parts.append(f"{self.spooled_batches} batches spooled")
        return "; ".join(parts)


class IngestWorker:
    """Moves messages from a source into storage without losing any it acknowledged.

    Args:
        source: Where messages come from.
        storage: Where readings and rejections go.
        spool: Where batches wait while storage is down.
        validator: Turns messages into readings and rejections.
        metrics: Counters to update.
        batch_policy: When to flush a batch.
        write_retry: How long to retry a write before spooling the batch.
        drain_retry: How to retry draining the spool while storage stays down.
        loop_restart: How to restart a failed secondary loop (companions).
        max_batches_in_flight: Batches queued for the writer before the consumer waits.
        observers: Called with durable readings, in order.
        spool_warn_fraction: Log loudly when the spool fills past this fraction of its budget.
        idle_flush_s: With acknowledgements pending and the writer idle, flush the open
            batch once no message arrived for this long (a broker that keeps one message in
            flight sends the next only after our acknowledgement); None to flush only by size
            and age.
        idle_flush_max_messages: The idle flush applies only while at most this many
            messages wait for acknowledgement.
        clock_ns: Wall clock (time bounds, rejection timestamps).
        monotonic: Monotonic clock (batch ages).
        sleep: Waits between retries (injected in tests, with ``monotonic``).
    """

    def __init__(
        self,
        source: MessageSource,
        storage: Storage,
        spool: Spool,
        validator: Validator,
        metrics: IngestMetrics,
        *,
        batch_policy: BatchPolicy,
        write_retry: RetryPolicy,
        drain_retry: RetryPolicy,
        loop_restart: RetryPolicy,
        max_batches_in_flight: int,
        observers: Sequence[Observer] = (),
        spool_warn_fraction: float,
        idle_flush_s: float | None,
        idle_flush_max_messages: int = _BATCH["idle_flush_max_messages"].default,
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._source = source
        self._storage = storage
        self._spool = spool
        self._validator = validator
        self.metrics = metrics
        self._batcher = Batcher(batch_policy)
        self._write_retry = write_retry
        self._drain_retry = drain_retry
        self._loop_restart = loop_restart
        self._idle_flush_s = idle_flush_s
        self._idle_flush_max_messages = idle_flush_max_messages
        self._in_flight = 0  # batches queued for or being written by the writer
        self._storage_problem: tuple[StorageVerdict, str] | None = None
        self._writes: asyncio.Queue[tuple[Batch, list[object]]] = asyncio.Queue(
            max_batches_in_flight
        )
        self._observers = list(observers)
        self._spool_warn_fraction = spool_warn_fraction
        self._spool_warned = False
        self._spool_has_data = asyncio.Event()
        self._clock_ns = clock_ns
        self._monotonic = monotonic
        self._sleep = sleep
        self._last_rejection_ns = 0
        self.ready = asyncio.Event()
        self.metrics.spool_quarantined_bytes.inc(sum(q.size for q in spool.quarantined))
        self.metrics.spool_damaged.inc(sum(q.records for q in spool.quarantined))
        self.metrics.count_rejections(Reason.SPOOL_DAMAGED for _ in spool.quarantined)
        self._refresh_spool_metrics()

    async def run(
        self,
        stop: asyncio.Event,
        companions: Mapping[str, Callable[[], Coroutine[Any, Any, None]]] | None = None,
    ) -> None:
        """Run until ``stop`` is set, then flush, acknowledge and return.

        Args:
            stop: Set it to stop gracefully.
            companions: More background loops (name → coroutine function) to run in the same
                task group and cancel at the end, e.g. the registry watcher.
        """
        if not self._spool.empty:
            log.warning(
                "spool holds %d batches from before; draining them first",
                self._spool.stats().records,
            )
            self._spool_has_data.set()
        try:
            await self._run_tasks(stop, companions or {})
        except BaseExceptionGroup as group:
            # One reason, not a group: a broker that cannot serve us is a sentence to show.
            unsuitable = group.subgroup(BrokerUnsuitableError)
            if unsuitable is not None:
                raise _first_leaf(unsuitable) from None
            raise
        log.info("ingest worker stopped after flushing")

    async def _run_tasks(
        self, stop: asyncio.Event, companions: Mapping[str, Callable[[], Coroutine[Any, Any, None]]]
    ) -> None:
        async with asyncio.TaskGroup() as group:
            source = group.create_task(self._source.run(), name="siaga.ingest.source")
            drain = group.create_task(self._drain_spool(), name="siaga.ingest.spool-drain")
            writer = group.create_task(self._write_loop(), name="siaga.ingest.writer")
            await self._store_spool_damage()
            others = [
                group.create_task(
                    supervise(
                        name,
                        start,
                        restart=self._loop_restart,
                        on_failure=self._count_loop_failure,
                        sleep=self._sleep,
                        monotonic=self._monotonic,
                    ),
                    name=f"siaga.ingest.{name}",
                )
                for name, start in companions.items()
            ]
            self.ready.set()
            await self._consume(stop)
            await self._writes.join()
            # Say goodbye while the connection is still served: the last acknowledgements go
            # out before the DISCONNECT, and the broker keeps the session for the next run.
            await self._source.disconnect()
            for task in (source, drain, writer, *others):
                task.cancel()

    async def _store_spool_damage(self) -> None:
        """Store a ``spool_damaged`` rejection per damaged range the spool found on opening,
        through the writer like any batch (to storage, or the spool while it is down)."""
        damage = [
            StoredRejection(
                Rejection(
                    Reason.SPOOL_DAMAGED,
                    f"spool segment {q.segment} offset {q.offset}: {q.size} bytes "
                    f"({q.records} record{'s' if q.records > 1 else ''}) unreadable, moved to "
                    f"{q.path}; `siaga spool inspect` shows them, `siaga spool replay` stores "
                    "what is still readable",
                ),
                "",
                "",
                self._unique_rejection_ns(self._clock_ns()),
            )
            for q in self._spool.quarantined
        ]
        if damage:
            self._in_flight += 1
            await self._writes.put((Batch([], damage), []))

    def status(self) -> WorkerStatus:
        """Readiness and the status line: whether storage takes writes, and the spool."""
        problem = self._storage_problem
        return WorkerStatus(
            ready=problem is None or problem[0].retryable,
            storage_problem=None if problem is None else f"{problem[0].kind}: {problem[1]}",
            spooled_batches=self._spool.stats().records,
        )

    def _count_loop_failure(self, name: str) -> None:
        self.metrics.loop_restarts.labels(name).inc()

    # -- consuming ----------------------------------------------------------------------------

    async def _consume(self, stop: asyncio.Event) -> None:
        batcher = self._batcher
        idle_flush_s = self._idle_flush_s
        while not stop.is_set():
            wait_s = batcher.seconds_until_due(self._monotonic())
            timeout_s = _IDLE_WAIT_S if wait_s is None else min(wait_s, _IDLE_WAIT_S)
            # Only a few unacknowledged messages and an idle writer: the broker may be waiting
            # for our PUBACKs before it sends more. With more pending, flushing by age already
            # gets pending/flush_interval_s messages a second, and a small extra write would
            # take the writer from the batches behind it.
            flush_when_idle = (
                idle_flush_s is not None
                and 0 < batcher.tokens_pending <= self._idle_flush_max_messages
                and self._in_flight == 0
            )
            if flush_when_idle:
                assert idle_flush_s is not None
                timeout_s = min(timeout_s, idle_flush_s)
            chunk = await self._source.next_chunk(timeout_s)
            if chunk:
                self._process(chunk)
            if batcher.due(self._monotonic()):
                await self._flush("size" if batcher.full else "age")
            elif flush_when_idle and not chunk:
                await self._flush("idle")
        # Graceful stop: take nothing new, store what we hold, acknowledge it.
        self._source.stop_reading()
        self._process(self._source.drain_buffered())
        if not batcher.empty:
            await self._flush("stop")

    async def _flush(self, cause: str) -> None:
        self.metrics.batch_flushes.labels(cause).inc()
        self._in_flight += 1
        await self._writes.put(self._batcher.take())

    def _process(self, chunk: list[Delivery]) -> None:
        if not chunk:
            return
        now_ns = self._clock_ns()
        now_s = self._monotonic()
        validate_into = self._validator.validate_into
        readings: list[Reading] = []
        rejections: list[Rejection] = []
        stored: list[StoredRejection] = []
        tokens: list[object] = []
        for delivery in chunk:
            readings_before, rejections_before = len(readings), len(rejections)
            try:
                validate_into(delivery.topic, delivery.payload, now_ns, readings, rejections)
            except Exception as exc:
                # A decoder bug must cost one message, never the loop; the tests fail on it.
                log.exception("validating a message on %s raised", delivery.topic[:100])
                del readings[readings_before:], rejections[rejections_before:]
                rejections.append(Rejection(Reason.DECODER_ERROR, repr(exc)[:300]))
            if len(rejections) > rejections_before:
                for rejection in rejections[rejections_before:]:
                    stored.append(
                        StoredRejection(
                            rejection,
                            delivery.topic,
                            excerpt(delivery.payload),
                            self._unique_rejection_ns(now_ns),
                        )
                    )
            if delivery.token is not None:
                tokens.append(delivery.token)
        # The whole chunk at once: a batch is flushed between chunks, never within one.
        self._batcher.add_many(readings, stored, tokens, now_s)
        self.metrics.messages_received.inc(len(chunk))
        self.metrics.readings_received.inc(len(readings))
        if rejections:
            self.metrics.count_rejections(r.reason for r in rejections)

    def _unique_rejection_ns(self, now_ns: int) -> int:
        # Rejections are points too: distinct timestamps keep two from overwriting each other.
        self._last_rejection_ns = max(now_ns, self._last_rejection_ns + 1)
        return self._last_rejection_ns

    # -- writing ------------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            batch, tokens = await self._writes.get()
            try:
                await self._make_durable(batch)
                acked = self._source.ack(tokens)  # type: ignore[arg-type]
                self.metrics.messages_acked.inc(acked)
                self.metrics.readings_stored.inc(len(batch.readings))
                durable_ns = self._clock_ns()
                self.metrics.reading_lag.observe_many(
                    [(durable_ns - r.ts_ns) / 1e9 for r in batch.readings]
                )
                self.metrics.batch_points.observe(len(batch))
                await self._notify(batch.readings)
            finally:
                self._in_flight -= 1
                self._writes.task_done()

    async def _make_durable(self, batch: Batch) -> None:
        if not batch:
            return
        while True:
            if self._spool.empty:
                try:
                    await self._write_with_retry(batch)
                    return
                except StorageError as exc:
                    log.warning(
                        "storage write failed (%s); spooling %d entries",
                        str(exc) or type(exc).__name__,
                        len(batch),
                    )
            try:
                await asyncio.to_thread(self._spool.append, serialize_batch(batch))
            except SpoolFullError as exc:
                self.metrics.spool_full.inc()
                log.error("SPOOL FULL, holding acknowledgements until storage returns: %s", exc)
                await self._sleep(1.0)
                continue
            except SpoolError as exc:
                # A disk fault: nothing is durable, so nothing is acknowledged; the broker keeps
                # the messages while we retry.
                log.error("SPOOL WRITE FAILED, holding acknowledgements: %s", exc)
                await self._sleep(1.0)
                continue
            self.metrics.spooled_batches.inc()
            self._refresh_spool_metrics()
            self._spool_has_data.set()
            return

    async def _write_with_retry(self, batch: Batch) -> WriteReport:
        deadline = self._monotonic() + (self._write_retry.deadline_s or 0)
        for delay_s in self._write_retry.delays():
            started = self._monotonic()
            try:
                report = await self._storage.write(batch)
            except StorageError as exc:
                verdict = self._storage_failed(exc)
                wait_s = max(delay_s, verdict.retry_after_s or 0.0)
                if not verdict.retryable or self._monotonic() + wait_s > deadline:
                    raise
                await self._sleep(wait_s)
                continue
            self.metrics.write_seconds.observe(self._monotonic() - started)
            self._storage_recovered()
            if report.refused:
                self.metrics.rejections.labels("storage_rejected").inc(report.refused)
            return report
        raise AssertionError("retry delays never end")  # pragma: no cover

    async def _notify(self, readings: list[Reading]) -> None:
        if not readings:
            return
        for observer in self._observers:
            try:
                await observer(readings)
            except Exception:
                # An observer's bug must not stop ingestion; the readings are already durable.
                log.exception("observer %r failed", observer)

    # -- the spool ----------------------------------------------------------------------------

    async def _drain_spool(self) -> None:
        delays = self._drain_retry.delays()
        while True:
            entry = await asyncio.to_thread(self._spool.peek)
            if entry is None:
                self._spool_has_data.clear()
                self._refresh_spool_metrics()
                await self._spool_has_data.wait()
                continue
            try:
                started = self._monotonic()
                report = await self._storage.write(deserialize_batch(entry.body))
            except StorageError as exc:
                verdict = self._storage_failed(exc)
                delay_s = max(next(delays), verdict.retry_after_s or 0.0)
                if verdict.retryable:
                    log.info(
                        "storage still unavailable (%s); next drain attempt in %.1f s",
                        str(exc) or type(exc).__name__,
                        delay_s,
                    )
                await self._sleep(delay_s)
                continue
            self.metrics.write_seconds.observe(self._monotonic() - started)
            self._storage_recovered()
            if report.refused:
                self.metrics.rejections.labels("storage_rejected").inc(report.refused)
            await asyncio.to_thread(self._spool.pop, entry)
            self._refresh_spool_metrics()
            delays = self._drain_retry.delays()

    def _storage_failed(self, exc: StorageError) -> StorageVerdict:
        """Judge a storage failure once; count it, and log a permanent one at ERROR."""
        verdict = classify_storage_error(exc)
        message = str(exc) or type(exc).__name__
        self.metrics.storage_failures.inc()
        self.metrics.storage_errors.labels(verdict.kind).inc()
        self.metrics.storage_up.set(0)
        previous = self._storage_problem
        self._storage_problem = (verdict, message)
        if not verdict.retryable:
            self.metrics.ready.set(0)
            if previous is None or previous[0] != verdict:
                log.error(
                    "STORAGE REFUSES WRITES (%s), retrying will not fix it: %s; "
                    "batches are spooled until it is fixed",
                    verdict.kind,
                    message,
                )
        return verdict

    def _storage_recovered(self) -> None:
        self.metrics.storage_up.set(1)
        if self._storage_problem is not None:
            if not self._storage_problem[0].retryable:
                log.warning("storage takes writes again")
            self._storage_problem = None
            self.metrics.ready.set(1)

    def _refresh_spool_metrics(self) -> None:
        stats = self._spool.stats()
        self.metrics.spool_records.set(stats.records)
        self.metrics.spool_bytes.set(stats.bytes)
        self.metrics.spool_budget_bytes.set(stats.budget_bytes)
        if stats.fill_ratio >= self._spool_warn_fraction and not self._spool_warned:
            log.error(
                "SPOOL NEARLY FULL: %d of %d bytes (%.0f%%); storage has been down long",
                stats.bytes,
                stats.budget_bytes,
                100 * stats.fill_ratio,
            )
            self._spool_warned = True
        elif stats.fill_ratio < self._spool_warn_fraction / 2:
            self._spool_warned = False

"""``siaga alerts run``: the engine's process. Messages in, incidents durable, then acknowledged.

Every cycle (``alerts.commit_interval_s``, or ``commit_max_messages``):

1. decode and validate each message with the ingest worker's :class:`Validator` (rejections are
   the ingest workers' to store: here they are only skipped);
2. evaluate the readings (:meth:`Engine.process`) and, when due, the time-driven rules
   (:meth:`Engine.tick`);
3. hand the cycle to the committer task, which commits its transitions with one outbox row each
   in ONE transaction (retried until it succeeds: the engine's memory already moved on), while
   the next cycle is evaluated; cycles that queued up meanwhile share one transaction;
4. give the cycle's alert events to the InfluxDB writer (measurement ``alerts``).

Every checkpoint (``alerts.checkpoint_interval_s``, ``checkpoint_max_messages``, or at once
after a tick of the time-driven rules, which advances live stations' clocks by the wall clock),
the cycle's transaction also carries a journal entry of the engine's inputs since the previous
checkpoint (:mod:`alerts.journal`); then the committer spools the events InfluxDB has not
taken yet and acknowledges every message evaluated since the previous checkpoint. Every
``alerts.snapshot_interval_s`` (or ``snapshot_max_readings``) a checkpoint also carries a
snapshot: the engine's changed keys, replacing the entries it covers. On SQLite (the store's
``states_apart``) the snapshot goes in a transaction of its own, written by a worker thread
after the acknowledgement while the loop evaluates on; one that fails joins the next.

A crash anywhere leaves the messages since the last checkpoint unacknowledged: the broker
redelivers them; the engine restores the last snapshot, replays the journal entries after it
(the same state, events and transitions as before the crash), and evaluates the redelivered
readings. The store skips each transition it already holds, and InfluxDB overwrites each event
with itself. So no transition is lost or stored twice, and the outbox holds each once.

Hot standby: the process first waits for the leader lock (:meth:`SqlIncidentStore.lead`), and
only then restores the engine's state (snapshot and journal) and connects to the broker, with
the client id the pair shares. The standby therefore never holds a session of its own: when it
takes over it resumes the leader's persistent session, with every message the leader had not
acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from alerts import journal
from alerts.engine import Engine, Scope, StateCapture, Step
from alerts.forecasting import live_forecaster, warning_rule
from alerts.incidents.errors import IncidentStoreError, LeadershipLostError
from alerts.incidents.records import CommitReport
from alerts.incidents.store import IncidentStore, SqlIncidentStore
from alerts.journal import JournalBuffer
from alerts.model import AlertEvent, Transition
from alerts.notify.errors import PolicyError
from alerts.notify.message import AckLink
from alerts.notify.runtime import notification_companions
from alerts.notify.sqlstore import SqlNotifyStore
from alerts.rules.config import RulesConfig, load_rules
from alerts.rules.watch import RulesWatcher
from alerts.settings import Settings
from devices import Reading, TopicScheme
from devices.registry import Registry, load_registry
from devices.stations import StationRegistry
from forecast.store import ModelStoreError
from ingest.errors import ConfigError, SpoolError, StorageError
from ingest.mqtt.client import MqttSubscriber
from ingest.registry_watch import RegistryWatcher
from ingest.runtime import connect_options, open_storage, select_backend
from ingest.source import Delivery, MessageSource
from ingest.spool import Spool
from ingest.storage.base import AlertRecord, Storage
from ingest.storage.influx import InfluxStorage, registry_tags
from ingest.validation import Limits, Validator

log = logging.getLogger(__name__)

CommitObserver = Callable[[Sequence[Transition], int], None]
"""Called with the transitions each commit stored (not those it found already stored) and the
wall-clock time the commit returned."""

GIL_SWITCH_INTERVAL_S = 0.0005
GC_THRESHOLDS = (20_000, 20, 20)
"""The engine process's collector thresholds (CPython's defaults: 700, 10, 10)."""
_FULL_HEALTH_EVERY = 10
SNAPSHOT_KEYS_PER_CYCLE = 500
"""Keys of a snapshot encoded per turn of the evaluation loop (~3.5 ms)."""
_HEALTH_CHUNK = 500
"""Stations per device-health write: ~7 ms of the loop each (snapshots and line protocol), so
evaluation goes on between them."""


class Leader(Protocol):
    """The leadership side of a store (the SQL store and the in-memory one have it)."""

    async def lead(self, poll_s: float = 1.0) -> None:
        """Wait for the leader lock."""
        ...

    async def check_leadership(self) -> None:
        """Raise LeadershipLostError when the lock is gone."""
        ...


class LeadingStore(IncidentStore, Leader, Protocol):
    """An incident store that can lead."""

    states_apart: bool
    """Whether a snapshot goes to :meth:`IncidentStore.save_states` after the
    transitions' commit instead of in its transaction."""


def alert_record(event: AlertEvent) -> AlertRecord:
    """The ``alerts`` point of an event (a Grafana annotation)."""
    return AlertRecord(
        ts_ns=event.at_ns,
        station_id=event.subject,
        kind=event.kind.value,
        rule=event.rule,
        level=event.severity.name,
        firing=event.firing,
        late=event.late,
        text=event.detail or f"{event.subject} {event.rule} {event.severity.name}",
        event_id=event.id,
    )


def encode_records(records: Sequence[AlertRecord]) -> bytes:
    """A spool record of alert records."""
    return orjson.dumps(
        [
            [r.ts_ns, r.station_id, r.kind, r.rule, r.level, r.firing, r.late, r.text, r.event_id]
            for r in records
        ]
    )


def decode_records(body: bytes) -> list[AlertRecord]:
    """The inverse of :func:`encode_records`."""
    return [AlertRecord(*row) for row in orjson.loads(body)]


def subject_labels(registry: StationRegistry, subject: str) -> dict[str, str]:
    """Routing labels of an incident's subject: a station's regency and river, or a group's."""
    if subject.startswith("regency:"):
        return {"regency": subject.removeprefix("regency:")}
    station = registry.get(subject)
    if station is None:
        return {"station": subject}
    return {"station": subject, "regency": station.regency, "river": station.river or ""}


@dataclass(slots=True)
class _Work:
    """One cycle for the committer: its decisions; at a checkpoint its journal entry and the
    acknowledgements; now and then a snapshot of the engine's state."""

    step: Step
    journal: dict[str, bytes]
    snapshot: dict[str, bytes | None]
    tokens: list[int]

    def merge(self, later: _Work) -> _Work:
        """This cycle followed by ``later``, as one."""
        self.step.extend(later.step)
        self.journal.update(later.journal)
        self.snapshot.update(later.snapshot)
        self.tokens.extend(later.tokens)
        return self


@dataclass(slots=True)
class _Capture:
    """A snapshot under way: the engine's state at one checkpoint, encoded a part at a time."""

    state: StateCapture
    covered: int
    entries: list[int]
    rows: dict[str, bytes] = field(default_factory=dict)


@dataclass
class LoopPolicy:
    """When to commit, tick and record health, and how persistently to retry."""

    commit_interval_s: float = 0.02
    commit_max_messages: int = 5000
    checkpoint_interval_s: float = 1.0
    checkpoint_max_messages: int = 20_000
    snapshot_interval_s: float = 30.0
    snapshot_max_readings: int = 200_000
    max_cycles_in_flight: int = 16
    tick_interval_s: float = 10.0
    health_interval_s: float = 60.0
    leader_poll_s: float = 1.0
    leader_check_s: float = 2.0
    retry_initial_s: float = 0.1
    retry_max_s: float = 5.0


@dataclass
class LoopCounters:
    """What the loop did (read by tests and the benchmark)."""

    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    events: int = 0
    transitions: int = 0
    repeated_transitions: int = 0
    commits: int = 0
    commit_failures: int = 0
    acked: int = 0
    alerts_written: int = 0
    alert_write_failures: int = 0
    health_written: int = 0
    commit_seconds: list[float] = field(default_factory=list)
    evaluate_s: float = 0.0
    journal_s: float = 0.0
    state_s: float = 0.0
    spool_s: float = 0.0
    state_save_s: float = 0.0
    journal_entries: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0
    replayed_readings: int = 0


class AlertLoop:
    """The engine's process, its parts injected (real ones by :func:`run_alerts`).

    Args:
        source: Where messages come from; connected only once this process leads.
        validator: Decodes and validates messages into readings.
        engine: The rules.
        store: Incidents, outbox and engine state; also the leader lock.
        storage: The readings' storage (alert events, device health).
        spool: Where alert events wait while storage is down.
        registry: The registry in force (labels); :meth:`use_registry` follows reloads.
        policy: Timing.
        observers: Called after each commit with its transitions.
        clock_ns: Wall clock.
    """

    def __init__(
        self,
        *,
        source: MessageSource,
        validator: Validator,
        engine: Engine,
        store: LeadingStore,
        storage: Storage,
        spool: Spool,
        registry: StationRegistry,
        policy: LoopPolicy | None = None,
        observers: Sequence[CommitObserver] = (),
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._source = source
        self._validator = validator
        self.engine = engine
        self._store = store
        self._storage = storage
        self._spool = spool
        self._registry = registry
        self.policy = policy or LoopPolicy()
        self._observers = list(observers)
        self._clock_ns = clock_ns
        self._events_ready = asyncio.Event()
        self._unwritten: list[AlertRecord] = []
        self._in_flight: list[AlertRecord] = []
        self.counters = LoopCounters()
        self._work: asyncio.Queue[_Work] = asyncio.Queue(self.policy.max_cycles_in_flight)
        self._journal = JournalBuffer()
        self._next_entry = 1
        self._unsnapshotted: list[int] = []  # stored entries the last snapshot does not cover
        self._pending_snapshot: dict[str, bytes | None] = {}  # a snapshot not saved yet
        self._capture: _Capture | None = None  # a snapshot being encoded
        # The first checkpoint snapshots: the engine's start (ENGINE_KEY) must not wait.
        self._snapshot_due = True
        self._readings_since_snapshot = 0
        self._next_snapshot = 0.0
        self.leading = asyncio.Event()
        self.ready = asyncio.Event()

    def use_registry(self, registry: Registry) -> None:
        """Follow a reloaded registry (the next checkpoint snapshots the engine's state)."""
        self._registry = registry
        self._validator.use_registry(registry)
        self.engine.use_registry(registry)
        # Journal entries are replayed with the configuration in force at the restart: the
        # entries recorded under the old one go under a snapshot first.
        self._snapshot_due = True

    def use_rules(self, rules: RulesConfig) -> None:
        """Follow a reloaded rules file (the next checkpoint snapshots the engine's state)."""
        self.engine.use_rules(rules)
        self._snapshot_due = True

    async def run(
        self,
        stop: asyncio.Event,
        companions: Mapping[str, Callable[[], Coroutine[Any, Any, None]]] | None = None,
    ) -> None:
        """Lead, restore, then evaluate until ``stop`` is set; flush and acknowledge at the end.

        Raises:
            LeadershipLostError: The lock was lost: stop at once, emit nothing more.
        """
        if not await self._lead(stop):
            return
        self.leading.set()
        await self._restore()
        if not self._spool.empty:
            self._events_ready.set()
        try:
            await self._run_tasks(stop, companions)
        except* LeadershipLostError as group:
            # One plain error for the caller (the CLI exits with status 3 on it).
            raise group.exceptions[0] from None
        await self._source.disconnect()
        log.info("alert engine stopped after its last commit")

    async def _run_tasks(
        self,
        stop: asyncio.Event,
        companions: Mapping[str, Callable[[], Coroutine[Any, Any, None]]] | None,
    ) -> None:
        async with asyncio.TaskGroup() as group:
            background = [
                group.create_task(self._source.run(), name="siaga.alerts.source"),
                group.create_task(self._commit_loop(), name="siaga.alerts.committer"),
                group.create_task(self._write_alerts(), name="siaga.alerts.influx-writer"),
                group.create_task(self._record_health(), name="siaga.alerts.health"),
                group.create_task(self._watch_leadership(), name="siaga.alerts.leadership"),
            ]
            for name, start in (companions or {}).items():
                background.append(group.create_task(start(), name=f"siaga.alerts.{name}"))
            self.ready.set()
            await self._evaluate(stop)
            for task in background:
                task.cancel()

    async def _restore(self) -> None:
        """The last snapshot, then the journal entries after it replayed (same decisions)."""
        saved = journal.split(await self._store.load_states())
        self.engine.restore(saved.states)
        started = time.perf_counter()
        replayed = journal.replay(self.engine, (body for _, body in saved.entries))
        self._next_entry = saved.next_number
        self._unsnapshotted = sorted(saved.stale + [number for number, _ in saved.entries])
        step = replayed.step
        if step.transitions:
            # Each was committed with its entry: the store skips them (a store that somehow
            # lacks one gets it now).
            await self._commit_step(step, {})
        if step.events:
            # Those InfluxDB may not have yet (spooled before the next acknowledgement).
            self._unwritten.extend(alert_record(e) for e in step.events)
        self.counters.replayed_readings = replayed.readings
        log.info(
            "engine state restored for %d keys and %d journal entries (%d readings) replayed "
            "in %.1f s; connecting to the broker",
            len(saved.states),
            len(saved.entries),
            replayed.readings,
            time.perf_counter() - started,
        )

    async def _lead(self, stop: asyncio.Event) -> bool:
        leading = asyncio.create_task(self._store.lead(self.policy.leader_poll_s))
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({leading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if leading not in done:
            leading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await leading
            return False
        leading.result()
        return True

    # -- the evaluation loop ------------------------------------------------------------------

    async def _evaluate(self, stop: asyncio.Event) -> None:
        policy = self.policy
        monotonic = time.monotonic
        step = Step()
        tokens: list[int] = []  # every message evaluated since the last checkpoint
        messages = 0
        force_checkpoint = False
        cycle_started: float | None = None
        next_tick = monotonic() + policy.tick_interval_s
        next_checkpoint = monotonic() + policy.checkpoint_interval_s
        self._next_snapshot = monotonic() + policy.snapshot_interval_s
        while not stop.is_set():
            now = monotonic()
            wait_s = min(next_tick - now, 0.25)
            if cycle_started is not None:
                wait_s = min(wait_s, cycle_started + policy.commit_interval_s - now)
            if tokens:
                wait_s = min(wait_s, next_checkpoint - now)
            if self._capture is not None:
                await self._advance_snapshot()
                wait_s = 0.0
            chunk = await self._source.next_chunk(max(wait_s, 0.0))
            if chunk:
                if cycle_started is None:
                    cycle_started = monotonic()
                messages += len(chunk)
                step.extend(self._process(chunk, tokens))
            now = monotonic()
            if now >= next_tick:
                next_tick = now + policy.tick_interval_s
                tick_ns = self._clock_ns()
                ticked = self.engine.tick(tick_ns)
                self._journal.record_tick(tick_ns)
                # A tick's clock is the wall clock, which a restart cannot evaluate again:
                # its journal entry is made durable at once, with the transitions it caused,
                # before any reading evaluated after it is committed.
                force_checkpoint = True
                if ticked.events:
                    step.extend(ticked)
                    cycle_started = cycle_started or now
            checkpoint = force_checkpoint or (
                bool(tokens)
                and (now >= next_checkpoint or len(tokens) >= policy.checkpoint_max_messages)
            )
            cycle_due = cycle_started is not None and (
                messages >= policy.commit_max_messages
                or now >= cycle_started + policy.commit_interval_s
            )
            if checkpoint or cycle_due:
                await self._enqueue(step, tokens if checkpoint else [], checkpoint=checkpoint)
                step, messages, cycle_started = Step(), 0, None
                if checkpoint:
                    tokens, force_checkpoint = [], False
                    next_checkpoint = monotonic() + policy.checkpoint_interval_s
        # Graceful stop: take nothing new, commit what was evaluated, acknowledge it, and
        # snapshot (a restart then replays nothing).
        self._source.stop_reading()
        rest = self._source.drain_buffered()
        if rest:
            step.extend(self._process(rest, tokens))
        await self._advance_snapshot(None)
        self._snapshot_due = True
        await self._enqueue(step, tokens, checkpoint=True)
        await self._advance_snapshot(None)
        await self._work.join()

    def _process(self, chunk: Sequence[Delivery], tokens: list[int]) -> Step:
        now_ns = self._clock_ns()
        validate = self._validator.validate
        readings: list[Reading] = []
        for delivery in chunk:
            topic, payload, token = delivery.topic, delivery.payload, delivery.token
            try:
                outcome = validate(topic, payload, now_ns)
            except Exception:
                # A decoder bug costs one message, never the loop (ingest stores the rejection).
                log.exception("validating a message on %s raised", topic[:100])
            else:
                readings.extend(outcome.readings)
            if token is not None:
                tokens.append(token)
        counters = self.counters
        counters.messages += len(chunk)
        counters.readings += len(readings)
        if not readings:
            return Step()
        started = time.perf_counter()
        step = self.engine.process(readings, now_ns)
        evaluated = time.perf_counter()
        counters.evaluate_s += evaluated - started
        counters.duplicates += step.duplicates
        in_scope = self.engine.in_scope
        mine = [r for r in readings if in_scope(r.station_id)]
        if mine:
            self._journal.record_process(mine, now_ns)
        counters.journal_s += time.perf_counter() - evaluated
        return step

    async def _enqueue(self, step: Step, tokens: list[int], *, checkpoint: bool) -> None:
        """Hand a cycle to the committer (in order). A checkpoint carries the journal entry of
        the engine's inputs since the previous one; when a snapshot is due, the engine's state
        is captured here and encoded over the next cycles (:meth:`_advance_snapshot`)."""
        entry: dict[str, bytes] = {}
        if checkpoint:
            readings = self._journal.readings
            body = self._journal.take()
            if body is not None:
                entry[journal.entry_key(self._next_entry)] = body
                self._unsnapshotted.append(self._next_entry)
                self._next_entry += 1
                self._readings_since_snapshot += readings
                self.counters.journal_entries += 1
            if self._capture is None and self._unsnapshotted and self._snapshot_is_due():
                started = time.perf_counter()
                self._capture = _Capture(
                    self.engine.capture_dirty(), self._next_entry - 1, self._unsnapshotted
                )
                self.counters.state_s += time.perf_counter() - started
                self._unsnapshotted = []
                self._snapshot_due = False
                self._readings_since_snapshot = 0
                self._next_snapshot = time.monotonic() + self.policy.snapshot_interval_s
        if step.events or step.transitions or entry or tokens:
            await self._work.put(_Work(step, entry, {}, tokens))

    async def _advance_snapshot(self, keys: int | None = SNAPSHOT_KEYS_PER_CYCLE) -> None:
        """Encode the next ``keys`` keys of the snapshot under way (None: all); hand it to the
        committer once whole (after the entries it covers, which are already queued)."""
        capture = self._capture
        if capture is None:
            return
        started = time.perf_counter()
        capture.rows.update(capture.state.encode(keys))
        self.counters.state_s += time.perf_counter() - started
        if not capture.state.done:
            return
        self._capture = None
        self.counters.snapshots += 1
        rows = journal.snapshot(capture.rows, capture.covered, capture.entries)
        await self._work.put(_Work(Step(), {}, rows, []))

    def _snapshot_is_due(self) -> bool:
        return (
            self._snapshot_due
            or self._readings_since_snapshot >= self.policy.snapshot_max_readings
            or time.monotonic() >= self._next_snapshot
        )

    async def _commit_loop(self) -> None:
        """Commit cycles in order while the next ones are evaluated; acknowledge after each."""
        queue = self._work
        while True:
            work = await queue.get()
            taken = 1
            # Group commit: cycles that queued up meanwhile go in the same transaction.
            while not queue.empty():
                work = work.merge(queue.get_nowait())
                taken += 1
            try:
                await self._commit(work)
            finally:
                for _ in range(taken):
                    queue.task_done()

    async def _commit(self, work: _Work) -> None:
        step = work.step
        if step.events:
            self._unwritten.extend(alert_record(e) for e in step.events)
            self._events_ready.set()
        apart = bool(work.snapshot) and self._store.states_apart
        # The journal entry always goes with the transitions its inputs caused.
        rows: dict[str, bytes | None] = dict(work.journal)
        if not apart:
            rows.update(work.snapshot)  # (deletes the entry it covers: one transaction)
        if step.transitions or rows:
            await self._commit_step(step, rows)
        self.counters.events += len(step.events)
        if work.tokens:
            # The events of everything acknowledged now must survive a crash too: those the
            # writer has not yet stored in InfluxDB go to the spool first.
            await self._spool_unwritten()
            self.counters.acked += self._source.ack(work.tokens)
        if apart:
            # After the entries it replaces: until it is durable, they are.
            await self._save_snapshot(work.snapshot)

    async def _commit_step(self, step: Step, rows: Mapping[str, bytes | None]) -> None:
        labels = {t.subject: subject_labels(self._registry, t.subject) for t in step.transitions}
        report = await self._commit_with_retry(step.transitions, rows, labels)
        committed_ns = self._clock_ns()
        counters = self.counters
        counters.transitions += len(report.transition_ids)
        counters.repeated_transitions += report.duplicates
        if report.transition_ids and self._observers:
            skipped = set(report.skipped)
            stored = [t for i, t in enumerate(step.transitions) if i not in skipped]
            for observer in self._observers:
                observer(stored, committed_ns)

    async def _commit_with_retry(
        self,
        transitions: Sequence[Transition],
        states: Mapping[str, bytes | None],
        labels: Mapping[str, Mapping[str, str]],
    ) -> CommitReport:
        delay_s = self.policy.retry_initial_s
        while True:
            started = time.monotonic()
            try:
                report = await self._store.commit(transitions, states, labels)
            except LeadershipLostError:
                raise
            except IncidentStoreError as exc:
                # Never drop the step: the engine's memory has already moved past it.
                self.counters.commit_failures += 1
                log.warning("incident commit failed (%s); retrying in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self.policy.retry_max_s)
                continue
            self.counters.commits += 1
            self.counters.commit_seconds.append(time.monotonic() - started)
            if len(self.counters.commit_seconds) > 10_000:
                del self.counters.commit_seconds[:5000]
            return report

    async def _save_snapshot(self, rows: Mapping[str, bytes | None]) -> None:
        """Save a snapshot apart; one that fails joins the next (the entries stay meanwhile).

        Nothing waits for it: the acknowledgements rest on the journal entries alone.
        """
        if self._pending_snapshot:
            rows = {**self._pending_snapshot, **rows}  # the newer value of a key wins
        started = time.monotonic()
        try:
            await self._store.save_states(rows)
        except LeadershipLostError:
            raise
        except IncidentStoreError as exc:
            self.counters.snapshot_failures += 1
            log.warning("engine snapshot not saved (%s); the next checkpoint tries again", exc)
            self._pending_snapshot = dict(rows)
            self._snapshot_due = True
            return
        self._pending_snapshot = {}
        self.counters.state_save_s += time.monotonic() - started

    async def _spool_unwritten(self) -> None:
        # Those the writer is sending right now are spooled too: if that write fails after the
        # acknowledgement, they must not be lost (twice in InfluxDB is the same point).
        records = self._in_flight + self._unwritten
        if not records:
            return
        started = time.perf_counter()
        self._unwritten, self._in_flight = [], []
        body = encode_records(records)
        delay_s = self.policy.retry_initial_s
        while True:
            try:
                # On the loop's thread: one write and one fsync, and a worker thread would
                # wait for the GIL at each step behind the evaluation loop.
                self._spool.append(body)
            except SpoolError as exc:
                # Nothing is acknowledged meanwhile: the broker keeps the messages.
                log.error("ALERT SPOOL WRITE FAILED, holding acknowledgements: %s", exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self.policy.retry_max_s)
                continue
            break
        self.counters.spool_s += time.perf_counter() - started
        self._events_ready.set()

    # -- companions ---------------------------------------------------------------------------

    async def _write_alerts(self) -> None:
        """Store alert events in InfluxDB: the spool's first (oldest), then the fresh ones.

        Fresh events that cannot be written go to the spool; events still unwritten at a
        checkpoint are spooled before the acknowledgement (:meth:`_spool_unwritten`).
        """
        delay_s = self.policy.retry_initial_s
        while True:
            entry = await asyncio.to_thread(self._spool.peek)
            if entry is not None:
                records = decode_records(entry.body)
            elif self._unwritten:
                records, self._unwritten = self._unwritten, []
                self._in_flight = records
            else:
                self._events_ready.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._events_ready.wait()
                continue
            try:
                await self._storage.write_alerts(records)
            except StorageError as exc:
                self.counters.alert_write_failures += 1
                if self.counters.alert_write_failures == 1 or delay_s >= self.policy.retry_max_s:
                    log.warning("alert events wait in the spool: InfluxDB: %s", exc)
                if entry is None and self._in_flight is records:
                    await self._spool_unwritten()  # (unless a checkpoint spooled them already)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, self.policy.retry_max_s)
                continue
            delay_s = self.policy.retry_initial_s
            if entry is not None:
                await asyncio.to_thread(self._spool.pop, entry)
            elif self._in_flight is records:
                self._in_flight = []
            self.counters.alerts_written += len(records)

    async def _record_health(self) -> None:
        """Store device health from the engine's tracker (all of a station's readings)."""
        tracker = self.engine.health
        rounds = 0
        while True:
            await asyncio.sleep(self.policy.health_interval_s)
            rounds += 1
            changed = tracker.take_changed()
            station_ids = tracker.station_ids if rounds % _FULL_HEALTH_EVERY == 0 else changed
            for start in range(0, len(station_ids), _HEALTH_CHUNK):
                now_ns = self._clock_ns()
                snapshots = tracker.snapshot(now_ns, station_ids[start : start + _HEALTH_CHUNK])
                try:
                    await self._storage.write_health(snapshots, now_ns)
                except StorageError as exc:
                    # Derived state: the next round carries the same information.
                    log.warning("device health not stored this time: %s", exc)
                    break
                self.counters.health_written += len(snapshots)
                await asyncio.sleep(0)

    async def _watch_leadership(self) -> None:
        while True:
            await asyncio.sleep(self.policy.leader_check_s)
            await self._store.check_leadership()


def engine_scope(settings: Settings) -> Scope:
    """The stations this engine evaluates (``alerts.stations`` / ``alerts.regencies``)."""
    alerts = settings.alerts
    return Scope(
        stations=None if alerts.stations is None else frozenset(alerts.stations),
        regencies=None if alerts.regencies is None else frozenset(alerts.regencies),
    )


def loop_policy(settings: Settings) -> LoopPolicy:
    """The loop's timing, from the settings."""
    alerts = settings.alerts
    return LoopPolicy(
        commit_interval_s=alerts.commit_interval_s,
        commit_max_messages=alerts.commit_max_messages,
        checkpoint_interval_s=alerts.checkpoint_interval_s,
        checkpoint_max_messages=alerts.checkpoint_max_messages,
        snapshot_interval_s=alerts.snapshot_interval_s,
        snapshot_max_readings=alerts.snapshot_max_readings,
        tick_interval_s=alerts.tick_interval_s,
        health_interval_s=settings.health.interval_s,
        leader_poll_s=alerts.leader_poll_s,
        leader_check_s=alerts.leader_check_s,
    )


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for the engine's process.

    The engine allocates a few small objects per reading and keeps a large, long-lived heap
    (the registry, every station's rule state, device health); none of it forms cycles that
    need the collector. With CPython's default thresholds a young collection ran every 700
    allocations and the full ones walked the whole heap: 15 to 20 % of the engine's CPU with
    nothing ever collected. The heap built at start-up is frozen (never scanned again) and
    collections run 30 times less often; reference counting still frees everything else at once.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_alerts(
    settings: Settings,
    stop: asyncio.Event | None = None,
    observers: Sequence[CommitObserver] = (),
    on_loop: Callable[[AlertLoop], None] | None = None,
    ack_link: AckLink | None = None,
) -> None:
    """Run the alert engine until ``stop`` is set or the process gets SIGTERM/SIGINT.

    The notifications (``alerts.notify``) run alongside as companions while this engine
    leads: policy reload, dispatcher and sender; ``ack_link`` builds acknowledgement links.

    Raises:
        ConfigError: The station, rules or spool configuration is unusable.
        LeadershipLostError: Another engine took over (the process should exit and restart).
    """

    def load() -> Registry:
        return load_registry(settings.stations.file, settings.stations.devices_file)

    try:
        registry = load()
        rules: RulesConfig = load_rules(settings.alerts.rules_file)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    # The committer's thread releases the GIL at every SQLite step; with the default 5 ms
    # switch interval it waits that long for the CPU-bound evaluation loop each time (a GIL
    # convoy): at 6,000 messages/s commits took 738 ms at p50, with 0.5 ms 15 ms.
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
    validator = Validator(
        registry,
        TopicScheme(settings.mqtt.topic_prefix),
        Limits(
            max_payload_bytes=settings.validation.max_payload_bytes,
            max_readings_per_message=settings.validation.max_readings_per_message,
            max_future_s=settings.validation.max_future_s,
            max_age_s=settings.max_age_s,
        ),
    )
    try:
        forecaster = live_forecaster(settings.forecast)
    except ModelStoreError as exc:
        raise ConfigError(str(exc)) from None
    engine = Engine(
        registry,
        rules,
        scope=engine_scope(settings),
        late_lag_s=settings.alerts.late_lag_s,
        health_window_s=settings.alerts.health_window_s,
        forecaster=forecaster,
        forecast_rule=warning_rule(settings.forecast),
    )
    # Its own persistent session, outside the ingest workers' shared group: it sees every
    # message whatever the number of workers.
    own = settings.model_copy(
        update={
            "mqtt": settings.mqtt.model_copy(
                update={"client_id": settings.engine_client_id, "shared_group": None}
            )
        }
    )
    subscriber = MqttSubscriber(connect_options(own))
    try:
        spool = Spool(settings.engine_spool_dir, settings.spool.max_bytes)
    except SpoolError as exc:
        raise ConfigError(str(exc)) from None
    current = [registry]

    def station_tags(station_id: str) -> Mapping[str, str]:
        return registry_tags(current[0])(station_id)

    store = SqlIncidentStore(
        settings.database.url,
        lock_name=settings.engine_client_id,
        inline_commits=settings.database.url.startswith("sqlite"),
    )
    # The backend the ingest workers use (storage.backend): alert events and device health go
    # beside the readings, where the web UI reads them.
    backend = await select_backend(settings)
    try:
        async with (
            open_storage(settings, backend, station_tags) as storage,
            store,
            # The incident store's migrations (run above) create the notification tables too.
            SqlNotifyStore(settings.database.url, migrate=False) as notify_store,
            httpx.AsyncClient() as http,
        ):
            with contextlib.suppress(StorageError):
                await storage.prepare()
            notifications = None
            try:
                if settings.notify.in_engine:
                    notifications = notification_companions(
                        settings,
                        incidents=store,
                        store=notify_store,
                        client=http,
                        registry=lambda: current[0],
                        is_leader=lambda: store.leading,
                        ack_link=ack_link,
                        actions=store,
                    )
            except PolicyError as exc:
                raise ConfigError(str(exc)) from None
            alert_loop = AlertLoop(
                source=subscriber,
                validator=validator,
                engine=engine,
                store=store,
                storage=storage,
                spool=spool,
                registry=registry,
                policy=loop_policy(settings),
                observers=[*observers, *([notifications.on_commit] if notifications else [])],
            )
            if on_loop is not None:
                on_loop(alert_loop)

            def apply(new: Registry) -> None:
                current[0] = new
                if isinstance(storage, InfluxStorage):
                    storage.encoder.forget_stations()
                alert_loop.use_registry(new)

            watcher = RegistryWatcher(
                [settings.stations.file, settings.stations.devices_file],
                load,
                apply,
                settings.stations.reload_interval_s,
            )
            rules_watcher = RulesWatcher(
                settings.alerts.rules_file,
                rules,
                alert_loop.use_rules,
                settings.alerts.reload_interval_s,
            )
            companions = {"registry-watch": watcher.run, "rules-watch": rules_watcher.run}
            if notifications is not None:
                companions |= notifications.tasks
            tune_gc()
            await alert_loop.run(stop, companions)
    finally:
        spool.close()

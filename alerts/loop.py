"""The engine's loop (:class:`AlertLoop`): messages in, incidents durable, then acknowledged.

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
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from alerts import journal
from alerts.alert_records import alert_record, decode_records, encode_records
from alerts.counters import LoopCounters
from alerts.engine import Engine, StateCapture, Step
from alerts.incidents.errors import IncidentStoreError, LeadershipLostError
from alerts.incidents.ports import LEADER_POLL_S, IncidentStore
from alerts.incidents.records import CommitReport
from alerts.journal import JournalBuffer
from alerts.model import Transition
from alerts.rules.config import RulesConfig
from alerts.settings import AlertsSettings, Settings
from devices import Reading
from devices.registry import Registry
from devices.stations import StationRegistry
from ingest.errors import SpoolError, StorageError
from ingest.retry import RetryPolicy
from ingest.settings import HealthSettings
from ingest.source import Delivery, MessageSource
from ingest.spool import Spool
from ingest.storage.base import AlertRecord, Storage
from ingest.supervise import supervise
from ingest.validation import Validator

log = logging.getLogger(__name__)

CommitObserver = Callable[[Sequence[Transition], int], None]
"""Called with the transitions each commit stored (not those it found already stored) and the
wall-clock time the commit returned."""

_FULL_HEALTH_EVERY = 10
SNAPSHOT_KEYS_PER_CYCLE = 500
"""Keys of a snapshot encoded per turn of the evaluation loop (~3.5 ms)."""
_HEALTH_CHUNK = 500
"""Stations per device-health write: ~7 ms of the loop each (snapshots and line protocol), so
evaluation goes on between them."""


class Leader(Protocol):
    """The leadership side of a store (the SQL store and the in-memory one have it)."""

    async def lead(self, poll_s: float = LEADER_POLL_S) -> None:
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


_ALERTS = AlertsSettings.model_fields  # the settings tree is the one source of every default
_HEALTH = HealthSettings.model_fields
_OWN = (
    "commit_interval_s",
    "commit_max_messages",
    "checkpoint_interval_s",
    "checkpoint_max_messages",
    "snapshot_interval_s",
    "snapshot_max_readings",
    "max_cycles_in_flight",
    "tick_interval_s",
    "leader_poll_s",
    "leader_check_s",
    "retry_initial_s",
    "retry_max_s",
)
"""The policy's fields that are ``alerts.*`` settings of the same name."""


def _alerts(name: str) -> Any:
    return _ALERTS[name].default


@dataclass(frozen=True, slots=True)
class LoopPolicy:
    """When to commit, tick and record health, and how persistently to retry.

    Defaults are those of :class:`~alerts.settings.AlertsSettings` (``alerts.*``) and, for
    device health and the companions' restarts, :class:`~ingest.settings.HealthSettings`.
    """

    commit_interval_s: float = _alerts("commit_interval_s")
    commit_max_messages: int = _alerts("commit_max_messages")
    checkpoint_interval_s: float = _alerts("checkpoint_interval_s")
    checkpoint_max_messages: int = _alerts("checkpoint_max_messages")
    snapshot_interval_s: float = _alerts("snapshot_interval_s")
    snapshot_max_readings: int = _alerts("snapshot_max_readings")
    max_cycles_in_flight: int = _alerts("max_cycles_in_flight")
    tick_interval_s: float = _alerts("tick_interval_s")
    health_interval_s: float = _HEALTH["interval_s"].default
    leader_poll_s: float = _alerts("leader_poll_s")
    leader_check_s: float = _alerts("leader_check_s")
    retry_initial_s: float = _alerts("retry_initial_s")
    retry_max_s: float = _alerts("retry_max_s")
    restart_initial_s: float = _HEALTH["restart_initial_s"].default
    restart_max_s: float = _HEALTH["restart_max_s"].default

    @classmethod
    def from_settings(cls, settings: Settings) -> LoopPolicy:
        """The policy the settings describe (``alerts.*``, ``health.*``)."""
        health = settings.health
        return cls(
            **{name: getattr(settings.alerts, name) for name in _OWN},
            health_interval_s=health.interval_s,
            restart_initial_s=health.restart_initial_s,
            restart_max_s=health.restart_max_s,
        )

    @property
    def retry(self) -> RetryPolicy:
        """How a failed commit, spool write or alert write is retried: until it succeeds,
        doubling without jitter (one process retrying its own database and storage)."""
        return RetryPolicy(
            initial_s=self.retry_initial_s, max_s=self.retry_max_s, jitter="none", deadline_s=None
        )

    @property
    def restart(self) -> RetryPolicy:
        """How a companion that raised is restarted (as the ingest worker's secondary loops)."""
        return RetryPolicy(
            initial_s=self.restart_initial_s, max_s=self.restart_max_s, deadline_s=None
        )


class AlertLoop:
    """The engine's loop, its parts injected (real ones by :func:`alerts.runtime.run_alerts`).

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
        self._retry = self.policy.retry
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

        ``companions`` (named coroutine factories: the watchers, the notifier) run beside the
        loop while it leads, each supervised: one that raises is logged, counted
        (``counters.companion_restarts``) and started again after ``policy.restart``'s delay.

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
            restart = self.policy.restart
            for name, start in (companions or {}).items():
                # A companion's bug costs that companion a restart, never the engine.
                supervised = supervise(
                    name, start, restart=restart, on_failure=self._count_companion_failure
                )
                background.append(group.create_task(supervised, name=f"siaga.alerts.{name}"))
            self.ready.set()
            await self._evaluate(stop)
            for task in background:
                task.cancel()

    def _count_companion_failure(self, name: str) -> None:
        self.counters.companion_restarts[name] += 1

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
        delays = self._retry.delays()
        while True:
            started = time.monotonic()
            try:
                report = await self._store.commit(transitions, states, labels)
            except LeadershipLostError:
                raise
            except IncidentStoreError as exc:
                # Never drop the step: the engine's memory has already moved past it.
                self.counters.commit_failures += 1
                delay_s = next(delays)
                log.warning("incident commit failed (%s); retrying in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)
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
        delays = self._retry.delays()
        while True:
            try:
                # On the loop's thread: one write and one fsync, and a worker thread would
                # wait for the GIL at each step behind the evaluation loop.
                self._spool.append(body)
            except SpoolError as exc:
                # Nothing is acknowledged meanwhile: the broker keeps the messages.
                log.error("ALERT SPOOL WRITE FAILED, holding acknowledgements: %s", exc)
                await asyncio.sleep(next(delays))
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
        delays = self._retry.delays()
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
                delay_s = next(delays)
                if self.counters.alert_write_failures == 1 or delay_s >= self._retry.max_s:
                    log.warning("alert events wait in the spool: InfluxDB: %s", exc)
                if entry is None and self._in_flight is records:
                    await self._spool_unwritten()  # (unless a checkpoint spooled them already)
                await asyncio.sleep(delay_s)
                continue
            delays = self._retry.delays()
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

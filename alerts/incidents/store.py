"""The incident store: the protocol the engine, the notifier and the API code against, and its
SQLAlchemy implementation for SQLite (the default, one file, WAL) and PostgreSQL (psycopg 3).

The engine's :meth:`IncidentStore.commit` writes transitions, their outbox rows and engine state
rows (a checkpoint's journal entry, a snapshot) in ONE transaction: either the incident state a
reading caused is durable, with the notifications it owes and the inputs that caused it, or none
of it is. On SQLite the engine saves a snapshot with :meth:`IncidentStore.save_states` instead,
in a worker thread after the checkpoint's transitions and journal entry were committed: a crash
between them restarts from the older snapshot and replays the entries (``alerts.journal``), and
the replayed transitions are skipped.

Leadership (hot standby): :meth:`SqlIncidentStore.lead` waits for the leader lock, a
PostgreSQL session advisory lock (SQLite: an exclusive ``flock`` on ``<file>.lock``). On
PostgreSQL every commit then runs on the very connection that holds the lock, so a leader whose
connection died (and with it the lock) cannot commit anything more: fencing without clocks.

SQLAlchemy's synchronous API runs in worker threads (``asyncio.to_thread``): one code path for
both databases, no extra async drivers.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import fcntl
import functools
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping, make_url
from sqlalchemy.exc import SQLAlchemyError

from alerts.incidents import tables
from alerts.incidents.errors import (
    IncidentNotFoundError,
    IncidentStoreError,
    LeadershipLostError,
)
from alerts.incidents.records import (
    NEW,
    ROUTED,
    CommitReport,
    OutboxEntry,
    StateRows,
    apply_transition,
    event_from_json,
    event_to_json,
    open_incident,
    open_key,
    transition_key,
)
from alerts.model import Acknowledgement, EventKind, Incident, IncidentState, Transition
from devices.levels import Level

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_SQLITE_UPSERT_STATE = (
    "INSERT INTO engine_state (key, state, updated_ns) VALUES (?, ?, ?) "
    "ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_ns = excluded.updated_ns"
)
_STATE_ROWS_PER_STATEMENT = 5000 if sqlite3.sqlite_version_info >= (3, 32) else 300
"""State rows per multi-row upsert on SQLite (3 parameters a row: SQLite allows 32,766 since
3.32, 999 before)."""
_COPY_MIN_ROWS = 200
"""State rows from which PostgreSQL gets them by COPY (a snapshot; not a journal entry)."""
_IN_CHUNK = 500
"""Keys per ``IN (...)`` query (SQLite allows 32,766 parameters, PostgreSQL 65,535)."""

Labels = Mapping[str, Mapping[str, str]]
"""Routing labels per subject (``regency``, ``river``, ``station``), from the registry."""


class IncidentQueries(Protocol):
    """People's side of the store (contract 3): list, read, acknowledge, assign. All async.

    The API reads and changes incidents through this alone (``dashboards.api.ports``).
    """

    async def list(
        self,
        active_only: bool = True,
        *,
        regency: str | None = None,
        station: str | None = None,
        kind: EventKind | None = None,
        severity: Level | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int = 100,
        offset: int = 0,
        regencies: Collection[str] | None = None,
    ) -> builtins.list[Incident]:
        """Incidents, most recently updated first, without their transitions.

        ``since_ns`` keeps incidents updated at or after it; ``until_ns`` those opened before it;
        ``regencies`` (a caller's scope) those of these regencies (None: any).
        """
        ...

    async def get(self, incident_id: int) -> Incident | None:
        """One incident with all its transitions (oldest first), or None."""
        ...

    async def acknowledge(
        self, incident_id: int, by: str, comment: str, at_ns: int, *, only_if_new: bool = False
    ) -> Incident:
        """Record who acknowledged the incident. Raises :class:`IncidentNotFoundError`.

        With ``only_if_new`` an earlier acknowledgement is kept (and returned): chat buttons
        and SMS replies acknowledge exactly once however often they are replayed.
        """
        ...

    async def assign(self, incident_id: int, assignee: str | None, at_ns: int) -> Incident:
        """Assign the incident (None unassigns). Raises :class:`IncidentNotFoundError`."""
        ...


class IncidentStore(IncidentQueries, Protocol):
    """Incidents, their history, the outbox and the engine's state. All methods are async."""

    async def commit(
        self,
        transitions: Sequence[Transition],
        states: StateRows,
        labels: Labels | None = None,
        now_ns: int | None = None,
    ) -> CommitReport:
        """Atomically store transitions, one outbox row each, and engine state rows (a key
        with None is deleted).

        A transition already stored (same event, same new state) is skipped, so replaying a
        step after a crash between commit and acknowledgement repeats nothing.

        Raises:
            LeadershipLostError: This store was leading and lost the lock (nothing stored).
            IncidentStoreError: The database failed (nothing stored).
        """
        ...

    async def save_states(self, states: StateRows) -> None:
        """Store engine state rows on their own, in a transaction of their own (None deletes).

        For a snapshot of the engine's state after the checkpoint whose transitions and
        journal entry :meth:`commit` already stored (the loop uses it when ``states_apart`` is
        true): it only replaces journal entries that are durable already. A crash between the
        two restarts from the older snapshot and replays the entries.

        Raises:
            LeadershipLostError: This store was leading and lost the lock (nothing stored).
            IncidentStoreError: The database failed (nothing stored).
        """
        ...

    async def load_states(self) -> dict[str, bytes]:
        """The engine state saved by :meth:`commit` or :meth:`save_states`, for
        ``Engine.restore``."""
        ...

    async def outbox_new(self, limit: int = 100) -> builtins.list[OutboxEntry]:
        """The oldest outbox rows still ``new``, in commit order."""
        ...

    async def mark_routed(self, outbox_ids: Sequence[int], at_ns: int) -> int:
        """Mark outbox rows ``routed``; returns how many changed."""
        ...

    async def aclose(self) -> None:
        """Release connections and the leader lock."""
        ...


# -- SQLAlchemy -------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL, or None (another database, or in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_sql_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and a generous busy timeout.

    A bare ``postgresql://`` URL is taken to mean psycopg 3 (the only driver installed).
    """
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: object) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(parsed, pool_pre_ping=True)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a lock name."""
    value = zlib.crc32(name.encode()) | (0x5141 << 32)
    return value if value < 1 << 63 else value - (1 << 64)


def _incident_from_row(row: Mapping[Any, Any]) -> Incident:
    ack = None
    if row["acknowledged_by"] is not None:
        ack = Acknowledgement(
            row["acknowledged_by"], int(row["acknowledged_ns"]), row["ack_comment"] or ""
        )
    last = row["last_event"]
    return Incident(
        id=int(row["id"]),
        subject=row["subject"],
        rule=row["rule"],
        kind=EventKind(row["kind"]),
        state=IncidentState(row["state"]),
        severity=Level[row["severity"]],
        opened_ns=int(row["opened_ns"]),
        updated_ns=int(row["updated_ns"]),
        resolved_ns=None if row["resolved_ns"] is None else int(row["resolved_ns"]),
        acknowledged=ack,
        assignee=row["assignee"],
        labels=dict(row["labels"] or {}),
        last_event=None if last is None else event_from_json(last),
    )


def _transition_from_row(row: RowMapping) -> Transition:
    event = event_from_json(row["event"])
    previous = row["previous_state"]
    return Transition(
        subject=event.subject,
        rule=event.rule,
        previous_state=None if previous is None else IncidentState(previous),
        state=IncidentState(row["state"]),
        event=event,
    )


_ENGINE_COLUMNS = (
    "state",
    "severity",
    "updated_ns",
    "resolved_ns",
    "labels",
    "last_event",
    "open_key",
)
"""The incident columns the engine changes (acknowledgement and assignee are people's)."""
_INCIDENT_UPDATE = tables.incidents.update().where(
    tables.incidents.c.id == bindparam("incident_id")
)


class _Plan:
    """One commit's incident changes, worked out in memory, then written in four statements.

    Statement per transition cost about 0.7 ms in SQLAlchemy (building, caching and executing
    three statements); with ``insertmanyvalues`` a commit of a few hundred transitions is one
    ``UPDATE`` executemany, and three multi-row ``INSERT``s (``RETURNING`` the new ids in the
    parameters' order).

    Args:
        open_rows: The open incidents the transitions move (``open_key`` → row).
    """

    def __init__(self, open_rows: dict[str, dict[str, Any]]) -> None:
        self._open_rows = open_rows
        self._slots: list[dict[str, Any]] = []  # incidents moved: a row, "id" None if new
        self._open_slot: dict[str, int] = {}
        # (slot, transition, key, the event as JSON): one per transition to store
        self.history: list[tuple[int, Transition, str, dict[str, Any]]] = []

    def apply(self, transition: Transition, key: str, labels: Labels) -> None:
        """Move the transition's incident (opened by it when none is open)."""
        slot_key = open_key(transition.subject, transition.rule)
        slot = self._open_slot.get(slot_key)
        if slot is None and slot_key in self._open_rows:
            slot = len(self._slots)
            self._slots.append(self._open_rows.pop(slot_key))
        event = transition.event
        if slot is None:
            after = open_incident(0, transition, dict(labels.get(transition.subject, {})))
            slot = len(self._slots)
            self._slots.append(
                {
                    "id": None,
                    "subject": after.subject,
                    "rule": after.rule,
                    "kind": after.kind.value,
                    "regency": after.labels.get("regency", ""),
                    "river": after.labels.get("river", ""),
                    "opened_ns": after.opened_ns,
                    "acknowledged_by": None,
                    "acknowledged_ns": None,
                    "ack_comment": None,
                    "assignee": None,
                }
            )
        else:
            row = self._slots[slot]
            after = apply_transition(_incident_from_row({**row, "id": row["id"] or 0}), transition)
        resolved = after.state == IncidentState.RESOLVED
        event_json = event_to_json(event)
        self._slots[slot].update(
            {
                "state": after.state.value,
                "severity": after.severity.name,
                "updated_ns": after.updated_ns,
                "resolved_ns": after.resolved_ns,
                "labels": after.labels,
                "last_event": event_json,
                "open_key": None if resolved else slot_key,
            }
        )
        if resolved:
            self._open_slot.pop(slot_key, None)
        else:
            self._open_slot[slot_key] = slot
        self.history.append((slot, transition, key, event_json))

    def write(self, connection: Connection, now_ns: int) -> list[int]:
        """Write the changes; the new transitions' ids, in order."""
        incidents, history, outbox = (
            tables.incidents,
            tables.incident_transitions,
            tables.outbox,
        )
        # Every incident in a slot was moved by at least one transition.
        updates = [
            {"incident_id": row["id"], **{name: row[name] for name in _ENGINE_COLUMNS}}
            for row in self._slots
            if row["id"] is not None
        ]
        if updates:
            # Before the inserts: an incident resolved here frees its open_key for a new one.
            connection.execute(_INCIDENT_UPDATE, updates)
        created = [row for row in self._slots if row["id"] is None]
        if created:
            columns = [c.name for c in incidents.columns if c.name != "id"]
            ids = connection.execute(
                incidents.insert().returning(incidents.c.id, sort_by_parameter_order=True),
                [{name: row[name] for name in columns} for row in created],
            ).scalars()
            for row, incident_id in zip(created, ids, strict=True):
                row["id"] = int(incident_id)
        rows = []
        for slot, transition, key, event_json in self.history:
            event = transition.event
            no_data = event.kind == EventKind.NO_DATA
            previous = transition.previous_state
            rows.append(
                {
                    "incident_id": self._slots[slot]["id"],
                    "transition_key": key,
                    "previous_state": None if previous is None else previous.value,
                    "state": transition.state.value,
                    "event_id": event.id,
                    "event": event_json,
                    "at_ns": event.at_ns,
                    "reading_station": None if no_data else event.subject,
                    "reading_ts_ns": None if no_data else event.at_ns,
                    "reading_value": event.value,
                    "committed_ns": now_ns,
                }
            )
        transition_ids = [
            int(i)
            for i in connection.execute(
                history.insert().returning(history.c.id, sort_by_parameter_order=True), rows
            ).scalars()
        ]
        connection.execute(
            outbox.insert(),
            [
                {
                    "transition_id": transition_id,
                    "incident_id": row["incident_id"],
                    "created_ns": now_ns,
                    "state": NEW,
                }
                for transition_id, row in zip(transition_ids, rows, strict=True)
            ],
        )
        return transition_ids


class SqlIncidentStore:
    """The incident store on SQLite or PostgreSQL.

    Args:
        url: SQLAlchemy URL (``sqlite:///var/siaga.db``, ``postgresql+psycopg://...``).
        lock_name: The leader lock's name; engines sharing a database and a scope share it.
        migrate: Run the Alembic migrations at start (``upgrade heads``).
        inline_commits: Run :meth:`commit` on the event loop's thread instead of a worker
            thread. For the engine on SQLite: a worker thread that releases the GIL at every
            SQLite step waits for the CPU-bound evaluation loop each time (a GIL convoy),
            while the statements themselves take milliseconds. On SQLite it also sets
            ``states_apart``: the engine saves its snapshots with :meth:`save_states` in a
            worker thread, and the WAL is checkpointed in a worker thread after each save.
    """

    def __init__(
        self,
        url: str,
        lock_name: str = "siaga-alerts",
        migrate: bool = True,
        *,
        inline_commits: bool = False,
    ) -> None:
        self.url = url
        self.inline_commits = inline_commits
        self.engine = create_sql_engine(url)
        self.dialect = self.engine.dialect.name
        # On SQLite the engine's commits run on the loop's thread: the checkpoint's thousands
        # of state rows go apart, to a worker thread (its own pooled connection), in a few
        # multi-row statements (a few GIL hand-overs, not one a row), while the loop evaluates.
        self.states_apart = inline_commits and self.dialect == "sqlite"
        self._wal_checkpoint: asyncio.Task[None] | None = None
        if self.states_apart:
            # Copying the WAL's pages into the database (megabytes after each checkpoint's
            # state) runs in a worker thread after the save, not in whichever commit crossed
            # the threshold: neither the loop's thread nor the committer waits for it.
            event.listen(self.engine, "connect", _no_wal_autocheckpoint)
        self._lock_name = lock_name
        self._migrate = migrate
        self._leader: Connection | None = None
        self._leader_file: int | None = None
        self._leader_guard = threading.Lock()
        self._lost = False

    # -- lifecycle --------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Create or upgrade the schema (Alembic)."""
        if self._migrate:
            from alerts.incidents.migrations import upgrade  # noqa: PLC0415 - alembic is heavy

            try:
                await asyncio.to_thread(upgrade, self.url)
            except SQLAlchemyError as exc:
                raise IncidentStoreError(f"migrating the incident database failed: {exc}") from exc

    async def __aenter__(self) -> SqlIncidentStore:
        await self.prepare()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the leader lock and every connection."""
        if self._wal_checkpoint is not None:
            await self._wal_checkpoint
        await asyncio.to_thread(self._release)
        await asyncio.to_thread(self.engine.dispose)

    def _release(self) -> None:
        with self._leader_guard:
            if self._leader is not None:
                with contextlib.suppress(SQLAlchemyError):
                    self._leader.close()
                self._leader = None
            if self._leader_file is not None:
                os.close(self._leader_file)  # closing the descriptor drops the flock
                self._leader_file = None

    # -- leadership -------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """Whether this store holds the leader lock (and has not lost it)."""
        return (self._leader is not None or self._leader_file is not None) and not self._lost

    async def lead(self, poll_s: float = 1.0) -> None:
        """Wait until this process holds the leader lock. Cancel it to give up waiting."""
        announced = False
        while not await asyncio.to_thread(self._try_lead):
            if not announced:
                log.info("another engine leads (lock %r); standing by", self._lock_name)
                announced = True
            await asyncio.sleep(poll_s)
        log.info("leading: holding lock %r", self._lock_name)

    def _try_lead(self) -> bool:
        with self._leader_guard:
            if self.dialect == "postgresql":
                return self._try_pg_lock()
            return self._try_file_lock()

    def _try_pg_lock(self) -> bool:
        try:
            connection = self.engine.connect()
        except SQLAlchemyError as exc:
            log.warning("cannot reach the incident database to take the lock: %s", exc)
            return False
        try:
            held = connection.execute(
                select(func.pg_try_advisory_lock(advisory_key(self._lock_name)))
            ).scalar_one()
            connection.commit()
        except SQLAlchemyError as exc:
            connection.close()
            log.warning("taking the leader lock failed: %s", exc)
            return False
        if not held:
            connection.close()
            return False
        self._leader = connection
        return True

    def _try_file_lock(self) -> bool:
        path = sqlite_path(self.url)
        if path is None:  # in-memory SQLite: one process by construction
            self._leader_file = os.open(os.devnull, os.O_RDONLY)
            return True
        lock_path = path.with_name(path.name + ".lock")
        descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._leader_file = descriptor
        return True

    async def check_leadership(self) -> None:
        """Raise :class:`LeadershipLostError` when the lock's connection is gone."""
        await asyncio.to_thread(self._check_leadership)

    def _check_leadership(self) -> None:
        with self._leader_guard:
            if self._lost:
                raise LeadershipLostError("the leader lock was lost")
            if self._leader is None:
                return
            try:
                self._leader.execute(select(1)).scalar_one()
                self._leader.commit()
            except SQLAlchemyError as exc:
                self._lost = True
                raise LeadershipLostError(f"the leader lock's connection failed: {exc}") from exc

    @contextlib.contextmanager
    def _writer(self) -> Iterator[Connection]:
        """A connection in a transaction for writes: the leader's own one when leading."""
        with self._leader_guard:
            if self._lost:
                raise LeadershipLostError("the leader lock was lost")
            if self._leader is not None:
                connection = self._leader
                try:
                    with connection.begin():
                        yield connection
                except SQLAlchemyError as exc:
                    if connection.invalidated or connection.closed:
                        self._lost = True
                        raise LeadershipLostError(
                            f"the leader lock's connection failed: {exc}"
                        ) from exc
                    raise
                return
            with self.engine.begin() as connection:
                yield connection

    # -- the engine's commit ----------------------------------------------------------------

    async def commit(
        self,
        transitions: Sequence[Transition],
        states: StateRows,
        labels: Labels | None = None,
        now_ns: int | None = None,
    ) -> CommitReport:
        """See :meth:`IncidentStore.commit`."""
        if not transitions and not states:
            return CommitReport(())
        now = time.time_ns() if now_ns is None else now_ns
        try:
            if self.inline_commits:
                return self._commit(transitions, states, labels or {}, now)
            return await asyncio.to_thread(self._commit, transitions, states, labels or {}, now)
        except LeadershipLostError:
            raise
        except SQLAlchemyError as exc:
            raise IncidentStoreError(f"committing transitions failed: {exc}") from exc

    def _commit(
        self,
        transitions: Sequence[Transition],
        states: StateRows,
        labels: Labels,
        now_ns: int,
    ) -> CommitReport:
        skipped: list[int] = []
        with self._writer() as connection:
            keys = [transition_key(t) for t in transitions]
            # Two queries for the whole commit instead of two per transition: the transitions
            # already stored (a replay after a restart), and the open incidents they move.
            known = self._stored_keys(connection, keys)
            plan = _Plan(
                self._open_incidents(
                    connection,
                    [
                        open_key(t.subject, t.rule)
                        for t, k in zip(transitions, keys, strict=True)
                        if k not in known
                    ],
                )
            )
            for position, (transition, key) in enumerate(zip(transitions, keys, strict=True)):
                if key in known:
                    skipped.append(position)
                    continue
                known.add(key)
                plan.apply(transition, key, labels)
            stored = plan.write(connection, now_ns) if plan.history else []
            if states:
                self._save_states(connection, states, now_ns)
        return CommitReport(tuple(stored), len(skipped), tuple(skipped))

    @staticmethod
    def _stored_keys(connection: Connection, keys: Sequence[str]) -> set[str]:
        column = tables.incident_transitions.c.transition_key
        found: set[str] = set()
        for start in range(0, len(keys), _IN_CHUNK):
            chunk = keys[start : start + _IN_CHUNK]
            found.update(connection.execute(select(column).where(column.in_(chunk))).scalars())
        return found

    @staticmethod
    def _open_incidents(connection: Connection, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        table = tables.incidents
        unique = sorted(set(keys))
        rows: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique), _IN_CHUNK):
            chunk = unique[start : start + _IN_CHUNK]
            for row in connection.execute(
                select(table).where(table.c.open_key.in_(chunk))
            ).mappings():
                rows[row["open_key"]] = dict(row)
        return rows

    def _save_states(self, connection: Connection, states: StateRows, now_ns: int) -> None:
        table = tables.engine_state
        doomed = [key for key, value in states.items() if value is None]
        rows = [(k, v, now_ns) for k, v in states.items() if v is not None]
        for start in range(0, len(doomed), _IN_CHUNK):
            chunk = doomed[start : start + _IN_CHUNK]
            connection.execute(delete(table).where(table.c.key.in_(chunk)))
        if not rows:
            return
        if self.dialect == "sqlite":
            # Straight to sqlite3's executemany: the same statement, without SQLAlchemy's
            # per-row parameter processing (a third of the time for thousands of rows).
            connection.exec_driver_sql(_SQLITE_UPSERT_STATE, rows)
            return
        if self.dialect == "postgresql" and len(rows) >= _COPY_MIN_ROWS:
            _copy_states(connection, rows)
            return
        insert = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        statement = insert.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"state": insert.excluded.state, "updated_ns": insert.excluded.updated_ns},
        )
        dicts = [{"key": k, "state": v, "updated_ns": ns} for k, v, ns in rows]
        for start in range(0, len(dicts), 1000):
            connection.execute(statement, dicts[start : start + 1000])

    async def save_states(self, states: StateRows) -> None:
        """See :meth:`IncidentStore.save_states` (in a worker thread)."""
        if not states:
            return
        now = time.time_ns()
        try:
            await asyncio.to_thread(self._save_states_alone, states, now)
        except LeadershipLostError:
            raise
        except SQLAlchemyError as exc:
            raise IncidentStoreError(f"saving the engine state failed: {exc}") from exc
        if self.states_apart and (self._wal_checkpoint is None or self._wal_checkpoint.done()):
            self._wal_checkpoint = asyncio.create_task(
                asyncio.to_thread(self._checkpoint_wal), name="siaga.incidents.wal-checkpoint"
            )

    def _checkpoint_wal(self) -> None:
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except SQLAlchemyError as exc:
            # The next save tries again; meanwhile the WAL only grows.
            log.warning("checkpointing the incident database's WAL failed: %s", exc)

    def _save_states_alone(self, states: StateRows, now_ns: int) -> None:
        with self._writer() as connection:
            if self.dialect != "sqlite":
                self._save_states(connection, states, now_ns)
                return
            doomed = {key: None for key, value in states.items() if value is None}
            if doomed:
                self._save_states(connection, doomed, now_ns)
            items = [(key, blob) for key, blob in states.items() if blob is not None]
            for start in range(0, len(items), _STATE_ROWS_PER_STATEMENT):
                chunk = items[start : start + _STATE_ROWS_PER_STATEMENT]
                parameters = [p for key, blob in chunk for p in (key, blob, now_ns)]
                connection.exec_driver_sql(_sqlite_upsert_states(len(chunk)), tuple(parameters))

    async def load_states(self) -> dict[str, bytes]:
        """See :meth:`IncidentStore.load_states`."""

        def load() -> dict[str, bytes]:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(tables.engine_state.c.key, tables.engine_state.c.state)
                )
                return {key: bytes(state) for key, state in rows}

        return await self._run(load)

    # -- people's side ----------------------------------------------------------------------

    async def list(
        self,
        active_only: bool = True,
        *,
        regency: str | None = None,
        station: str | None = None,
        kind: EventKind | None = None,
        severity: Level | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int = 100,
        offset: int = 0,
        regencies: Collection[str] | None = None,
    ) -> builtins.list[Incident]:
        """See :meth:`IncidentStore.list`."""
        table = tables.incidents
        query = select(table)
        if active_only:
            query = query.where(table.c.state != IncidentState.RESOLVED.value)
        if regency is not None:
            query = query.where(table.c.regency == regency)
        if regencies is not None:
            query = query.where(table.c.regency.in_(sorted(regencies)))
        if station is not None:
            query = query.where(table.c.subject == station)
        if kind is not None:
            query = query.where(table.c.kind == kind.value)
        if severity is not None:
            query = query.where(table.c.severity == severity.name)
        if since_ns is not None:
            query = query.where(table.c.updated_ns >= since_ns)
        if until_ns is not None:
            query = query.where(table.c.opened_ns < until_ns)
        query = query.order_by(table.c.updated_ns.desc(), table.c.id.desc())
        query = query.limit(limit).offset(offset)

        def run() -> builtins.list[Incident]:
            with self.engine.connect() as connection:
                return [_incident_from_row(r) for r in connection.execute(query).mappings()]

        return await self._run(run)

    async def get(self, incident_id: int) -> Incident | None:
        """See :meth:`IncidentStore.get`."""

        def run() -> Incident | None:
            with self.engine.connect() as connection:
                return self._get(connection, incident_id)

        return await self._run(run)

    @staticmethod
    def _get(connection: Connection, incident_id: int) -> Incident | None:
        row = (
            connection.execute(select(tables.incidents).where(tables.incidents.c.id == incident_id))
            .mappings()
            .first()
        )
        if row is None:
            return None
        history = tables.incident_transitions
        found = connection.execute(
            select(history).where(history.c.incident_id == incident_id).order_by(history.c.id)
        ).mappings()
        incident = _incident_from_row(row)
        return Incident(
            **{
                **{f: getattr(incident, f) for f in Incident.__dataclass_fields__},
                "transitions": tuple(_transition_from_row(r) for r in found),
            }
        )

    async def acknowledge(
        self, incident_id: int, by: str, comment: str, at_ns: int, *, only_if_new: bool = False
    ) -> Incident:
        """See :meth:`IncidentStore.acknowledge`."""
        return await self._change(
            incident_id,
            only_if_unacknowledged=only_if_new,
            acknowledged_by=by,
            acknowledged_ns=at_ns,
            ack_comment=comment,
        )

    async def assign(self, incident_id: int, assignee: str | None, at_ns: int) -> Incident:
        """See :meth:`IncidentStore.assign`."""
        return await self._change(incident_id, assignee=assignee)

    async def _change(
        self, incident_id: int, *, only_if_unacknowledged: bool = False, **values: Any
    ) -> Incident:
        table = tables.incidents

        def run() -> Incident:
            # People's changes do not need the leader lock: they touch other columns.
            with self.engine.begin() as connection:
                statement = update(table).where(table.c.id == incident_id)
                if only_if_unacknowledged:
                    # One conditional UPDATE: of two acknowledgements racing, the first wins.
                    statement = statement.where(table.c.acknowledged_by.is_(None))
                changed = connection.execute(statement.values(**values)).rowcount
                if not changed and (
                    not only_if_unacknowledged or self._get(connection, incident_id) is None
                ):
                    raise IncidentNotFoundError(f"no incident {incident_id}")
                incident = self._get(connection, incident_id)
                assert incident is not None
                return incident

        return await self._run(run)

    # -- the outbox -------------------------------------------------------------------------

    async def outbox_new(self, limit: int = 100) -> builtins.list[OutboxEntry]:
        """See :meth:`IncidentStore.outbox_new`."""
        box, history = tables.outbox, tables.incident_transitions
        query = (
            select(
                box.c.id,
                box.c.transition_id,
                box.c.incident_id,
                box.c.created_ns,
                history.c.previous_state,
                history.c.state,
                history.c.event,
            )
            .join(history, history.c.id == box.c.transition_id)
            .where(box.c.state == NEW)
            .order_by(box.c.id)
            .limit(limit)
        )

        def run() -> builtins.list[OutboxEntry]:
            with self.engine.connect() as connection:
                return [
                    OutboxEntry(
                        id=int(r["id"]),
                        transition_id=int(r["transition_id"]),
                        incident_id=int(r["incident_id"]),
                        transition=_transition_from_row(r),
                        created_ns=int(r["created_ns"]),
                    )
                    for r in connection.execute(query).mappings()
                ]

        return await self._run(run)

    async def mark_routed(self, outbox_ids: Sequence[int], at_ns: int) -> int:
        """See :meth:`IncidentStore.mark_routed`."""
        if not outbox_ids:
            return 0
        box = tables.outbox

        def run() -> int:
            with self.engine.begin() as connection:
                return int(
                    connection.execute(
                        update(box)
                        .where(box.c.id.in_(list(outbox_ids)), box.c.state == NEW)
                        .values(state=ROUTED, routed_ns=at_ns)
                    ).rowcount
                )

        return await self._run(run)

    async def _run(self, function: Callable[[], _T]) -> _T:
        try:
            return await asyncio.to_thread(function)
        except SQLAlchemyError as exc:
            raise IncidentStoreError(f"incident database: {exc}") from exc


def _copy_states(connection: Connection, rows: Sequence[tuple[str, bytes, int]]) -> None:
    """A snapshot's rows on PostgreSQL: COPY into a temporary table, then one upsert from it.

    10,000 rows of ~900 bytes through SQLAlchemy's executemany took ~400 ms, in the
    transitions' transaction (a snapshot there holds back the checkpoint's transitions).
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS engine_state_in "
            "(key text, state bytea, updated_ns bigint) ON COMMIT DELETE ROWS"
        )
        with cursor.copy("COPY engine_state_in (key, state, updated_ns) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            "INSERT INTO engine_state (key, state, updated_ns) "
            "SELECT key, state, updated_ns FROM engine_state_in "
            "ON CONFLICT (key) DO UPDATE SET state = excluded.state, "
            "updated_ns = excluded.updated_ns"
        )


def _no_wal_autocheckpoint(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


@functools.lru_cache(maxsize=4)
def _sqlite_upsert_states(rows: int) -> str:
    """The state upsert for ``rows`` rows in one statement (one SQLite step for all)."""
    values = ",".join(["(?, ?, ?)"] * rows)
    return (
        f"INSERT INTO engine_state (key, state, updated_ns) VALUES {values} "  # noqa: S608 - placeholders only
        "ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_ns = excluded.updated_ns"
    )


def open_store(url: str, lock_name: str = "siaga-alerts") -> SqlIncidentStore:
    """The store for a database URL (not yet prepared: use ``async with``)."""
    return SqlIncidentStore(url, lock_name)

"""The SQL incident store: :class:`alerts.incidents.ports.IncidentStore` on SQLAlchemy, for
SQLite (the default, one file, WAL) and PostgreSQL (psycopg 3).

The engine's :meth:`SqlIncidentStore.commit` writes transitions, their outbox rows and engine
state rows (a checkpoint's journal entry, a snapshot) in ONE transaction: either the incident
state a reading caused is durable, with the notifications it owes and the inputs that caused
it, or none of it is. On SQLite the engine saves a snapshot with
:meth:`SqlIncidentStore.save_states` instead, in a worker thread after the checkpoint's
transitions and journal entry were committed: a crash between them restarts from the older
snapshot and replays the entries (``alerts.journal``), and the replayed transitions are skipped.

Leadership (hot standby): :meth:`SqlIncidentStore.lead` waits for the leader lock
(:class:`alerts.incidents.database.LeaderLock`); on PostgreSQL every commit then runs on the
very connection that holds the lock, so a leader whose connection died (and with it the lock)
cannot commit anything more: fencing without clocks.

SQLAlchemy's synchronous API runs in worker threads (``asyncio.to_thread``): one code path for
both databases, no extra async drivers.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from alerts.incidents import tables
from alerts.incidents.database import (
    LeaderLock,
    create_sql_engine,
    migrate_database,
    no_wal_autocheckpoint,
    wait_to_lead,
)
from alerts.incidents.errors import (
    IncidentNotFoundError,
    IncidentStoreError,
    LeadershipLostError,
)
from alerts.incidents.plan import CommitPlan, incident_from_row, transition_from_row
from alerts.incidents.ports import LEADER_POLL_S, IncidentStore, Labels
from alerts.incidents.records import (
    ACTIVE,
    NEW,
    ROUTED,
    CommitReport,
    IncidentFilter,
    OutboxEntry,
    StateRows,
    open_key,
    transition_key,
)
from alerts.model import Incident, IncidentState, Transition

__all__ = ["IncidentStore", "SqlIncidentStore", "open_store"]  # IncidentStore: for alerts.runtime

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
            no_wal_autocheckpoint(self.engine)
        self._migrate = migrate
        self._lock = LeaderLock(self.engine, url, lock_name)

    # -- lifecycle --------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Create or upgrade the schema (Alembic)."""
        if self._migrate:
            await migrate_database(self.url)

    async def __aenter__(self) -> SqlIncidentStore:
        await self.prepare()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the leader lock and every connection."""
        if self._wal_checkpoint is not None:
            await self._wal_checkpoint
        await asyncio.to_thread(self._lock.release)
        await asyncio.to_thread(self.engine.dispose)

    # -- leadership -------------------------------------------------------------------------

    @property
    def leading(self) -> bool:
        """Whether this store holds the leader lock (and has not lost it)."""
        return self._lock.leading

    async def lead(self, poll_s: float = LEADER_POLL_S) -> None:
        """Wait until this process holds the leader lock. Cancel it to give up waiting."""
        name = self._lock.name
        await wait_to_lead(
            self._lock.try_take,
            standby=f"another engine leads (lock {name!r}); standing by",
            leading=f"leading: holding lock {name!r}",
            poll_s=poll_s,
        )

    async def check_leadership(self) -> None:
        """Raise :class:`LeadershipLostError` when the lock's connection is gone."""
        await asyncio.to_thread(self._lock.check)

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
        with self._lock.writer() as connection:
            keys = [transition_key(t) for t in transitions]
            # Two queries for the whole commit instead of two per transition: the transitions
            # already stored (a replay after a restart), and the open incidents they move.
            known = self._stored_keys(connection, keys)
            plan = CommitPlan(
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
        with self._lock.writer() as connection:
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

    async def list(self, wanted: IncidentFilter = ACTIVE) -> builtins.list[Incident]:
        """See :meth:`IncidentQueries.list`."""
        query = _selection(wanted)

        def run() -> builtins.list[Incident]:
            with self.engine.connect() as connection:
                return [incident_from_row(r) for r in connection.execute(query).mappings()]

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
        incident = incident_from_row(row)
        return Incident(
            **{
                **{f: getattr(incident, f) for f in Incident.__dataclass_fields__},
                "transitions": tuple(transition_from_row(r) for r in found),
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
                        transition=transition_from_row(r),
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


def _selection(wanted: IncidentFilter) -> Select[Any]:
    """The query for the incidents ``wanted`` selects (:meth:`IncidentFilter.matches` in SQL)."""
    table = tables.incidents
    query = select(table)
    if wanted.active_only:
        query = query.where(table.c.state != IncidentState.RESOLVED.value)
    if wanted.regency is not None:
        query = query.where(table.c.regency == wanted.regency)
    if wanted.regencies is not None:
        query = query.where(table.c.regency.in_(sorted(wanted.regencies)))
    if wanted.station is not None:
        query = query.where(table.c.subject == wanted.station)
    if wanted.kind is not None:
        query = query.where(table.c.kind == wanted.kind.value)
    if wanted.severity is not None:
        query = query.where(table.c.severity == wanted.severity.name)
    if wanted.since_ns is not None:
        query = query.where(table.c.updated_ns >= wanted.since_ns)
    if wanted.until_ns is not None:
        query = query.where(table.c.opened_ns < wanted.until_ns)
    query = query.order_by(table.c.updated_ns.desc(), table.c.id.desc())
    return query.limit(wanted.limit).offset(wanted.offset)


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

"""The incident database: engines, migrations and the leader lock.

The SQL store (:mod:`alerts.incidents.store`) and the notification stores open their engines
with :func:`create_sql_engine`. Leadership (hot standby) is one lock per database and scope:
on PostgreSQL a session advisory lock held by a connection of its own (:class:`LeaderLock`,
whose connection then carries every commit: a leader whose connection died, and with it the
lock, cannot commit anything more); on SQLite an exclusive ``flock`` on a file beside the
database (:class:`FileLock`). :func:`wait_to_lead` waits for either.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from alerts.incidents.errors import IncidentStoreError, LeadershipLostError
from alerts.incidents.ports import LEADER_POLL_S

log = logging.getLogger(__name__)


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


def no_wal_autocheckpoint(engine: Engine) -> None:
    """Have SQLite leave the WAL to explicit checkpoints on ``engine``'s connections."""

    def pragma(dbapi_connection: Any, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    event.listen(engine, "connect", pragma)


async def migrate_database(url: str) -> None:
    """Create or upgrade the incident database's schema (Alembic ``upgrade heads``).

    Raises:
        IncidentStoreError: The database failed.
    """
    from alerts.incidents.migrations import upgrade  # noqa: PLC0415 - alembic is heavy

    try:
        await asyncio.to_thread(upgrade, url)
    except SQLAlchemyError as exc:
        raise IncidentStoreError(f"migrating the incident database failed: {exc}") from exc


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a lock name."""
    value = zlib.crc32(name.encode()) | (0x5141 << 32)
    return value if value < 1 << 63 else value - (1 << 64)


async def wait_to_lead(
    try_take: Callable[[], bool], *, standby: str, leading: str, poll_s: float = LEADER_POLL_S
) -> None:
    """Call ``try_take`` (in a worker thread) every ``poll_s`` until it takes the lock.

    ``standby`` is logged once while another holds it, ``leading`` once it is taken. Cancel
    the wait to give up.
    """
    announced = False
    while not await asyncio.to_thread(try_take):
        if not announced:
            log.info("%s", standby)
            announced = True
        await asyncio.sleep(poll_s)
    log.info("%s", leading)


class FileLock:
    """An exclusive ``flock`` on a file: one holder among the processes of a machine.

    Args:
        path: The lock file (created when missing); None: a database in memory, one process
            by construction, so the lock is always granted.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._descriptor is not None

    def try_take(self) -> bool:
        """Take the lock unless another holds it; whether this process holds it now."""
        if self._descriptor is not None:
            return True
        if self.path is None:
            self._descriptor = os.open(os.devnull, os.O_RDONLY)
            return True
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._descriptor = descriptor
        return True

    def release(self) -> None:
        """Let the lock go (closing the descriptor drops the ``flock``)."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


class LeaderLock:
    """A store's leader lock: an advisory lock on PostgreSQL, :class:`FileLock` on SQLite.

    Thread-safe: the store takes, checks and writes through it from worker threads.

    Args:
        engine: The store's engine.
        url: Its URL (SQLite: the lock file is ``<database>.lock``).
        name: The PostgreSQL advisory lock's name.
    """

    def __init__(self, engine: Engine, url: str, name: str) -> None:
        self.name = name
        self._engine = engine
        self._postgresql = engine.dialect.name == "postgresql"
        path = None if self._postgresql else sqlite_path(url)
        self._file = FileLock(None if path is None else path.with_name(path.name + ".lock"))
        self._connection: Connection | None = None
        self._guard = threading.Lock()
        self._lost = False

    @property
    def leading(self) -> bool:
        """Whether this process holds the lock (and has not lost it)."""
        return (self._connection is not None or self._file.held) and not self._lost

    def try_take(self) -> bool:
        """Take the lock unless another holds it; whether it is held now."""
        with self._guard:
            if self._postgresql:
                return self._try_advisory_lock()
            return self._file.try_take()

    def _try_advisory_lock(self) -> bool:
        try:
            connection = self._engine.connect()
        except SQLAlchemyError as exc:
            log.warning("cannot reach the incident database to take the lock: %s", exc)
            return False
        try:
            held = connection.execute(
                select(func.pg_try_advisory_lock(advisory_key(self.name)))
            ).scalar_one()
            connection.commit()
        except SQLAlchemyError as exc:
            connection.close()
            log.warning("taking the leader lock failed: %s", exc)
            return False
        if not held:
            connection.close()
            return False
        self._connection = connection
        return True

    def check(self) -> None:
        """Raise :class:`LeadershipLostError` when the lock's connection is gone."""
        with self._guard:
            if self._lost:
                raise LeadershipLostError("the leader lock was lost")
            if self._connection is None:
                return
            try:
                self._connection.execute(select(1)).scalar_one()
                self._connection.commit()
            except SQLAlchemyError as exc:
                self._lost = True
                raise LeadershipLostError(f"the leader lock's connection failed: {exc}") from exc

    @contextlib.contextmanager
    def writer(self) -> Iterator[Connection]:
        """A connection in a transaction for writes: the lock's own one when it holds one.

        Raises:
            LeadershipLostError: The lock was lost, or its connection failed in the write.
        """
        with self._guard:
            if self._lost:
                raise LeadershipLostError("the leader lock was lost")
            if self._connection is not None:
                connection = self._connection
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
            with self._engine.begin() as connection:
                yield connection

    def release(self) -> None:
        """Let the lock go (and close its connection)."""
        with self._guard:
            if self._connection is not None:
                with contextlib.suppress(SQLAlchemyError):
                    self._connection.close()
                self._connection = None
            self._file.release()

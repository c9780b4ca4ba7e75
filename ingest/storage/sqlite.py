"""An embedded storage backend: one SQLite file (standard library), for machines without InfluxDB.

The same :class:`~ingest.storage.base.Storage` contract as InfluxDB, with InfluxDB's identity
rules: a reading's fields are keyed by (station, metric, time), so a replayed reading overwrites
itself and the fields of a repeated identity merge; a rejection by (reason, station, time); an
alert event by (station, kind, rule, level, time).

Layout: telemetry in long form in a ``WITHOUT ROWID`` table clustered by (station, metric, time),
so a window is one range scan and "latest" one index seek per series; stations and metrics are
small integers. Only the latest device-health snapshot per station is kept (the contract asks for
no more; InfluxDB keeps the history for Grafana). :meth:`SqliteStorage.prune` is the retention
policy's twin; the worker calls it hourly.

SQLite is synchronous, so every call runs on one thread of its own: the event loop never waits on
the disk, and the one connection is never shared between threads. WAL journal: readers (``siaga
serve``, a second worker) do not block the writer. ``synchronous=FULL`` by default: a batch the
worker acknowledges to the broker survives a power cut, not only a crash.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal, TypeVar

from devices import Reason, Rejection
from devices.health import StationHealth
from ingest.batch import Batch, StoredRejection
from ingest.errors import PermanentStorageError, RetryableStorageError
from ingest.settings import StorageSettings
from ingest.storage.base import (
    AlertRecord,
    LatestReading,
    MetricSpan,
    WindowStat,
    WriteReport,
)

T = TypeVar("T")
Synchronous = Literal["full", "normal"]
_STORAGE = StorageSettings.model_fields  # the settings tree: one source of defaults

SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS metrics (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS series (
    station_id INTEGER NOT NULL, metric_id INTEGER NOT NULL,
    PRIMARY KEY (station_id, metric_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS telemetry (
    station_id INTEGER NOT NULL, metric_id INTEGER NOT NULL, ts_ns INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (station_id, metric_id, ts_ns)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    reason TEXT NOT NULL, station TEXT NOT NULL, received_ns INTEGER NOT NULL,
    topic TEXT NOT NULL, payload TEXT NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY (reason, station, received_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rejected_by_time ON rejected (received_ns);
CREATE TABLE IF NOT EXISTS device_health (
    station TEXT PRIMARY KEY, ts_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL, readings_24h INTEGER NOT NULL, expected_24h INTEGER NOT NULL,
    completeness_pct REAL NOT NULL, missing_by_seq INTEGER NOT NULL, clock_skew_s REAL,
    battery_v REAL, battery_pct REAL, rssi_dbm REAL, snr_db REAL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
    station TEXT NOT NULL, kind TEXT NOT NULL, rule TEXT NOT NULL, level TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, firing INTEGER NOT NULL, late INTEGER NOT NULL, text TEXT NOT NULL,
    event_id TEXT NOT NULL,
    PRIMARY KEY (station, kind, rule, level, ts_ns)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_by_time ON alerts (ts_ns);
"""

SEQ = "seq"
_NO_STATION = ""  # rejections without a station (NULL cannot be part of the identity)
_HEALTH_COLUMNS = (
    "last_seen_ns", "readings_24h", "expected_24h", "completeness_pct", "missing_by_seq",
    "clock_skew_s", "battery_v", "battery_pct", "rssi_dbm", "snr_db",
)  # fmt: skip


class SqliteStorage:
    """Storage in one SQLite file.

    Args:
        path: The database file (created with its folder when missing).
        synchronous: ``full`` (``storage.sqlite_synchronous``'s default): a committed batch
            survives a power cut; ``normal``: it survives a crash of the process, and writes are
            faster.
        busy_timeout_s: How long a writer waits for another process's write lock.
    """

    def __init__(
        self,
        path: Path,
        synchronous: Synchronous = _STORAGE["sqlite_synchronous"].default,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.path = path
        self._synchronous = synchronous
        self._busy_timeout_s = busy_timeout_s
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="siaga-sqlite")
        self._connection: sqlite3.Connection | None = None
        self._station_ids: dict[str, int] = {}
        self._metric_ids: dict[str, int] = {}
        self._series: set[tuple[int, int]] = set()
        self._closed = False

    async def __aenter__(self) -> SqliteStorage:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the thread --------------------------------------------------------------------------

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` on the storage thread, with SQLite's errors translated once, here."""

        def call() -> T:
            try:
                return work(self._connect())
            except sqlite3.OperationalError as exc:
                # Locked, busy, disk full, I/O: conditions that may pass.
                raise RetryableStorageError(f"SQLite {self.path}: {exc}") from exc
            except sqlite3.Error as exc:
                raise PermanentStorageError(f"SQLite {self.path}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path, timeout=self._busy_timeout_s, isolation_level=None
            )
        except (OSError, sqlite3.Error) as exc:
            raise PermanentStorageError(f"cannot open SQLite {self.path}: {exc}") from exc
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
            connection.executescript(SCHEMA)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        self._load_ids(connection)
        return connection

    def _load_ids(self, connection: sqlite3.Connection) -> None:
        self._station_ids = dict(connection.execute("SELECT name, id FROM stations").fetchall())
        self._metric_ids = dict(connection.execute("SELECT name, id FROM metrics").fetchall())
        self._series = set(connection.execute("SELECT station_id, metric_id FROM series"))

    def _series_ids(
        self, connection: sqlite3.Connection, station_id: str, metric: str
    ) -> tuple[int, int] | None:
        """The ids of a station's metric, fresh from the database (None: nothing stored yet)."""
        self._load_ids(connection)
        station = self._station_ids.get(station_id)
        metric_id = self._metric_ids.get(metric)
        return None if station is None or metric_id is None else (station, metric_id)

    @staticmethod
    def _id(connection: sqlite3.Connection, table: str, cache: dict[str, int], name: str) -> int:
        found = cache.get(name)
        if found is None:
            connection.execute(f"INSERT OR IGNORE INTO {table} (name) VALUES (?)", (name,))
            row = connection.execute(f"SELECT id FROM {table} WHERE name = ?", (name,)).fetchone()
            found = cache[name] = int(row[0])
        return found

    # -- writing -----------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Create the file and its tables; idempotent."""
        await self._run(lambda connection: None)

    async def write(self, batch: Batch) -> WriteReport:
        """Store a batch in one transaction; readings SQLite cannot hold become rejections."""
        return await self._run(lambda connection: self._write(connection, batch))

    def _write(self, connection: sqlite3.Connection, batch: Batch) -> WriteReport:
        rows: list[tuple[int, int, int, float]] = []
        refused: list[StoredRejection] = []
        connection.execute("BEGIN IMMEDIATE")
        try:
            # Names unknown here are looked up (or added) in the file itself, so ids that another
            # process (a second worker) assigned meanwhile are found, never duplicated.
            stored = 0
            for reading in batch.readings:
                values = dict(reading.values)
                if reading.seq is not None:
                    values[SEQ] = float(reading.seq)
                if not reading.values or not all(math.isfinite(v) for v in values.values()):
                    refused.append(_refusal(reading.station_id, reading.ts_ns, values))
                    continue
                station = self._id(connection, "stations", self._station_ids, reading.station_id)
                for name, value in values.items():
                    metric = self._id(connection, "metrics", self._metric_ids, name)
                    if (station, metric) not in self._series:
                        connection.execute(
                            "INSERT OR IGNORE INTO series VALUES (?, ?)", (station, metric)
                        )
                        self._series.add((station, metric))
                    rows.append((station, metric, reading.ts_ns, value))
                stored += 1
            connection.executemany("INSERT OR REPLACE INTO telemetry VALUES (?, ?, ?, ?)", rows)
            connection.executemany(
                "INSERT OR REPLACE INTO rejected VALUES (?, ?, ?, ?, ?, ?)",
                [_rejection_row(r) for r in [*batch.rejections, *refused]],
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            self._load_ids(connection)  # ids cached during the failed transaction are void
            raise
        return WriteReport(stored=stored + len(batch.rejections), refused=len(refused))

    async def write_health(self, snapshots: Sequence[StationHealth], ts_ns: int) -> None:
        """Keep each station's newest snapshot."""
        rows = [
            (s.station_id, ts_ns, *(getattr(s, name) for name in _HEALTH_COLUMNS))
            for s in snapshots
        ]

        def write(connection: sqlite3.Connection) -> None:
            with _transaction(connection):
                connection.executemany(
                    "INSERT OR REPLACE INTO device_health VALUES "
                    f"(?, ?, {', '.join('?' * len(_HEALTH_COLUMNS))}) ",
                    rows,
                )

        await self._run(write)

    async def write_alerts(self, records: Sequence[AlertRecord]) -> None:
        """Store alert events; the same event again overwrites itself."""
        rows = [
            (r.station_id, r.kind, r.rule, r.level, r.ts_ns, r.firing, r.late, r.text, r.event_id)
            for r in records
        ]

        def write(connection: sqlite3.Connection) -> None:
            with _transaction(connection):
                connection.executemany(
                    "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )

        await self._run(write)

    # -- reading -----------------------------------------------------------------------------

    async def latest(self, station_ids: Sequence[str] | None = None) -> dict[str, LatestReading]:
        """Each station's reading with the newest timestamp (one index seek per series)."""
        if station_ids is not None and not station_ids:
            return {}
        wanted = None if station_ids is None else set(station_ids)
        return await self._run(lambda connection: self._latest(connection, wanted))

    def _latest(
        self, connection: sqlite3.Connection, wanted: set[str] | None
    ) -> dict[str, LatestReading]:
        self._load_ids(connection)
        names = {number: name for name, number in self._station_ids.items()}
        metrics = {number: name for name, number in self._metric_ids.items()}
        newest: dict[int, int] = {}
        for station, metric in sorted(self._series):
            if wanted is not None and names[station] not in wanted:
                continue
            (ts_ns,) = connection.execute(
                "SELECT max(ts_ns) FROM telemetry WHERE station_id = ? AND metric_id = ?",
                (station, metric),
            ).fetchone()
            if ts_ns is not None and ts_ns > newest.get(station, -(2**63)):
                newest[station] = ts_ns
        found = {}
        for station, ts_ns in newest.items():
            values = {
                metrics[metric]: value
                for metric, value in connection.execute(
                    "SELECT metric_id, value FROM telemetry WHERE station_id = ? AND ts_ns = ?",
                    (station, ts_ns),
                )
                if metrics[metric] != SEQ
            }
            found[names[station]] = LatestReading(names[station], ts_ns, values)
        return found

    async def window(
        self, station_id: str, metric: str, start_ns: int, end_ns: int, window_s: int
    ) -> list[WindowStat]:
        """Mean, min, max and count per window, windows aligned to the epoch."""
        width = int(window_s) * 1_000_000_000

        def query(connection: sqlite3.Connection) -> list[WindowStat]:
            series = self._series_ids(connection, station_id, metric)
            if series is None:
                return []
            station, metric_id = series
            rows = connection.execute(
                "SELECT ts_ns - ((ts_ns % :w) + :w) % :w AS start, avg(value), min(value), "
                "max(value), count(*) FROM telemetry WHERE station_id = :s AND metric_id = :m "
                "AND ts_ns >= :a AND ts_ns < :b GROUP BY start ORDER BY start",
                {"w": width, "s": station, "m": metric_id, "a": start_ns, "b": end_ns},
            )
            return [WindowStat(int(t), mean, lo, hi, int(n)) for t, mean, lo, hi, n in rows]

        return await self._run(query)

    async def readings(
        self, station_id: str, metric: str, start_ns: int, end_ns: int, limit: int
    ) -> list[tuple[int, float]]:
        """Raw values of one metric in ``[start_ns, end_ns)``, oldest first, at most ``limit``."""

        def query(connection: sqlite3.Connection) -> list[tuple[int, float]]:
            series = self._series_ids(connection, station_id, metric)
            if series is None:
                return []
            station, metric_id = series
            rows = connection.execute(
                "SELECT ts_ns, value FROM telemetry WHERE station_id = ? AND metric_id = ? "
                "AND ts_ns >= ? AND ts_ns < ? ORDER BY ts_ns LIMIT ?",
                (station, metric_id, start_ns, end_ns, int(limit)),
            )
            return [(int(ts_ns), float(value)) for ts_ns, value in rows]

        return await self._run(query)

    async def spans(
        self, metric: str, since_ns: int, station_ids: Sequence[str] | None = None
    ) -> dict[str, MetricSpan]:
        """Each station's first and last value of ``metric`` at or after ``since_ns``."""

        def query(connection: sqlite3.Connection) -> dict[str, MetricSpan]:
            self._load_ids(connection)
            metric_id = self._metric_ids.get(metric)
            if metric_id is None:
                return {}
            names = {number: name for name, number in self._station_ids.items()}
            wanted = (
                list(names)
                if station_ids is None
                else [self._station_ids[s] for s in station_ids if s in self._station_ids]
            )
            found: dict[str, MetricSpan] = {}
            for station in wanted:
                # Two index seeks per station on the (station, metric, ts) primary key.
                bounds = "SELECT ts_ns, value FROM telemetry WHERE station_id = ? AND "
                bounds += "metric_id = ? AND ts_ns >= ? ORDER BY ts_ns {} LIMIT 1"
                arguments = (station, metric_id, since_ns)
                first = connection.execute(bounds.format("ASC"), arguments).fetchone()
                if first is None:
                    continue
                last = connection.execute(bounds.format("DESC"), arguments).fetchone()
                name = names[station]
                found[name] = MetricSpan(name, int(first[0]), first[1], int(last[0]), last[1])
            return found

        return await self._run(query)

    async def rejections(
        self,
        since_ns: int,
        limit: int = 100,
        reason: Reason | None = None,
        station_id: str | None = None,
        until_ns: int | None = None,
    ) -> list[StoredRejection]:
        """The newest rejections first."""
        sql = "SELECT reason, station, received_ns, topic, payload, detail FROM rejected "
        sql += "WHERE received_ns >= ? "
        arguments: list[object] = [since_ns]
        if reason is not None:
            sql += "AND reason = ? "
            arguments.append(reason.value)
        if station_id is not None:
            sql += "AND station = ? "
            arguments.append(station_id)
        if until_ns is not None:
            sql += "AND received_ns < ? "
            arguments.append(until_ns)
        sql += "ORDER BY received_ns DESC LIMIT ?"
        arguments.append(int(limit))

        def query(connection: sqlite3.Connection) -> list[StoredRejection]:
            return [
                StoredRejection(
                    Rejection(Reason(why), detail, station or None), topic, payload, received_ns
                )
                for why, station, received_ns, topic, payload, detail in connection.execute(
                    sql, arguments
                )
            ]

        return await self._run(query)

    async def health(self) -> dict[str, StationHealth]:
        """Each station's newest stored snapshot."""

        def query(connection: sqlite3.Connection) -> dict[str, StationHealth]:
            rows = connection.execute(
                f"SELECT station, {', '.join(_HEALTH_COLUMNS)} FROM device_health"
            )
            return {row[0]: StationHealth(*row) for row in rows}

        return await self._run(query)

    async def alerts(
        self,
        since_ns: int,
        until_ns: int | None = None,
        station_ids: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[AlertRecord]:
        """Alert events with ``since_ns <= ts < until_ns``, oldest first, at most ``limit``."""
        if station_ids is not None and not station_ids:
            return []
        sql = (
            "SELECT ts_ns, station, kind, rule, level, firing, late, text, event_id FROM alerts "
            "WHERE ts_ns >= ? "
        )
        arguments: list[object] = [since_ns]
        if until_ns is not None:
            sql += "AND ts_ns < ? "
            arguments.append(until_ns)
        if station_ids is not None:
            sql += f"AND station IN ({', '.join('?' * len(station_ids))}) "
            arguments.extend(station_ids)
        sql += "ORDER BY ts_ns, station, kind, rule, level LIMIT ?"
        arguments.append(int(limit))

        def query(connection: sqlite3.Connection) -> list[AlertRecord]:
            return [
                AlertRecord(ts, station, kind, rule, level, bool(firing), bool(late), text, event)
                for ts, station, kind, rule, level, firing, late, text, event in connection.execute(
                    sql, arguments
                )
            ]

        return await self._run(query)

    async def prune(self, before_ns: int) -> int:
        """Delete readings, rejections and alert events older than ``before_ns`` (retention).

        Telemetry is deleted one series at a time, each a range of the primary key, so pruning
        never scans the table. Returns how many rows went.
        """

        def prune(connection: sqlite3.Connection) -> int:
            self._load_ids(connection)
            deleted = 0
            for station, metric in sorted(self._series):
                with _transaction(connection):
                    deleted += connection.execute(
                        "DELETE FROM telemetry WHERE station_id = ? AND metric_id = ? "
                        "AND ts_ns < ?",
                        (station, metric, before_ns),
                    ).rowcount
            with _transaction(connection):
                for table, column in (("rejected", "received_ns"), ("alerts", "ts_ns")):
                    deleted += connection.execute(
                        f"DELETE FROM {table} WHERE {column} < ?", (before_ns,)
                    ).rowcount
            return deleted

        return await self._run(prune)

    async def aclose(self) -> None:
        """Close the connection (checkpointing the WAL) and stop the thread."""

        if self._closed:
            return
        self._closed = True

        def close() -> None:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)


class _transaction:  # noqa: N801 - used as a statement: with _transaction(connection)
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __enter__(self) -> None:
        self._connection.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        self._connection.execute("COMMIT" if kind is None else "ROLLBACK")


def _rejection_row(stored: StoredRejection) -> tuple[str, str, int, str, str, str]:
    return (
        stored.rejection.reason.value,
        stored.rejection.station_id or _NO_STATION,
        stored.received_ns,
        stored.topic,
        stored.payload_excerpt,
        stored.rejection.detail,
    )


def _refusal(station_id: str, ts_ns: int, values: dict[str, float]) -> StoredRejection:
    return StoredRejection(
        Rejection(
            Reason.STORAGE_REJECTED,
            "SQLite cannot store a reading without finite values",
            station_id,
        ),
        topic="",
        payload_excerpt=repr(values)[:512],
        received_ns=ts_ns,
    )

"""The embedded SQLite backend's limits: readings/s written, and bytes on disk per station-year.

Measured in one run, next to baselines from the same run:

1. a baseline: the same rows with plain ``sqlite3.executemany`` on one connection, no identity
   lookups, no thread hop, ``synchronous=NORMAL``;
2. :class:`~ingest.storage.sqlite.SqliteStorage` with ``synchronous=FULL`` (the default: an
   acknowledged batch survives a power cut) and ``NORMAL`` (survives a process crash);
3. InfluxDB (``InfluxStorage`` on a local ``influxd``) when it is installed, for context.

Each reading carries what a river gauge sends: ``water_level_cm``, ``battery_v``, ``rssi_dbm``
and ``seq``, in batches of 5,000 (the worker's default). The size per station-year comes from
writing one station's year at its reporting interval and measuring the file after a checkpoint.

Run: ``python -m benchmarks.sqlite_storage [--readings N] [--output FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from devices import Reading
from ingest.batch import Batch
from ingest.settings import InfluxSettings
from ingest.storage.base import Storage
from ingest.storage.influx import InfluxStorage
from ingest.storage.sqlite import SCHEMA, SqliteStorage, Synchronous
from ops.servers import InfluxServer

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
BATCH = 5000
YEAR_S = 365 * 86400


def readings(count: int, stations: int, interval_s: int, start: int = 0) -> Iterator[Reading]:
    """Gauge readings round-robin over stations, each station every ``interval_s``."""
    for i in range(start, start + count):
        station, step = i % stations, i // stations
        yield Reading(
            f"st-{station:05d}",
            T0 + step * interval_s * 1_000_000_000,
            {
                "water_level_cm": 100.0 + (i % 997) * 0.1,
                "battery_v": 3.6 + (i % 50) * 0.01,
                "rssi_dbm": -90.0 - (i % 30),
            },
            i,
        )


def batches(count: int, stations: int, interval_s: int) -> list[Batch]:
    all_readings = list(readings(count, stations, interval_s))
    return [Batch(all_readings[i : i + BATCH]) for i in range(0, count, BATCH)]


def baseline(path: Path, work: list[Batch]) -> float:
    """Plain sqlite3: the same long-form rows, integer ids known in advance."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.executescript(SCHEMA)
    metric = {"water_level_cm": 1, "battery_v": 2, "rssi_dbm": 3, "seq": 4}
    start = time.perf_counter()
    total = 0
    for batch in work:
        rows: list[tuple[int, int, int, float]] = []
        for r in batch.readings:
            station = int(r.station_id[3:])
            rows.extend((station, metric[n], r.ts_ns, v) for n, v in r.values.items())
            rows.append((station, 4, r.ts_ns, float(r.seq or 0)))
        connection.execute("BEGIN")
        connection.executemany("INSERT OR REPLACE INTO telemetry VALUES (?, ?, ?, ?)", rows)
        connection.execute("COMMIT")
        total += len(batch.readings)
    elapsed = time.perf_counter() - start
    connection.close()
    return total / elapsed


async def _write_rate(storage: Storage, work: list[Batch]) -> float:
    """Readings per second ``storage`` writes ``work`` at, one batch after another."""
    await storage.prepare()
    start = time.perf_counter()
    for batch in work:
        await storage.write(batch)
    elapsed = time.perf_counter() - start
    return sum(len(b.readings) for b in work) / elapsed


async def siaga_sqlite(path: Path, work: list[Batch], synchronous: Synchronous) -> float:
    async with SqliteStorage(path, synchronous) as storage:
        return await _write_rate(storage, work)


def influx_installed() -> bool:
    return shutil.which("influxd") is not None or Path("/usr/bin/influxd").exists()


async def siaga_influx(directory: Path, work: list[Batch]) -> float:
    with InfluxServer(directory) as server:
        storage = InfluxStorage(
            InfluxSettings(url=server.url, database="bench"),
            lambda station: {"station": station, "regency": "Bench", "river": "Bench"},
        )
        async with storage:
            return await _write_rate(storage, work)


async def station_year_bytes(directory: Path, interval_s: int) -> tuple[int, int]:
    """Bytes on disk for one station's year at ``interval_s``, and the readings it held."""
    path = directory / f"year-{interval_s}.sqlite"
    count = YEAR_S // interval_s
    async with SqliteStorage(path, "normal") as storage:
        await storage.prepare()
        batch: list[Reading] = []
        for reading in readings(count, 1, interval_s):
            batch.append(reading)
            if len(batch) == BATCH:
                await storage.write(Batch(batch))
                batch = []
        if batch:
            await storage.write(Batch(batch))
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return path.stat().st_size, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--output", type=Path)
    parser.add_argument("--no-influx", action="store_true")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    work = batches(args.readings, args.stations, 900)
    lines = [
        "# Embedded SQLite storage",
        "",
        f"{platform.node()}, {os.cpu_count()} cores (shared), Python {platform.python_version()}"
        f", SQLite {sqlite3.sqlite_version}; {args.readings:,} readings (4 fields each) over "
        f"{args.stations:,} stations, batches of {BATCH:,}; best of {args.trials} trials.",
        "",
        "| writer | readings/s | vs baseline |",
        "|---|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="siaga-bench-sqlite-") as temp:
        directory = Path(temp)

        def best(measure: Callable[[Path], float], name: str) -> float:
            # The machine is shared: the best of a few trials is the least disturbed one.
            return max(
                measure(directory / f"{name}-{trial}.sqlite") for trial in range(args.trials)
            )

        top = best(lambda path: baseline(path, work), "baseline")
        rates: list[tuple[str, float]] = [("plain sqlite3 executemany, same rows (baseline)", top)]
        for synchronous, label in (("full", "FULL (default)"), ("normal", "NORMAL")):
            rate = best(
                lambda path, s=synchronous: asyncio.run(siaga_sqlite(path, work, s)),  # type: ignore[misc]
                synchronous,
            )
            rates.append((f"SqliteStorage, synchronous={label}", rate))
        if not args.no_influx and influx_installed():
            rates.append(
                ("InfluxStorage on local influxd", asyncio.run(siaga_influx(directory / "i", work)))
            )
        for name, rate in rates:
            lines.append(f"| {name} | {rate:,.0f} | {rate / top:.2f} |")
        lines += [
            "",
            "| station reporting every | readings/year | bytes/station-year | bytes/reading |",
            "|---|---:|---:|---:|",
        ]
        for interval_s in (900, 300, 60):
            size, count = asyncio.run(station_year_bytes(directory, interval_s))
            per_reading = size / count
            lines.append(
                f"| {interval_s // 60} min | {count:,} | {size / 1e6:,.1f} MB | {per_reading:.0f} |"
            )
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        args.output.write_text(report)


if __name__ == "__main__":
    main()

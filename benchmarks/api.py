"""The API benchmark: overview and 30-day chart latency next to the InfluxDB queries behind them.

One run starts its own InfluxDB in a temporary directory, registers 1,000 stations, stores a few
hours of 15-minute readings and a health snapshot for each and 90 days of 1-minute readings for
one of them, then serves the app under uvicorn and measures, over repeated requests:

1. ``GET /api/v1/stations`` (the overview's data), as served (the fleet snapshot shared for
   ``api.overview_max_age_s``) and with the snapshot off (every request queries), against its
   baseline: the three InfluxQL queries it makes (latest per station, health, trend spans);
   and the same overview for a caller scoped to one regency of :data:`REGENCY_STATIONS`
   stations (stations are grouped into regencies of that size), beside the unscoped one;
2. ``GET /api/v1/stations/{id}/readings`` over 30 days at 1 h windows (the station chart), which
   reads the hourly rollup, against the baseline of the same windows from raw readings;
3. the 90-day chart (1 h, rollup) and the 7-day chart (10 min, raw readings).

The test InfluxDB runs no continuous queries, so the rollup is brought to the state the
continuous query keeps (``refresh_rollup``, the query's own statement) before measuring, and
the worker's background pass over the hours the back-dated history marked dirty is run once.

Targets (p95): overview < 200 ms, 30-day chart < 300 ms. Run it as ``siaga bench api``.
"""

from __future__ import annotations

import asyncio
import math
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from alerts.settings import DatabaseSettings
from dashboards.api import create_app
from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import sql_engine
from dashboards.settings import ApiSettings, Settings
from devices import Reading
from devices.health import StationHealth
from devices.levels import Thresholds
from devices.scopes import Scope
from devices.stations import MetricSpec, StaticRegistry, Station
from ingest.batch import Batch
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage, registry_tags
from ops.servers import InfluxServer, free_port

NS = 1_000_000_000
DAY_S = 86400
TARGET_OVERVIEW_P95_S = 0.200
TARGET_CHART_P95_S = 0.300
WRITE_BATCH = 5000
BENCH_STATION = "bench-0000"
REGENCY_STATIONS = 100
"""Stations per regency: a regency's overview is this many stations, whatever the fleet."""
SCOPED_REGENCY = "Regency 0000"
COLD_MAX_STATIONS = 10_000
# Above this the benchmark runs no background rollup pass over its loaded month (see run()).
DIRTY_PASS_MAX_STATIONS = 10_000
"""Above this, the overview with the snapshot off (a full fleet query per request) is left out."""


@dataclass
class Timing:
    """Latencies of one measured request kind."""

    name: str
    seconds: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        return self.percentile(0.95)


def fleet(stations: int) -> StaticRegistry:
    """``stations`` river gauges in regencies of :data:`REGENCY_STATIONS`, twenty regencies a
    province, bnpb thresholds."""
    metrics = {
        "water_level_cm": MetricSpec(unit="cm", min=0, max=2000),
        "battery_v": MetricSpec(unit="V", min=0, max=5),
    }
    provinces = {
        f"Regency {r:04d}": f"Province {r // 20:03d}"
        for r in range(math.ceil(stations / REGENCY_STATIONS))
    }
    return StaticRegistry(
        (
            Station(
                id=f"bench-{i:04d}",
                name=f"Bench gauge {i}",
                regency=f"Regency {i // REGENCY_STATIONS:04d}",
                river=f"River {i % 37}",
                latitude=-6 + (i % 100) / 100,
                longitude=95 + (i // 100 % 450) / 10,
                metrics=metrics,
                interval_s=900,
                thresholds=[Thresholds(waspada_cm=200, siaga_cm=300, awas_cm=400)],
            )
            for i in range(stations)
        ),
        provinces,
    )


def level_at(minute: int) -> float:
    """A plausible river: a daily tide plus a slow seasonal swell."""
    return 150 + 40 * math.sin(minute / 720 * math.pi) + 60 * math.sin(minute / 43200 * math.pi)


async def load(storage: InfluxStorage, registry: StaticRegistry, now_ns: int, days: int) -> int:
    """Store the data set; returns how many readings were written."""
    written = 0
    batch = Batch()

    async def flush() -> None:
        nonlocal batch, written
        if batch.readings:
            await storage.write(batch)
            written += len(batch.readings)
            batch = Batch()

    for station in registry.stations():
        if station.id == BENCH_STATION:
            continue
        for step in range(8):  # two hours at 15-minute intervals
            ts = now_ns - (step * 900 + 60) * NS
            batch.readings.append(
                Reading(station.id, ts, {"water_level_cm": level_at(step), "battery_v": 3.9})
            )
        if len(batch.readings) >= WRITE_BATCH:
            await flush()
    minutes = days * 1440
    for minute in range(minutes):
        ts = now_ns - (minutes - minute) * 60 * NS
        batch.readings.append(
            Reading(BENCH_STATION, ts, {"water_level_cm": level_at(minute), "battery_v": 3.9})
        )
        if len(batch.readings) >= WRITE_BATCH:
            await flush()
    await flush()
    snapshots = [
        StationHealth(s.id, now_ns - 60 * NS, 96, 96, 100.0, 0, 0.5, 3.9, None, -90.0, 7.0)
        for s in registry.stations()
    ]
    # In batches: 100,000 new series in one write outlast InfluxDB's answer.
    for start in range(0, len(snapshots), WRITE_BATCH):
        await storage.write_health(snapshots[start : start + WRITE_BATCH], now_ns)
    return written


async def measure(name: str, repeats: int, call: Callable[[], Awaitable[object]]) -> Timing:
    """Time ``call`` ``repeats`` times after two warm-up calls."""
    timing = Timing(name)
    for _ in range(2):
        await call()
    for _ in range(repeats):
        started = time.perf_counter()
        await call()
        timing.seconds.append(time.perf_counter() - started)
    return timing


def _rfc3339(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ns // NS))


async def run(stations: int, days: int, repeats: int, directory: Path) -> list[Timing]:
    """The whole benchmark in one event loop; returns the timings in report order."""
    registry = fleet(stations)
    now_ns = time.time_ns()
    console = Console()
    with InfluxServer(directory / "influxdb") as influx:
        settings = Settings(
            # A 100,000-station fleet's queries (latest, health) take seconds on a busy machine;
            # settle 0: the background pass below may take the marks the load just wrote.
            influx=InfluxSettings(
                url=influx.url, database="bench", timeout_s=120.0, rollup_settle_s=0
            ),
            database=DatabaseSettings(url=f"sqlite:///{directory}/siaga.db"),
            api=ApiSettings(secret_key=SecretStr("bench-secret-key-" + "x" * 16)),
        )
        async with InfluxStorage(settings.influx, registry_tags(registry)) as storage:
            await storage.prepare()
            started = time.perf_counter()
            written = await load(storage, registry, now_ns, days)
            console.print(
                f"stored {written:,} readings of {stations:,} stations "
                f"in {time.perf_counter() - started:.1f} s"
            )
            started = time.perf_counter()
            # The charts read one station's rollup: roll that one up (all of 100,000 stations
            # outlast a request's timeout).
            await storage.refresh_rollup(now_ns - (days + 1) * DAY_S * NS, now_ns, [BENCH_STATION])
            # The history is late data: its hours are marked dirty (read raw) until the worker's
            # background pass, which the steady state has run long since. Past
            # DIRTY_PASS_MAX_STATIONS the pass would recompute every station's month (minutes):
            # the chart then reads its station's marked hours raw, the worst case.
            if stations <= DIRTY_PASS_MAX_STATIONS:
                await storage.refresh_dirty()
            console.print(f"rolled up in {time.perf_counter() - started:.1f} s")
            accounts = Accounts(sql_engine(settings.database.url))
            accounts.create_tables()
            _, key = accounts.add_key("bench", Role.VIEWER, "bench", now_ns)
            _, scoped_key = accounts.add_key(
                "bench-regency", Role.VIEWER, "bench", now_ns, Scope.of([SCOPED_REGENCY])
            )
            cold = stations <= COLD_MAX_STATIONS
            servers = []
            for max_age_s in (settings.api.overview_max_age_s, 0.0)[: 2 if cold else 1]:
                tuned = settings.model_copy(
                    update={
                        "api": settings.api.model_copy(update={"overview_max_age_s": max_age_s})
                    }
                )
                app = create_app(
                    tuned, storage=storage, registry=registry, accounts=accounts, live=False
                )
                port = free_port()
                server = uvicorn.Server(
                    uvicorn.Config(app, port=port, log_level="warning", lifespan="off")
                )
                servers.append((server, port, asyncio.create_task(server.serve())))
            try:
                while not all(server.started for server, _, _ in servers):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                return await _measure_all(
                    storage,
                    servers[0][1],
                    servers[1][1] if cold else None,
                    (key, scoped_key),
                    now_ns,
                    repeats,
                )
            finally:
                for server, _, _ in servers:
                    server.should_exit = True
                for _, _, serving in servers:
                    await serving


async def _measure_all(
    storage: InfluxStorage,
    port: int,
    cold_port: int | None,
    keys: tuple[str, str],
    now_ns: int,
    repeats: int,
) -> list[Timing]:
    month_ns = 30 * DAY_S * NS
    key, scoped_key = keys
    headers = {"Authorization": f"Bearer {key}"}
    base = f"http://127.0.0.1:{port}"
    async with (
        httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as api,
        httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {scoped_key}"}, timeout=60
        ) as scoped,
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{cold_port or port}", headers=headers, timeout=60
        ) as cold,
    ):

        async def get(client: httpx.AsyncClient, path: str, **params: str) -> None:
            response = await client.get(path, params=params)
            response.raise_for_status()

        async def overview_queries() -> None:
            await asyncio.gather(
                storage.latest(),
                storage.health(),
                storage.spans("water_level_cm", now_ns - 3600 * NS),
            )

        async def raw_window(span_ns: int, window_s: int) -> None:
            storage.rollups_ready = False
            try:
                await storage.window(
                    BENCH_STATION, "water_level_cm", now_ns - span_ns, now_ns, window_s
                )
            finally:
                storage.rollups_ready = True

        async def rollup_window(span_ns: int) -> None:
            await storage.window(BENCH_STATION, "water_level_cm", now_ns - span_ns, now_ns, 3600)

        def span(days: int) -> dict[str, str]:
            return {"start": _rfc3339(now_ns - days * DAY_S * NS), "end": _rfc3339(now_ns)}

        chart = f"/api/v1/stations/{BENCH_STATION}/readings"

        async def scoped_overview() -> None:
            response = await scoped.get("/api/v1/stations")
            response.raise_for_status()
            if response.json()["count"] != REGENCY_STATIONS:
                raise AssertionError("the scoped overview is not its regency's")

        plan: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("overview: GET /api/v1/stations", lambda: get(api, "/api/v1/stations")),
            (
                f"overview of one regency ({REGENCY_STATIONS} stations), a scoped caller",
                scoped_overview,
            ),
        ]
        if cold_port is not None:
            plan.append(
                (
                    "  the same with the snapshot off (every request queries)",
                    lambda: get(cold, "/api/v1/stations"),
                )
            )
        plan += [
            ("  baseline: its InfluxQL (latest, health, spans)", overview_queries),
            ("30-day chart, 1 h windows: GET .../readings",
             lambda: get(api, chart, window="1h", **span(30))),
            ("  its storage call (rollup + raw edges)", lambda: rollup_window(month_ns)),
            ("  baseline: the same windows from raw readings", lambda: raw_window(month_ns, 3600)),
            ("90-day chart, 1 h windows: GET .../readings",
             lambda: get(api, chart, window="1h", **span(90))),
            ("7-day chart, 10 min windows: GET .../readings",
             lambda: get(api, chart, window="10m", **span(7))),
        ]  # fmt: skip
        timings = []
        for name, call in plan:
            # At national size the InfluxQL baseline (every station's latest reading) takes
            # seconds a call: a few calls tell its cost.
            times = repeats if cold_port is not None or "baseline" not in name else 5
            timings.append(await measure(name, times, call))
            Console(stderr=True).print(
                f"{name.strip()}: p50 {timings[-1].p50 * 1000:.1f} ms, "
                f"p95 {timings[-1].p95 * 1000:.1f} ms ({times} calls)"
            )
        return timings


def render(timings: list[Timing], stations: int, days: int, repeats: int) -> str:
    """The report as Markdown."""
    lines = [
        f"API benchmark: {stations:,} stations, {days} days of 1-minute data for one, "
        f"{repeats} requests each; {platform.node()}, {platform.machine()}.",
        "",
        "| request | p50 ms | p95 ms | target p95 |",
        "|---|---:|---:|---:|",
    ]
    for timing in timings:
        target = ""
        if timing.name.startswith("overview"):
            target = f"< {TARGET_OVERVIEW_P95_S * 1000:.0f} ms"
        elif timing.name.startswith("30-day"):
            target = f"< {TARGET_CHART_P95_S * 1000:.0f} ms"
        lines.append(
            f"| {timing.name.strip()} | {timing.p50 * 1000:.1f} | {timing.p95 * 1000:.1f} "
            f"| {target} |"
        )
    return "\n".join(lines) + "\n"


def verdict(timings: list[Timing]) -> list[str]:
    """Targets missed, one sentence each (empty when all met)."""
    missed = []
    for timing in timings:
        if timing.name.startswith("overview") and timing.p95 >= TARGET_OVERVIEW_P95_S:
            missed.append(f"{timing.name}: p95 {timing.p95 * 1000:.0f} ms")
        if timing.name.startswith("30-day") and timing.p95 >= TARGET_CHART_P95_S:
            missed.append(f"{timing.name}: p95 {timing.p95 * 1000:.0f} ms")
    return missed


def run_api_benchmark(
    *, stations: int = 1000, days: int = 90, repeats: int = 50, output: Path | None = None
) -> bool:
    """Run the benchmark, print the table, optionally write Markdown; True when targets are met."""
    with tempfile.TemporaryDirectory(prefix="siaga-bench-api-") as directory:
        timings = asyncio.run(run(stations, days, repeats, Path(directory)))
    console = Console()
    table = Table(title="siaga bench api")
    for column in ("request", "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column == "request" else "right")
    for timing in timings:
        table.add_row(timing.name, f"{timing.p50 * 1000:.1f}", f"{timing.p95 * 1000:.1f}")
    console.print(table)
    missed = verdict(timings)
    console.print("targets met" if not missed else "targets missed: " + "; ".join(missed))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render(timings, stations, days, repeats))
        console.print(f"report written to {output}")
    return not missed

"""The residents' page under a surge, next to the operators' API: ``siaga bench public``.

One run makes a temporary deployment (the station registry of ``config/``, the residents'
pages of ``config/public.yaml``, its own InfluxDB with two hours of readings for every station,
a SQLite incident database with an API key) and starts, as in production, two processes:
``siaga serve`` (the operators' API) and ``siaga public serve`` (the residents' pages). Then:

1. **Baseline**: the operators' overview (``GET /api/v1/stations``) is asked at a fixed rate
   (``--api-rate``, default 20/s) for ``--seconds``; latency is measured from each request's
   scheduled time, so a stalled server cannot hide its queue (no coordinated omission).
2. **Surge**: the same probe again while ``wrk`` (Debian's) hammers the public page over
   ``--connections`` keep-alive connections (a bounded load on loopback) for the same time.

It prints the public page's requests/s and latency (wrk), the API's p50/p95 alone and under
the surge (and their ratio), and the page's weight. Targets: public page >= 2,000 requests/s
while the API's p95 stays < 200 ms.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import sql_engine
from devices import Reading
from devices.registry import load_registry
from ingest.batch import Batch
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage, registry_tags
from ops.servers import InfluxServer, free_port

REPO = Path(__file__).resolve().parent.parent
NS = 1_000_000_000
TARGET_PUBLIC_RPS = 2000.0
TARGET_API_P95_S = 0.200
PAGE = "/tulang-bawang/"
DATABASE = "bench"


@dataclass
class Probe:
    """Latencies of the operators' API, measured from each request's scheduled time."""

    name: str
    seconds: list[float]
    errors: int

    def percentile(self, fraction: float) -> float:
        """Nearest rank."""
        ordered = sorted(self.seconds)
        return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)] if ordered else math.inf

    @property
    def p50(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.inf

    @property
    def p95(self) -> float:
        return self.percentile(0.95)


@dataclass
class Surge:
    """What wrk measured."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: str


async def seed(directory: Path, influx_url: str) -> tuple[str, str]:
    """Readings for every station, a database with an API key; returns (database url, key)."""
    registry = load_registry(REPO / "config" / "stations.yaml", None)
    storage = InfluxStorage(
        InfluxSettings(url=influx_url, database=DATABASE), registry_tags(registry)
    )
    await storage.prepare()
    now = time.time_ns()
    batch = Batch()
    for station in registry.stations():
        if "water_level_cm" not in station.metrics:
            continue
        for step in range(8):
            at = now - (120 - step * 15) * 60 * NS
            batch.readings.append(Reading(station.id, at, {"water_level_cm": 100.0 + 5 * step}))
    await storage.write(batch)
    await storage.aclose()
    url = f"sqlite:///{directory / 'siaga.db'}"
    from alerts.incidents.migrations import upgrade  # noqa: PLC0415 - alembic is heavy

    upgrade(url)
    accounts = Accounts(sql_engine(url))
    _, key = accounts.add_key("bench", Role.VIEWER, "bench", now)
    accounts.engine.dispose()
    return url, key


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A ``siaga`` command in its own process."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "siaga", *args], cwd=REPO, env=env, stdout=out, stderr=out
        )


async def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    """Until ``url`` answers 200."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


async def probe(url: str, key: str, rate: float, seconds: float, name: str) -> Probe:
    """GET ``url`` at ``rate`` per second for ``seconds``; latency from the scheduled time."""
    latencies: list[float] = []
    errors = 0
    start_at = time.monotonic()
    count = int(rate * seconds)

    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=10.0
    ) as client:

        async def one(scheduled: float) -> None:
            nonlocal errors
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                response = await client.get(url)
                response.raise_for_status()
            except httpx.HTTPError:
                errors += 1
                return
            latencies.append(time.monotonic() - scheduled)

        await asyncio.gather(*(one(start_at + i / rate) for i in range(count)))
    return Probe(name, latencies, errors)


def parse_wrk(output: str) -> Surge:
    """Requests/s, median and p99 latency, non-2xx responses and socket errors from wrk."""

    def millis(text: str) -> float:
        found = re.match(r"([\d.]+)(us|ms|s)$", text)
        if found is None:
            return math.nan
        return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    return Surge(
        requests_per_s=float(rps.group(1)) if rps else 0.0,
        p50_ms=millis(p50.group(1)) if p50 else math.nan,
        p99_ms=millis(p99.group(1)) if p99 else math.nan,
        non_2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=errors.group(0) if errors else "",
    )


async def surge(url: str, seconds: float, connections: int, threads: int) -> Surge:
    """wrk against the public page (gzip, keep-alive), bounded by connections and time."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk")
    process = await asyncio.create_subprocess_exec(
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "-H",
        "Accept-Encoding: gzip",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return parse_wrk(output.decode())


async def run(
    directory: Path, seconds: float, api_rate: float, connections: int, threads: int
) -> tuple[Probe, Probe, Surge, int]:
    """Both phases; returns the two probes, the surge and the page's gzipped size."""
    with InfluxServer(directory / "influxdb") as influx:
        return await _run(directory, influx.url, seconds, api_rate, connections, threads)


async def _run(
    directory: Path,
    influx_url: str,
    seconds: float,
    api_rate: float,
    connections: int,
    threads: int,
) -> tuple[Probe, Probe, Surge, int]:
    url, key = await seed(directory, influx_url)
    env = {
        **os.environ,
        "SIAGA_DATABASE__URL": url,
        "SIAGA_STORAGE__BACKEND": "influx",
        "SIAGA_INFLUX__URL": influx_url,
        "SIAGA_INFLUX__DATABASE": DATABASE,
        "SIAGA_API__SECRET_KEY": "bench-secret-" + "x" * 24,
        "SIAGA_LOG__LEVEL": "WARNING",
    }
    api_port, public_port = free_port(), free_port()
    api = start(["serve", "--port", str(api_port)], env, directory / "api.log")
    public = start(["public", "serve", "--port", str(public_port)], env, directory / "public.log")
    try:
        api_base, public_base = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{public_port}"
        await wait_ready(f"{api_base}/healthz")
        await wait_ready(f"{public_base}{PAGE}")
        async with httpx.AsyncClient() as client:
            page = await client.get(f"{public_base}{PAGE}", headers={"Accept-Encoding": "gzip"})
            weight = page.num_bytes_downloaded
        stations = f"{api_base}/api/v1/stations"
        await probe(stations, key, api_rate, 2.0, "warm-up")
        alone = await probe(stations, key, api_rate, seconds, "API alone")
        loaded, measured = await asyncio.gather(
            probe(stations, key, api_rate, seconds, "API during the surge"),
            surge(f"{public_base}{PAGE}", seconds, connections, threads),
        )
        return alone, loaded, measured, weight
    finally:
        for process in (api, public):
            process.terminate()
        for process in (api, public):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def run_public_benchmark(
    *, seconds: float = 10.0, api_rate: float = 20.0, connections: int = 64, threads: int = 1
) -> bool:
    """Run, print the table; True when both targets are met."""
    with tempfile.TemporaryDirectory(prefix="siaga-bench-public-") as directory:
        alone, loaded, measured, weight = asyncio.run(
            run(Path(directory), seconds, api_rate, connections, threads)
        )
    console = Console()
    table = Table(title=f"siaga bench public ({seconds:g} s per phase, {os.cpu_count()} cores)")
    for column in ("what", "value"):
        table.add_column(column)
    table.add_row("public page: requests/s (wrk)", f"{measured.requests_per_s:,.0f}")
    table.add_row(
        "public page: p50 / p99 (wrk)", f"{measured.p50_ms:.1f} / {measured.p99_ms:.1f} ms"
    )
    table.add_row(
        "public page: non-2xx, socket errors", f"{measured.non_2xx}; {measured.errors or 'none'}"
    )
    table.add_row("public page: first load (gzip)", f"{weight:,} bytes")
    for found in (alone, loaded):
        table.add_row(
            f"{found.name}: p50 / p95 ({len(found.seconds)} ok, {found.errors} failed)",
            f"{found.p50 * 1000:.1f} / {found.p95 * 1000:.1f} ms",
        )
    table.add_row("API p95 during the surge / alone", f"{loaded.p95 / alone.p95:.2f}x")
    console.print(table)
    missed = []
    if measured.requests_per_s < TARGET_PUBLIC_RPS:
        missed.append(f"public page {measured.requests_per_s:,.0f} requests/s < 2,000")
    if loaded.p95 >= TARGET_API_P95_S or loaded.errors:
        missed.append(f"API p95 {loaded.p95 * 1000:.0f} ms during the surge")
    console.print("targets met" if not missed else "targets missed: " + "; ".join(missed))
    return not missed

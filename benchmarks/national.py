"""``siaga bench national``: one worker, one broker, one InfluxDB and a national fleet.

What issue 13 asks of a national deployment on one machine, measured in one run:

- the registry: how long the worker takes to load 100,000 stations, and its memory after start;
- a registry reload in the middle of the run: how long it took and how long ingestion stalled;
- the worker's memory over the run (flat, or growing per reading);
- the health write load (``device_health`` points a second into InfluxDB);
- the fleet's publish rate and how far behind its schedule it ran;
- publish → durable latency (the fleet stamps each reading with its actual publish time, and
  the worker's ``siaga_reading_lag_seconds`` histogram measures from there to durable);
- the backlog (published but not yet durable) over time: the broker's queue plus the worker's
  in-flight batches;
- stored = published, counted in InfluxDB.

The run is long (ten minutes by default) and heavy: it is on demand, never in the test suite.
``--duration-s 3600`` is the hour-long soak.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from rich.console import Console
from rich.table import Table

from benchmarks.ingest import (
    bucket_delta,
    histogram_buckets,
    histogram_quantile,
    process_cpu_s,
    process_memory_bytes,
)
from ops.errors import ServerError
from ops.servers import InfluxServer, MosquittoServer, free_port, wait_until
from ops.status import parse_metrics
from simulators.fleet import FleetReport, run_fleet, write_fleet_stations

TARGET_LOAD_S = 2.0
TARGET_START_RSS_MIB = 300
TARGET_P99_S = 5.0
SAMPLE_EVERY_S = 5.0
LAG = "siaga_reading_lag_seconds"
MIB = 1 << 20


@dataclass
class Sample:
    """One look at the run: seconds since the fleet started, and what was seen."""

    at_s: float
    worker_rss_mib: float
    stored: int
    backlog: int
    cpu_s: dict[str, float]


@dataclass
class NationalReport:
    """Everything one national run measured."""

    stations: int
    interval_s: float
    duration_s: float
    index: str
    registry_load_s: float = 0.0
    registry_load_cpu_s: float = 0.0
    worker_start_s: float = 0.0
    start_rss_mib: float = 0.0
    reload_load_s: float | None = None
    reload_stall_s: float | None = None
    fleet: FleetReport | None = None
    stored_influx: int = 0
    stored_worker: int = 0
    drain_s: float = 0.0
    p50_s: float = 0.0
    p99_s: float = 0.0
    health_points: int = 0
    health_heartbeat_s: float = 900.0
    samples: list[Sample] = field(default_factory=list)
    cpu_cores: dict[str, float] = field(default_factory=dict)
    cpu_us_per_reading: dict[str, float] = field(default_factory=dict)
    gzip: bool = True
    environment: dict[str, str] = field(default_factory=dict)


class _Worker:
    """``siaga ingest`` in a child process, and its /metrics."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.metrics_port = free_port()
        self.log_path = directory / "siaga-ingest.log"
        env = {**env, "SIAGA_METRICS__PORT": str(self.metrics_port)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "siaga", "ingest"],
                env=env, cwd=directory, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def metrics(self) -> dict[str, float]:
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise ServerError(f"siaga ingest exited with {self.process.returncode}:\n{tail}")
        connection = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=5)
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            body = response.read()
        except OSError:
            return {}
        finally:
            connection.close()
        return parse_metrics(body.decode()) if response.status == 200 else {}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _influx_count(port: int, database: str, statement: str) -> int:
    query = urlencode({"db": database, "q": statement})
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request("GET", f"/query?{query}")
        document = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    series = document["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


class _Sampler:
    """Samples the worker's memory, the stored count and CPU every few seconds."""

    def __init__(self, worker: _Worker, pids: dict[str, int | None], rate: float) -> None:
        self._worker = worker
        self._pids = {name: pid for name, pid in pids.items() if pid is not None}
        self._rate = rate
        self._stop = threading.Event()
        self.samples: list[Sample] = []
        self.started = 0.0
        self.total = 0
        self._thread = threading.Thread(target=self._run, name="bench.national-sampler")

    def start(self, fleet_start: float, total: int) -> None:
        self.started, self.total = fleet_start, total
        self._thread.start()

    def _take(self) -> None:
        metrics = self._worker.metrics()
        now = time.time()
        stored = int(metrics.get("siaga_readings_stored_total", 0))
        published = min(self.total, max(0, int((now - self.started) * self._rate)))
        self.samples.append(
            Sample(
                at_s=now - self.started,
                worker_rss_mib=process_memory_bytes(self._worker.process.pid, "VmRSS") / MIB,
                stored=stored,
                backlog=max(0, published - stored),
                cpu_s={name: process_cpu_s(pid) for name, pid in self._pids.items()},
            )
        )

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            with contextlib.suppress(OSError, ServerError):
                self._take()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with contextlib.suppress(OSError, ServerError):
            self._take()


def _reload_midway(stations_csv: Path, at: float, done: threading.Event) -> threading.Thread:
    """Rewrite the stations CSV (same stations) at ``at``: the worker reloads it live."""

    def touch() -> None:
        if done.wait(max(0.0, at - time.time())):
            return
        stations_csv.write_bytes(stations_csv.read_bytes())
        os.utime(stations_csv)

    thread = threading.Thread(target=touch, name="bench.national-reload", daemon=True)
    thread.start()
    return thread


def run_national(
    stations: int,
    interval_s: float,
    duration_s: float,
    *,
    processes: int = 2,
    index: str = "tsi1",
    health_heartbeat_s: float = 900.0,
    batch_max_points: int | None = None,
    gzip: bool = True,
    directory: Path,
    console: Console,
) -> NationalReport:
    """One national run in ``directory``; see the module's docstring."""
    report = NationalReport(stations, interval_s, duration_s, index)
    report.gzip = gzip
    report.health_heartbeat_s = health_heartbeat_s
    stations_file = write_fleet_stations(
        directory / "fleet.yaml", stations, interval_s=interval_s, as_csv=True
    )
    data_config = ['index-version = "tsi1"'] if index == "tsi1" else []
    database = "siaga_national"
    rate = stations / interval_s
    with (
        MosquittoServer(directory / "mosquitto") as broker,
        InfluxServer(directory / "influxdb", data_config=data_config) as influx,
    ):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SIAGA_")},
            "SIAGA_MQTT__URL": broker.url,
            "SIAGA_MQTT__CLIENT_ID": f"siaga-national-{uuid.uuid4().hex[:8]}",
            "SIAGA_MQTT__LORAWAN": "false",
            "SIAGA_INFLUX__URL": influx.url,
            "SIAGA_INFLUX__DATABASE": database,
            "SIAGA_SPOOL__DIR": str(directory / "spool"),
            "SIAGA_STATIONS__FILE": str(stations_file),
            "SIAGA_STATIONS__DEVICES_FILE": str(directory / "no-devices.yaml"),
            "SIAGA_STATIONS__RELOAD_INTERVAL_S": "1",
            "SIAGA_HEALTH__HEARTBEAT_S": str(health_heartbeat_s),
            "SIAGA_LOG__LEVEL": "INFO",
            "SIAGA_INFLUX__GZIP": "true" if gzip else "false",
        }
        if batch_max_points is not None:
            env["SIAGA_BATCH__MAX_POINTS"] = str(batch_max_points)
        spawned = time.monotonic()
        worker = _Worker(directory, env)
        try:
            wait_until(
                lambda: worker.metrics().get("siaga_mqtt_connected") == 1.0,
                300,
                "siaga ingest to load the registry and subscribe",
            )
            report.worker_start_s = time.monotonic() - spawned
            up = worker.metrics()
            report.registry_load_s = up.get("siaga_registry_load_seconds", 0.0)
            report.registry_load_cpu_s = up.get("siaga_registry_load_cpu_seconds", 0.0)
            report.start_rss_mib = process_memory_bytes(worker.process.pid, "VmRSS") / MIB
            console.print(
                f"worker up in {report.worker_start_s:.1f} s (registry {report.registry_load_s:.2f}"
                f" s), RSS {report.start_rss_mib:.0f} MiB; publishing {rate:,.0f}/s for "
                f"{duration_s:.0f} s"
            )
            pids = {
                "siaga ingest": worker.process.pid,
                "mosquitto": broker.pid,
                "influxd": influx.pid,
            }
            sampler = _Sampler(worker, pids, rate)
            before = worker.metrics()
            start_delay_s = 3.0
            fleet_start = time.time() + start_delay_s
            sampler.start(fleet_start, int(rate * duration_s))
            done = threading.Event()
            reload_thread = _reload_midway(
                stations_file.with_suffix(".csv"), fleet_start + duration_s / 2, done
            )
            try:
                report.fleet = run_fleet(
                    stations,
                    interval_s,
                    duration_s,
                    processes,
                    broker_url=broker.url,
                    start_delay_s=start_delay_s,
                    timestamps="actual",
                )
            finally:
                done.set()
                reload_thread.join()
            published_at = time.time()
            acked = report.fleet.acked
            base = int(before.get("siaga_readings_stored_total", 0))
            wait_until(
                lambda: worker.metrics().get("siaga_readings_stored_total", 0) - base >= acked,
                1200,
                f"the worker to store {acked:,} readings",
            )
            report.drain_s = time.time() - published_at
            sampler.stop()
            report.samples = sampler.samples
            after = worker.metrics()
            report.stored_worker = int(after.get("siaga_readings_stored_total", 0)) - base
            delta = bucket_delta(histogram_buckets(after, LAG), histogram_buckets(before, LAG))
            report.p50_s = histogram_quantile(delta, 0.5)
            report.p99_s = histogram_quantile(delta, 0.99)
            if after.get("siaga_registry_reloads_total", 0) >= 1:
                report.reload_load_s = after.get("siaga_registry_load_seconds")
                report.reload_stall_s = after.get("siaga_registry_reload_stall_seconds")
            first, last = report.samples[0], report.samples[-1]
            wall = max(last.at_s - first.at_s, 1e-9)
            report.cpu_cores = {
                name: (last.cpu_s[name] - first.cpu_s[name]) / wall for name in first.cpu_s
            }
            stored = max(last.stored - first.stored, 1)
            report.cpu_us_per_reading = {
                name: (last.cpu_s[name] - first.cpu_s[name]) / stored * 1e6 for name in first.cpu_s
            }
        finally:
            worker.stop()
        report.stored_influx = _influx_count(
            influx.port, database, 'SELECT count("water_level_cm") FROM "telemetry"'
        )
        report.health_points = _influx_count(
            influx.port, database, 'SELECT count("completeness_pct") FROM "device_health"'
        )
    return report


# -- the report ---------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def report_rows(report: NationalReport) -> list[tuple[str, str, str]]:
    """(what, measured, target and verdict) rows."""
    fleet = report.fleet
    assert fleet is not None
    rss = [s.worker_rss_mib for s in report.samples]
    half = len(rss) // 2
    backlog = [s.backlog for s in report.samples]
    run_s = report.duration_s
    return [
        ("stations", f"{report.stations:,} every {report.interval_s:g} s", ""),
        (
            "registry load in the worker: wall (CPU)",
            f"{report.registry_load_s:.2f} s ({report.registry_load_cpu_s:.2f} s)",
            f"< {TARGET_LOAD_S:g} s: {_verdict(report.registry_load_s < TARGET_LOAD_S)} "
            f"(CPU: {_verdict(report.registry_load_cpu_s < TARGET_LOAD_S)})",
        ),
        ("worker start → subscribed", f"{report.worker_start_s:.1f} s", ""),
        (
            "worker RSS after start",
            f"{report.start_rss_mib:.0f} MiB",
            f"< {TARGET_START_RSS_MIB} MiB: "
            f"{_verdict(report.start_rss_mib < TARGET_START_RSS_MIB)}",
        ),
        (
            "registry reload mid-run: load / event-loop stall",
            "not seen"
            if report.reload_load_s is None
            else f"{report.reload_load_s:.2f} s / {report.reload_stall_s or 0:.3f} s",
            "",
        ),
        (
            "worker RSS over the run: min / first half max / second half max / end",
            f"{min(rss):.0f} / {max(rss[:half] or rss):.0f} / {max(rss[half:]):.0f} / "
            f"{rss[-1]:.0f} MiB",
            "flat once every station reported",
        ),
        (
            "fleet: published / acknowledged / due but unsent",
            f"{fleet.sent:,} / {fleet.acked:,} / {fleet.unsent:,}",
            "",
        ),
        (
            "fleet rate (target)",
            f"{fleet.publish_rate_per_s:,.0f}/s ({fleet.target_rate_per_s:,.0f}/s)",
            f"worst lag {fleet.max_lag_s:.2f} s, at the end {fleet.final_lag_s:.2f} s",
        ),
        (
            "stored (InfluxDB) = published",
            f"{report.stored_influx:,} = {fleet.acked:,}",
            _verdict(report.stored_influx == fleet.acked),
        ),
        ("drain after the last publish", f"{report.drain_s:.1f} s", ""),
        (
            "publish → durable p50 / p99",
            f"{report.p50_s:.2f} s / {report.p99_s:.2f} s",
            f"p99 < {TARGET_P99_S:g} s: {_verdict(report.p99_s < TARGET_P99_S)}",
        ),
        (
            "backlog (published, not durable): median / max",
            f"{sorted(backlog)[len(backlog) // 2]:,} / {max(backlog):,}",
            "flat",
        ),
        (
            "device_health points (per s)",
            f"{report.health_points:,} ({report.health_points / run_s:,.0f}/s)",
            f"heartbeat {report.health_heartbeat_s:g} s; writing every station every "
            f"minute would be {report.stations / 60:,.0f}/s",
        ),
        (
            "CPU, cores",
            ", ".join(f"{name} {cores:.2f}" for name, cores in report.cpu_cores.items()),
            f"InfluxDB index {report.index}, gzip {'on' if report.gzip else 'off'}",
        ),
        (
            "CPU per stored reading",
            ", ".join(f"{name} {us:.1f} µs" for name, us in report.cpu_us_per_reading.items()),
            "",
        ),
    ]


def render_markdown(report: NationalReport) -> str:
    """The report as Markdown: the table, RSS over time, the environment."""
    lines = ["| what | measured | target / note |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in report_rows(report)]
    lines += ["", "RSS and backlog over the run (every ~5 s, thinned to 20 rows):", ""]
    lines += ["| s | worker RSS MiB | stored | backlog |", "|---|---|---|---|"]
    step = max(1, len(report.samples) // 20)
    for sample in report.samples[::step]:
        lines.append(
            f"| {sample.at_s:.0f} | {sample.worker_rss_mib:.0f} | {sample.stored:,} | "
            f"{sample.backlog:,} |"
        )
    lines += ["", *(f"- {k}: {v}" for k, v in report.environment.items())]
    return "\n".join(lines) + "\n"


def print_report(report: NationalReport, console: Console) -> None:
    """The table on the console."""
    table = Table("what", "measured", "target / note", title="siaga bench national")
    for row in report_rows(report):
        table.add_row(*row)
    console.print(table)


def run_national_benchmark(
    stations: int = 100_000,
    interval_s: float = 10.0,
    duration_s: float = 600.0,
    output: Path | None = None,
    *,
    processes: int = 2,
    index: str = "tsi1",
    health_heartbeat_s: float = 900.0,
    batch_max_points: int | None = None,
    gzip: bool = True,
    console: Console | None = None,
) -> NationalReport:
    """Run the national benchmark, print it and optionally write it as Markdown.

    Raises:
        ServerError: A server or the worker failed, or nothing was stored in time.
    """
    if stations < 1 or interval_s <= 0 or duration_s <= 0:
        raise ValueError("stations, interval and duration must be positive")
    if index not in {"tsi1", "inmem"}:
        raise ValueError("index is tsi1 or inmem")
    console = console or Console()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="siaga-national-") as tmp:
        report = run_national(
            stations,
            interval_s,
            duration_s,
            processes=processes,
            index=index,
            health_heartbeat_s=health_heartbeat_s,
            batch_max_points=batch_max_points,
            gzip=gzip,
            directory=Path(tmp),
            console=console,
        )
    report.environment = {
        "machine": f"{os.cpu_count()} CPUs, shared with other engineers' test runs",
        "load average (1 min) before / after": f"{load_before:.2f} / {os.getloadavg()[0]:.2f}",
        "parameters": (
            f"stations={stations}, interval_s={interval_s:g}, duration_s={duration_s:g}, "
            f"processes={processes}, index={index}, health_heartbeat_s={health_heartbeat_s:g}, "
            f"batch_max_points={batch_max_points or 'default'}, gzip={gzip}"
        ),
    }
    print_report(report, console)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_markdown(report))
        console.print(f"report written to {output}")
    return report


def _registry_probe(path: Path) -> dict[str, Any]:
    """Load a registry in this process: seconds and RSS (for ``python -m benchmarks.national``)."""
    from devices.registry import load_registry  # noqa: PLC0415 - measured, so imported late

    started = time.perf_counter()
    registry = load_registry(path)
    return {
        "stations": len(registry.stations()),
        "seconds": round(time.perf_counter() - started, 2),
        "rss_mib": process_memory_bytes(os.getpid(), "VmRSS") // MIB,
    }


if __name__ == "__main__":
    print(json.dumps(_registry_probe(Path(sys.argv[1]))))

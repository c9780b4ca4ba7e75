"""The ingest benchmark: Siaga's sustained rate and latency next to ceilings from the same run.

One run starts its own Mosquitto and InfluxDB in a temporary directory and measures, in order:

1. the broker's C-to-C ceiling: ``mosquitto_pub -l -q 1`` into ``mosquitto_sub -q 1 -C N``;
2. InfluxDB's raw ceiling: pre-built line protocol in batches of 5,000 on one connection;
3. a naive paho-mqtt subscriber (``json.loads`` each message, POST batches of 5,000);
4. Siaga (``siaga ingest`` as a subprocess) at full speed: sustained rate, CPU, memory;
5. Siaga paced at half that rate: publish-to-durable latency (the target is p99 < 1 s);
6. optionally a soak at half rate that samples the worker's memory.

With ``--rounds N`` it measures instead whether the rate holds as data accumulates: N rounds,
each the broker's C-to-C ceiling, the naive subscriber and Siaga, one after the other, every
round into the same databases (one Siaga worker throughout). Readings are back-dated by
``--late-h`` hours (48 by default): a store-and-forward backlog beyond the continuous query's
reach, the case that once cost a rollup per batch. ``--worker-pythonpath`` runs the worker
from another checkout (an older commit) under the same harness.

The publisher is :class:`FleetPublisher`, over the project's raw MQTT publisher
(:mod:`simulators.wire`, speaking MQTT 5): PUBLISH packets built in chunks of a thousand and
sent in one write, PUBACKs counted by a reader thread. Each payload's ``ts`` is its publish time,
so ``siaga_reading_lag_seconds`` is publish-to-durable latency. Process figures come from
``/proc``, so the benchmark runs on Linux only.

Run it as ``siaga bench ingest``; ``python -m benchmarks.ingest naive ...`` is the naive
subscriber the benchmark starts as its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import math
import os
import platform
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from devices.topics import DEFAULT_PREFIX, TopicScheme
from ingest.errors import StorageError
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage
from ops.errors import ServerError
from ops.servers import InfluxServer, MosquittoServer, free_port, require_binary, wait_until
from ops.status import parse_metrics
from simulators.wire import WireError, WirePublisher, encoded_topic, publish_packet

INFLUX_BATCH_POINTS = 5000
TARGET_VS_NAIVE = 2.0
TARGET_VS_BROKER = 0.6
TARGET_P99_HALF_LOAD_S = 1.0
SOAK_RSS_GROWTH = 1.2
TARGET_ROUNDS_VS_BROKER = 0.8
ROUND_DRIFT = 0.15
"""Each round's rate within this fraction of the first round's: steady as data accumulates."""
DEFAULT_LATE_H = 48.0
BROKER_PUBLISHER_INFLIGHT = 1000
PUBLISH_CHUNK = 1000
PUBLISH_WINDOW = 20_000
PUBLISH_ACK_TIMEOUT_S = 120.0
"""A publisher whose broker acknowledges nothing for this long gives up (it once waited on)."""
METRICS_POLL_S = 0.1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_LE_LABEL = re.compile(r'le="([^"]+)"')


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    """Publish-to-durable latency quantiles, interpolated from histogram buckets."""

    p50_s: float
    p99_s: float
    count: int


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """CPU seconds used so far by named processes, and by the whole machine (busy, total)."""

    by_process_s: dict[str, float]
    machine_busy_s: float
    machine_total_s: float

    @classmethod
    def take(cls, pids: dict[str, int | None]) -> CpuSnapshot:
        """Read /proc now; processes that are gone or unknown are left out."""
        by_process: dict[str, float] = {}
        for name, pid in pids.items():
            if pid is not None:
                with contextlib.suppress(OSError):
                    by_process[name] = process_cpu_s(pid)
        # /proc/stat's first line: user nice system idle iowait irq softirq steal ...
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        total = sum(ticks) / _CLOCK_TICKS
        idle = (ticks[3] + ticks[4]) / _CLOCK_TICKS
        return cls(by_process, total - idle, total)

    def since(self, earlier: CpuSnapshot) -> tuple[dict[str, float], float]:
        """CPU seconds per process between two snapshots, and the machine's busy fraction."""
        used = {
            name: value - earlier.by_process_s[name]
            for name, value in self.by_process_s.items()
            if name in earlier.by_process_s
        }
        elapsed = self.machine_total_s - earlier.machine_total_s
        busy = (self.machine_busy_s - earlier.machine_busy_s) / elapsed if elapsed > 0 else 0.0
        return used, busy


@dataclass(frozen=True, slots=True)
class IngestRun:
    """One consumer's run over a number of messages.

    Attributes:
        messages: Messages published (one reading each).
        seconds: From the first publish to the last durable write.
        cpu_s: The consumer process's user + system CPU over the run.
        peak_rss_bytes: The consumer's peak resident memory (VmHWM) so far.
        latency: Publish-to-durable latency, when the consumer measures it.
        publish_rate: What the publisher achieved (messages/s, acknowledged by the broker).
    """

    messages: int
    seconds: float
    cpu_s: float
    peak_rss_bytes: int
    latency: Latency | None = None
    publish_rate: float = 0.0
    offered_rate: float | None = None
    cpu_by_process_s: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    batches: int = 0
    write_s: float = 0.0

    @property
    def rate(self) -> float:
        """Sustained readings per second."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_message(self) -> float:
        """Consumer CPU per message, in microseconds."""
        return self.cpu_s * 1e6 / self.messages if self.messages else 0.0


@dataclass(frozen=True, slots=True)
class Soak:
    """Memory of the worker sampled while it ran at half load."""

    seconds: float
    rate: float
    rss_samples_bytes: list[int]
    latency: Latency


@dataclass(frozen=True, slots=True)
class Round:
    """One round of a multi-round run: the ceilings and Siaga, measured back to back.

    Attributes:
        broker_rate: The broker's C-to-C ceiling (messages/s) in this round.
        naive: The naive paho subscriber in this round (its database keeps earlier rounds').
        siaga: Siaga in this round (one worker and one database for every round).
        stored: Readings in Siaga's database after the round.
        load: The machine's load averages (1, 5, 15 min) when the round ended.
    """

    broker_rate: float
    naive: IngestRun
    siaga: IngestRun
    stored: int
    load: str


@dataclass(slots=True)
class Report:
    """Everything one benchmark run measured."""

    messages: int
    stations: int
    broker_rate: float = 0.0
    broker_trials: list[float] = field(default_factory=list)
    naive_trials: list[float] = field(default_factory=list)
    siaga_trials: list[float] = field(default_factory=list)
    influx_rate: float = 0.0
    naive: IngestRun | None = None
    siaga: IngestRun | None = None
    siaga_half: IngestRun | None = None
    soak: Soak | None = None
    stored_in_influx: int = 0
    expected_in_influx: int = 0
    acknowledged: int = 0
    spooled_batches: int = 0
    environment: dict[str, str] = field(default_factory=dict)
    rounds: list[Round] = field(default_factory=list)
    rollup_metrics: dict[str, float] = field(default_factory=dict)
    rollup_pass: tuple[int, int, float] | None = None
    """After the rounds: hours and statements one background pass recomputed, and its seconds."""


# -- pure helpers -------------------------------------------------------------------------------


def station_ids(count: int) -> list[str]:
    """The benchmark fleet's station ids."""
    return [f"bench-{index:05d}" for index in range(count)]


def stations_yaml(count: int) -> str:
    """A stations file with ``count`` river gauges spread over ten regencies and fifty rivers."""
    lines = [
        "profiles:",
        "  river_gauge:",
        "    water_level_cm: {unit: cm, min: 0, max: 2000}",
        "    battery_v: {unit: V, min: 0, max: 15}",
        "    rssi_dbm: {unit: dBm, min: -150, max: 0}",
        "stations:",
    ]
    for index, station_id in enumerate(station_ids(count)):
        lines += [
            f"  - id: {station_id}",
            f"    name: Bench gauge {index}",
            f"    regency: Regency {index % 10}",
            f"    river: River {index % 50}",
            f"    latitude: {-8 + (index % 100) * 0.01:.2f}",
            f"    longitude: {110 + (index // 100) * 0.01:.2f}",
            "    profile: river_gauge",
        ]
    return "\n".join(lines) + "\n"


def histogram_buckets(metrics: dict[str, float], name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative buckets as ``(upper bound, count)``, ascending, +Inf last."""
    prefix = name + "_bucket{"
    buckets = []
    for key, value in metrics.items():
        if key.startswith(prefix):
            match = _LE_LABEL.search(key)
            if match is not None:
                buckets.append((float(match.group(1)), value))
    return sorted(buckets)


def bucket_delta(
    after: list[tuple[float, float]], before: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The buckets of the observations made between two scrapes."""
    earlier = dict(before)
    return [(bound, count - earlier.get(bound, 0.0)) for bound, count in after]


def histogram_quantile(buckets: Sequence[tuple[float, float]], quantile: float) -> float:
    """A quantile from cumulative buckets, linear within a bucket as Prometheus does.

    Returns the last finite bound when the quantile falls in the +Inf bucket, and NaN when the
    histogram is empty.
    """
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    rank = quantile * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound


def latency_from(buckets: Sequence[tuple[float, float]]) -> Latency:
    """p50 and p99 of a (delta) histogram."""
    return Latency(
        histogram_quantile(buckets, 0.5),
        histogram_quantile(buckets, 0.99),
        int(buckets[-1][1]) if buckets else 0,
    )


def raw_line_protocol(station_count: int, points: int, start_ns: int) -> list[bytes]:
    """Telemetry lines shaped like Siaga's, in request bodies of 5,000 points."""
    series = [
        f"telemetry,regency=Regency\\ {i % 10},river=River\\ {i % 50},station={station_id}"
        for i, station_id in enumerate(station_ids(station_count))
    ]
    bodies = []
    for first in range(0, points, INFLUX_BATCH_POINTS):
        lines = [
            f"{series[k % station_count]} battery_v=3.91,rssi_dbm=-97.0,"
            f"water_level_cm={100 + k % 900}.5,seq={k // station_count}i {start_ns + k * 1000}"
            for k in range(first, min(points, first + INFLUX_BATCH_POINTS))
        ]
        bodies.append(("\n".join(lines) + "\n").encode())
    return bodies


# -- processes ----------------------------------------------------------------------------------


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_memory_bytes(pid: int | str, key: str = "VmHWM") -> int:
    """A memory figure of /proc/<pid>/status (VmHWM: peak resident; VmRSS: resident now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _stop_process(process: subprocess.Popen[Any] | None, timeout_s: float = 15) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _http_get(port: int, path: str, timeout_s: float = 5) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Influx:
    """The few InfluxDB calls the benchmark needs, through Siaga's own backend.

    :class:`~ingest.storage.influx.InfluxStorage` is asynchronous; the benchmark's driver is
    not, so each call runs its own short event loop.
    """

    def __init__(self, port: int) -> None:
        self.port = port

    def query(self, statement: str, database: str | None = None) -> list[dict[str, Any]]:
        """Run one InfluxQL statement (POST); return its series."""

        async def run() -> list[dict[str, Any]]:
            settings = InfluxSettings(
                url=f"http://127.0.0.1:{self.port}",
                database=database or "bench",
                create_database=False,
                timeout_s=60,
            )
            async with InfluxStorage(settings, lambda station: {"station": station}) as storage:
                return await storage.query(statement, write=True)

        try:
            return asyncio.run(run())
        except StorageError as exc:
            raise ServerError(f"InfluxDB: {exc}") from exc

    def count(self, database: str) -> int:
        """Points of ``telemetry`` in ``database`` (each carries ``water_level_cm``)."""
        series = self.query('SELECT count("water_level_cm") FROM telemetry', database)
        return int(series[0]["values"][0][1]) if series else 0


# -- the publisher ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublishStats:
    """What a publisher run did: monotonic start, end (last PUBACK) and messages sent."""

    started: float
    finished: float
    messages: int

    @property
    def rate(self) -> float:
        """Messages per second acknowledged by the broker."""
        elapsed = self.finished - self.started
        return self.messages / elapsed if elapsed > 0 else 0.0


class FleetPublisher:
    """Publishes single-reading QoS 1 messages for a fleet of stations, fast.

    The project's one raw publisher (:class:`simulators.wire.WirePublisher`: MQTT 5 on a raw
    socket, PUBACKs counted by a reader thread) fed a thousand packets at a time. Each chunk
    is encoded once the window has room for it, so every ``ts`` is its publish time. At most
    ``window`` messages are unacknowledged, fewer than the 65,535 packet ids. Subclasses change
    the payload (:meth:`payload`).

    Args:
        port: The broker's port on 127.0.0.1.
        stations: Station ids; message ``k`` goes to ``stations[k % len(stations)]``.
        window: Unacknowledged messages allowed.
        prefix: The topics' first level.
        late_ms: Back-date every reading by this much (a backlog); 0: stamped at publishing.

    Raises:
        ServerError: The broker refused the publisher.
    """

    def __init__(
        self,
        port: int,
        stations: Sequence[str],
        window: int = PUBLISH_WINDOW,
        *,
        prefix: str = DEFAULT_PREFIX,
        late_ms: int = 0,
    ) -> None:
        self._stations = list(stations)
        scheme = TopicScheme(prefix)
        self._topics = [encoded_topic(scheme.telemetry(s)) for s in self._stations]
        self._late_ms = late_ms
        self._last_ts_ms = [0] * len(self._stations)
        try:
            self._wire = WirePublisher(
                "127.0.0.1",
                port,
                window=window,
                client_id=f"siaga-bench-pub-{uuid.uuid4().hex[:8]}",
                protocol=5,  # mosquitto takes MQTT 5 publishes faster than 3.1.1's
            )
        except WireError as exc:
            raise ServerError(f"the publisher: {exc}") from exc

    @property
    def acknowledged(self) -> int:
        """Messages the broker acknowledged so far."""
        return self._wire.acknowledged

    def payload(self, k: int, index: int, ts_ms: int) -> bytes:
        """Message ``k``'s payload, for ``stations[index]`` at ``ts_ms``."""
        return b'{"ts":%d,"seq":%d,"water_level_cm":%d.4,"battery_v":3.91,"rssi_dbm":-97}' % (
            ts_ms,
            k // len(self._stations),
            100 + k % 900,
        )

    def _encode(self, first: int, count: int) -> list[bytes]:
        stations = len(self._stations)
        topics = self._topics
        last_ts = self._last_ts_ms
        payload = self.payload
        properties = self._wire.properties
        now_ms = time.time_ns() // 1_000_000 - self._late_ms
        packets = []
        for k in range(first, first + count):
            index = k % stations
            # Distinct timestamps per station: a reading's identity is (station, ts).
            ts = now_ms if now_ms > last_ts[index] else last_ts[index] + 1
            last_ts[index] = ts
            packets.append(
                publish_packet(topics[index], k % 65535 + 1, payload(k, index, ts), properties)
            )
        return packets

    def publish(
        self,
        count: int,
        rate_per_s: float | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> PublishStats:
        """Publish ``count`` messages, as fast as the broker takes them or at ``rate_per_s``.

        Returns once the broker acknowledged every one of them.

        Raises:
            ServerError: The broker closed the connection, or stopped acknowledging.
        """
        wire = self._wire
        base = wire.sent
        end = base + count
        chunk = PUBLISH_CHUNK
        if rate_per_s is not None:
            chunk = max(1, min(PUBLISH_CHUNK, int(rate_per_s / 100)))
        started = time.monotonic()
        try:
            while wire.sent < end:
                size = min(chunk, end - wire.sent)
                if rate_per_s is not None:
                    # Paced: send a chunk once all of it is due (a burst every ~10 ms).
                    due_at = (wire.sent - base + size) / rate_per_s
                    wait_s = due_at - (time.monotonic() - started)
                    if wait_s > 0:
                        time.sleep(wait_s)
                wire.wait_room(size, PUBLISH_ACK_TIMEOUT_S)
                wire.send(self._encode(wire.sent, size), PUBLISH_ACK_TIMEOUT_S)
                if on_progress is not None:
                    on_progress(wire.sent - base)
            acknowledged = wire.wait_acknowledged(PUBLISH_ACK_TIMEOUT_S)
        except WireError as exc:
            raise ServerError(f"the publisher: {exc}") from exc
        if not acknowledged:
            raise ServerError(f"the publisher: no acknowledgement for {PUBLISH_ACK_TIMEOUT_S:g} s")
        return PublishStats(started, time.monotonic(), count)

    def close(self) -> None:
        """Disconnect."""
        self._wire.close()


# -- the naive subscriber -----------------------------------------------------------------------


class NaiveSubscriber:
    """What a first attempt looks like: paho-mqtt, ``json.loads``, POST every 5,000 lines.

    It acknowledges each message on receipt (paho's default), before the reading is stored, so
    it also does less than Siaga: what it holds when it dies is lost.
    """

    def __init__(
        self, broker_port: int, influx_port: int, database: str, expected: int, prefix: str
    ) -> None:
        self._expected = expected
        self._prefix = prefix
        self._database = database
        self._lines: list[str] = []
        self._opened = 0.0
        self.written = 0
        self.first_message: float | None = None
        self.cpu_at_first = 0.0
        self._http = httpx.Client(base_url=f"http://127.0.0.1:{influx_port}", timeout=60)
        self._client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"siaga-bench-naive-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", broker_port, keepalive=60)

    def _on_connect(
        self,
        client: Client,
        _userdata: Any,
        _flags: ConnectFlags,
        _reason: ReasonCode,
        _properties: Properties | None,
    ) -> None:
        client.subscribe(f"{self._prefix}/+/telemetry", qos=1)

    def _on_subscribe(
        self,
        _client: Client,
        _userdata: Any,
        _mid: int,
        _reasons: list[ReasonCode],
        _properties: Properties | None,
    ) -> None:
        _say("ready")

    def _on_message(self, _client: Client, _userdata: Any, message: MQTTMessage) -> None:
        if self.first_message is None:
            self.first_message = time.monotonic()
            self.cpu_at_first = _own_cpu_s()
        document = json.loads(message.payload)
        station = message.topic.split("/")[1]
        fields = ",".join(
            f"{key}={float(value)!r}" for key, value in document.items() if key not in {"ts", "seq"}
        )
        if not self._lines:
            self._opened = time.monotonic()
        self._lines.append(
            f"telemetry,station={station} {fields},seq={document['seq']}i {document['ts']}"
        )
        if len(self._lines) >= INFLUX_BATCH_POINTS:
            self._flush()

    def _flush(self) -> None:
        body = "\n".join(self._lines) + "\n"
        response = self._http.post(
            "/write", params={"db": self._database, "precision": "ms"}, content=body
        )
        response.raise_for_status()
        self.written += len(self._lines)
        self._lines.clear()
        _say(f"progress {self.written}")

    def run(self) -> None:
        """Loop until every expected reading is written, then report and return."""
        while self.written < self._expected:
            self._client.loop(timeout=0.05)
            if self._lines and time.monotonic() - self._opened >= 0.2:
                self._flush()
        finished = time.monotonic()
        report = {
            "first_message": self.first_message,
            "last_write": finished,
            "written": self.written,
            "cpu_s": _own_cpu_s() - self.cpu_at_first,
            "peak_rss_bytes": process_memory_bytes("self"),
        }
        _say("done " + json.dumps(report))
        self._client.disconnect()
        self._http.close()


def _own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _Lines:
    """Lines from a child's stdout pipe, with a timeout (unbuffered: select sees every byte)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self.closed = False

    def next(self, timeout_s: float) -> str | None:
        """The next line without its newline; None on timeout or at end of file."""
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if self.closed or remaining <= 0:
                return None
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                data = os.read(self._fd, 1 << 16)
                self.closed = not data
                self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()


# -- the benchmark ------------------------------------------------------------------------------


class _Bench:
    """One benchmark run: owns the servers, child processes and the temporary directory."""

    def __init__(
        self,
        messages: int,
        stations: int,
        directory: Path,
        progress: Progress,
        *,
        late_ms: int = 0,
        worker_pythonpath: Path | None = None,
    ) -> None:
        self.messages = messages
        self.late_ms = late_ms
        self.worker_pythonpath = worker_pythonpath
        self.stations = station_ids(stations)
        self.directory = directory
        self.progress = progress
        self.report = Report(messages, stations)
        self.broker = MosquittoServer(directory / "mosquitto")
        self.influx_server = InfluxServer(directory / "influxdb")
        self.influx = Influx(self.influx_server.port)

    @contextlib.contextmanager
    def _phase(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        task: TaskID = self.progress.add_task(description, total=total)

        def update(done: int) -> None:
            self.progress.update(task, completed=done)

        try:
            yield update
        finally:
            self.progress.update(task, completed=total)
            self.progress.stop_task(task)

    def run(self, trials: int, paced_s: float, soak_s: float) -> Report:
        report = self.report
        with self.broker, self.influx_server:
            report.broker_trials = [self.broker_ceiling(i, trials) for i in range(trials)]
            report.broker_rate = max(report.broker_trials)
            report.influx_rate = self.influx_ceiling()
            # Like Siaga's, the naive client's database keeps its series from one trial to the next.
            self.influx.query('CREATE DATABASE "bench_naive"')
            naive = [self.naive_ceiling(i, trials) for i in range(trials)]
            self.influx.query('DROP DATABASE "bench_naive"')
            report.naive_trials = [run.rate for run in naive]
            report.naive = max(naive, key=lambda run: run.rate)
            self.siaga(trials, paced_s, soak_s)
        return report

    def run_rounds(self, rounds: int) -> Report:
        """``rounds`` rounds of broker ceiling, naive subscriber and Siaga, data accumulating."""
        report = self.report
        with self.broker, self.influx_server:
            self.influx.query('CREATE DATABASE "bench_naive"')
            with self._siaga_worker("siaga_bench") as (worker, scrape):
                publisher = FleetPublisher(self.broker.port, self.stations, late_ms=self.late_ms)
                try:
                    for index in range(rounds):
                        broker_rate = self.broker_ceiling(index, rounds)
                        # Another prefix: Siaga's worker, subscribed all along, must not see it.
                        naive = self.naive_ceiling(index, rounds, prefix="naive")
                        label = f"Siaga, round {index + 1}/{rounds}"
                        with self._phase(label, self.messages) as update:
                            run = self._measure(
                                worker, scrape, publisher, rate_per_s=None, update=update
                            )
                        stored = self.influx.count("siaga_bench")
                        report.rounds.append(Round(broker_rate, naive, run, stored, _uptime()))
                finally:
                    publisher.close()
                final = scrape.metrics()
                report.acknowledged = int(final.get("siaga_messages_acknowledged_total", 0))
                report.spooled_batches = int(final.get("siaga_spooled_batches_total", 0))
                report.rollup_pass = self._rollup_pass("siaga_bench")
                report.rollup_metrics = {
                    k.removeprefix("siaga_").removesuffix("_total"): v
                    for k, v in final.items()
                    if k.startswith(("siaga_rollup_", "siaga_batch_points_count"))
                    and not k.endswith("_created")
                }
        report.stored_in_influx = report.rounds[-1].stored if report.rounds else 0
        report.expected_in_influx = rounds * self.messages
        return report

    def _rollup_pass(self, database: str) -> tuple[int, int, float] | None:
        """Run the worker's background rollup pass once, now, over what the rounds left dirty.

        The worker passes every ``influx.rollup_interval_s`` (300 s), so the rounds may not
        include one: this measures its cost on InfluxDB alone. None when the worker at hand
        keeps no dirty marks (an older commit) or the server has no rollups.
        """

        async def run() -> tuple[int, int, float] | None:
            settings = InfluxSettings(
                url=self.influx_server.url,
                database=database,
                create_database=False,
                rollup_settle_s=0,
            )
            async with InfluxStorage(settings, lambda station: {"station": station}) as storage:
                await storage.prepare()
                started = time.monotonic()
                done = await storage.refresh_dirty()
                elapsed = time.monotonic() - started
            return (done.hours, done.statements, elapsed) if done.marks else None

        try:
            return asyncio.run(run())
        except StorageError as exc:
            raise ServerError(f"InfluxDB: {exc}") from exc

    def _pids(self, **more: int) -> dict[str, int | None]:
        return {
            "mosquitto": self.broker.pid,
            "influxd": self.influx_server.pid,
            "publisher (bench)": os.getpid(),
            **more,
        }

    # -- ceilings ---------------------------------------------------------------------------

    def broker_ceiling(self, trial: int, trials: int) -> float:
        """``mosquitto_pub -l -q 1`` into ``mosquitto_sub -q 1 -C N``: messages per second."""
        n = self.messages
        sub_bin, pub_bin = require_binary("mosquitto_sub"), require_binary("mosquitto_pub")
        common = ["-h", "127.0.0.1", "-p", str(self.broker.port), "-q", "1"]
        topic = f"bench/c2c/{uuid.uuid4().hex[:8]}"
        client_id = f"siaga-bench-c2c-{uuid.uuid4().hex[:8]}"
        # Make the persistent session (and its subscription) first, so nothing published
        # before the subscriber is connected is missed.
        subprocess.run(
            [sub_bin, *common, "-c", "-i", client_id, "-t", topic, "-E"], check=True, timeout=30
        )
        payload = (
            b'{"ts":1700000000000,"seq":1,"water_level_cm":182.4,"battery_v":3.91,"rssi_dbm":-97}'
        )
        lines = (payload + b"\n") * n
        subscriber = publisher = None
        try:
            label = f"broker C-to-C, mosquitto_pub → mosquitto_sub ({trial + 1}/{trials})"
            with self._phase(label, 1) as update:
                subscriber = subprocess.Popen(
                    [sub_bin, *common, "-c", "-i", client_id, "-t", topic, "-C", str(n)],
                    stdout=subprocess.DEVNULL,
                )
                # In-flight 1000: libmosquitto's default of 20 starves the link, and windows
                # of 10,000 and more slow it down (its in-flight list is searched linearly).
                publisher = subprocess.Popen(
                    [pub_bin, *common, "-t", topic, "-l", "-M", str(BROKER_PUBLISHER_INFLIGHT)],
                    stdin=subprocess.PIPE,
                )
                assert publisher.stdin is not None
                started = time.monotonic()
                publisher.stdin.write(lines)
                publisher.stdin.flush()
                subscriber.wait(timeout=max(120, n / 1000))
                elapsed = time.monotonic() - started
                # mosquitto_pub -l drops what it still has queued when stdin closes: close last.
                publisher.stdin.close()
                publisher.wait(timeout=30)
                update(1)
            if subscriber.returncode != 0:
                raise ServerError(f"mosquitto_sub exited with {subscriber.returncode}")
        finally:
            _stop_process(subscriber)
            _stop_process(publisher)
        return n / elapsed

    def influx_ceiling(self) -> float:
        """Pre-built line protocol, 5,000 points a request, one keep-alive connection: points/s."""
        database = "bench_raw"
        self.influx.query(f'CREATE DATABASE "{database}"')
        bodies = raw_line_protocol(len(self.stations), self.messages, time.time_ns() - 3600 * 10**9)
        connection = http.client.HTTPConnection("127.0.0.1", self.influx_server.port, timeout=60)
        path = "/write?" + urlencode({"db": database, "precision": "ns"})
        try:
            with self._phase("InfluxDB raw writes", self.messages) as update:
                started = time.monotonic()
                for index, body in enumerate(bodies):
                    connection.request("POST", path, body, {"Content-Type": "text/plain"})
                    response = connection.getresponse()
                    text = response.read()
                    if response.status >= 300:
                        raise ServerError(f"InfluxDB refused a write: {response.status} {text!r}")
                    update((index + 1) * INFLUX_BATCH_POINTS)
                elapsed = time.monotonic() - started
        finally:
            connection.close()
        stored = self.influx.count(database)
        self.influx.query(f'DROP DATABASE "{database}"')
        if stored != self.messages:
            raise ServerError(f"InfluxDB kept {stored} of {self.messages} raw points")
        return self.messages / elapsed

    def naive_ceiling(self, trial: int, trials: int, prefix: str = DEFAULT_PREFIX) -> IngestRun:
        """The naive paho subscriber in its own process, fed by the fleet publisher."""
        database = "bench_naive"
        command = [
            sys.executable, "-m", "benchmarks.ingest", "naive",
            "--broker-port", str(self.broker.port),
            "--influx-port", str(self.influx_server.port),
            "--database", database,
            "--expected", str(self.messages),
            "--prefix", prefix,
        ]  # fmt: skip
        child = subprocess.Popen(command, stdout=subprocess.PIPE, bufsize=0)
        assert child.stdout is not None
        lines = _Lines(child.stdout.fileno())
        publisher = None
        try:
            line = lines.next(30)
            if line != "ready":
                raise ServerError(f"the naive subscriber did not subscribe: {line!r}")
            publisher = FleetPublisher(
                self.broker.port, self.stations, prefix=prefix, late_ms=self.late_ms
            )
            cpu_before = CpuSnapshot.take(self._pids(naive=child.pid))
            label = f"naive paho subscriber ({trial + 1}/{trials})"
            with self._phase(label, self.messages) as update:
                sent = publisher.publish(self.messages)
                done: dict[str, Any] | None = None
                deadline = time.monotonic() + max(300, self.messages / 500)
                while done is None and time.monotonic() < deadline and not lines.closed:
                    line = lines.next(1)
                    if line is None:
                        continue
                    if line.startswith("progress "):
                        update(int(line.split()[1]))
                    elif line.startswith("done "):
                        done = json.loads(line[5:])
            if done is None:
                raise ServerError("the naive subscriber did not finish")
            cpu_used, busy = CpuSnapshot.take(self._pids(naive=child.pid)).since(cpu_before)
            child.wait(30)
        finally:
            if publisher is not None:
                publisher.close()
            _stop_process(child)
        return IngestRun(
            messages=self.messages,
            seconds=done["last_write"] - sent.started,
            cpu_s=done["cpu_s"],
            peak_rss_bytes=done["peak_rss_bytes"],
            publish_rate=sent.rate,
            cpu_by_process_s=cpu_used,
            machine_busy=busy,
        )

    # -- Siaga ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _siaga_worker(self, database: str) -> Iterator[tuple[subprocess.Popen[bytes], _Scraper]]:
        """``siaga ingest`` on the benchmark's servers, subscribed; stopped on the way out."""
        stations_file = self.directory / "stations.yaml"
        stations_file.write_text(stations_yaml(len(self.stations)))
        metrics_port = free_port()
        env = {
            # SIAGA_BATCH__* and SIAGA_INFLUX__ROLLUP* pass through, so that they can be swept.
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("SIAGA_")
                or k.startswith(("SIAGA_BATCH__", "SIAGA_INFLUX__ROLLUP"))
            },
            "SIAGA_MQTT__URL": self.broker.url,
            "SIAGA_MQTT__CLIENT_ID": f"siaga-bench-{uuid.uuid4().hex[:8]}",
            "SIAGA_INFLUX__URL": self.influx_server.url,
            "SIAGA_INFLUX__DATABASE": database,
            "SIAGA_SPOOL__DIR": str(self.directory / "spool"),
            "SIAGA_METRICS__PORT": str(metrics_port),
            "SIAGA_STATIONS__FILE": str(stations_file),
            "SIAGA_LOG__LEVEL": "WARNING",
        }
        if self.worker_pythonpath is not None:
            env["PYTHONPATH"] = str(self.worker_pythonpath)
        log_path = self.directory / "siaga-ingest.log"
        with log_path.open("wb") as log:
            # cwd is the temporary directory: no config/siaga.yaml there, only the environment.
            worker = subprocess.Popen(
                [sys.executable, "-m", "siaga", "ingest"],
                env=env, cwd=self.directory, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            scrape = _Scraper(metrics_port, worker, log_path)
            wait_until(
                lambda: scrape.value("siaga_mqtt_connected") == 1.0, 60, "siaga ingest to subscribe"
            )
            yield worker, scrape
        finally:
            _stop_process(worker)

    def siaga(self, trials: int, paced_s: float, soak_s: float) -> None:
        """Siaga at full speed, then at half that rate; optionally a soak at half rate."""
        database = "siaga_bench"
        with self._siaga_worker(database) as (worker, scrape):
            publisher = FleetPublisher(self.broker.port, self.stations, late_ms=self.late_ms)
            try:
                self._siaga_runs(worker, scrape, publisher, database, trials, paced_s, soak_s)
            finally:
                publisher.close()

    def _siaga_runs(
        self,
        worker: subprocess.Popen[bytes],
        scrape: _Scraper,
        publisher: FleetPublisher,
        database: str,
        trials: int,
        paced_s: float,
        soak_s: float,
    ) -> None:
        runs = []
        for trial in range(trials):
            label = f"Siaga at full speed ({trial + 1}/{trials})"
            with self._phase(label, self.messages) as update:
                runs.append(
                    self._measure(worker, scrape, publisher, rate_per_s=None, update=update)
                )
        self.report.siaga_trials = [run.rate for run in runs]
        self.report.siaga = max(runs, key=lambda run: run.rate)
        self.report.stored_in_influx = self.influx.count(database)
        self.report.expected_in_influx = trials * self.messages
        half_rate = self.report.siaga.rate / 2
        paced = max(1, int(half_rate * paced_s))
        with self._phase(f"Siaga at half load ({half_rate:,.0f}/s)", paced) as update:
            self.report.siaga_half = self._measure(
                worker, scrape, publisher, rate_per_s=half_rate, update=update, count=paced
            )
        if soak_s > 0:
            self.report.soak = self._soak(worker, scrape, publisher, half_rate, soak_s)
        final = scrape.metrics()
        self.report.acknowledged = int(final.get("siaga_messages_acknowledged_total", 0))
        self.report.spooled_batches = int(final.get("siaga_spooled_batches_total", 0))

    def _measure(
        self,
        worker: subprocess.Popen[bytes],
        scrape: _Scraper,
        publisher: FleetPublisher,
        *,
        rate_per_s: float | None,
        update: Callable[[int], None],
        count: int | None = None,
    ) -> IngestRun:
        count = self.messages if count is None else count
        before = scrape.metrics()
        cpu_before = CpuSnapshot.take(self._pids(siaga=worker.pid))
        # Progress shows messages published in a paced run, readings stored otherwise.
        sent = publisher.publish(count, rate_per_s, update if rate_per_s is not None else None)
        finished = scrape.wait_stored(count, update, before)
        cpu_used, busy = CpuSnapshot.take(self._pids(siaga=worker.pid)).since(cpu_before)
        after = scrape.metrics()
        lag = "siaga_reading_lag_seconds"
        delta = bucket_delta(histogram_buckets(after, lag), histogram_buckets(before, lag))
        return IngestRun(
            messages=count,
            seconds=finished - sent.started,
            cpu_s=cpu_used["siaga"],
            peak_rss_bytes=process_memory_bytes(worker.pid),
            latency=latency_from(delta),
            publish_rate=sent.rate,
            offered_rate=rate_per_s,
            cpu_by_process_s=cpu_used,
            machine_busy=busy,
            batches=int(_delta(after, before, "siaga_batch_points_count")),
            write_s=_delta(after, before, "siaga_write_seconds_sum"),
        )

    def _soak(
        self,
        worker: subprocess.Popen[bytes],
        scrape: _Scraper,
        publisher: FleetPublisher,
        rate_per_s: float,
        soak_s: float,
    ) -> Soak:
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(process_memory_bytes(worker.pid, "VmRSS"))
                stop.wait(5)

        count = max(1, int(rate_per_s * soak_s))
        sampler = threading.Thread(target=sample, name="bench.rss-sampler", daemon=True)
        with self._phase(f"soak at {rate_per_s:,.0f}/s for {soak_s:.0f} s", count) as update:
            sampler.start()
            try:
                run = self._measure(
                    worker, scrape, publisher, rate_per_s=rate_per_s, update=update, count=count
                )
            finally:
                stop.set()
                sampler.join()
        samples.append(process_memory_bytes(worker.pid, "VmRSS"))
        assert run.latency is not None
        return Soak(run.seconds, run.rate, samples, run.latency)


class _Scraper:
    """Reads the worker's /metrics."""

    def __init__(self, port: int, worker: subprocess.Popen[bytes], log_path: Path) -> None:
        self._port = port
        self._worker = worker
        self._log_path = log_path

    def _check_alive(self) -> None:
        if self._worker.poll() is not None:
            raise ServerError(
                f"siaga ingest exited with {self._worker.returncode}:\n{self._log_tail()}"
            )

    def metrics(self) -> dict[str, float]:
        """Every sample, or an empty dict while the endpoint is not up."""
        self._check_alive()
        try:
            status, body = _http_get(self._port, "/metrics")
        except OSError:
            return {}
        return parse_metrics(body.decode()) if status == 200 else {}

    def value(self, name: str) -> float | None:
        """One sample's value."""
        return self.metrics().get(name)

    def wait_stored(
        self, count: int, update: Callable[[int], None], before: dict[str, float]
    ) -> float:
        """Poll until ``count`` more readings are stored; the monotonic time that was seen.

        Raises:
            ServerError: Siaga rejected benchmark messages, or stored nothing for a minute.
        """
        base = before.get("siaga_readings_stored_total", 0.0)
        progress_at, last_stored = time.monotonic(), base
        while True:
            metrics = self.metrics()
            seen = time.monotonic()
            stored = metrics.get("siaga_readings_stored_total", 0.0)
            update(int(stored - base))
            if stored >= base + count:
                return seen
            rejected = _rejections(metrics, before)
            if rejected:
                raise ServerError(
                    f"siaga ingest rejected benchmark messages: {rejected}; "
                    f"its log ends:\n{self._log_tail()}"
                )
            if stored > last_stored:
                progress_at, last_stored = seen, stored
            elif seen - progress_at > 60:
                raise ServerError(
                    f"siaga ingest stored nothing for 60 s ({stored - base:.0f} of {count}):\n"
                    f"{self._log_tail()}"
                )
            time.sleep(METRICS_POLL_S)

    def _log_tail(self) -> str:
        return self._log_path.read_text(errors="replace")[-3000:]


def _delta(after: dict[str, float], before: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def _rejections(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    """Rejections counted between two scrapes, by reason."""
    found = {}
    for key, value in after.items():
        if key.startswith("siaga_rejections_total{"):
            new = int(value - before.get(key, 0.0))
            if new:
                found[key.partition("reason=")[2].strip('"}')] = new
    return found


# -- the report ---------------------------------------------------------------------------------


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _mib(value: int) -> str:
    return f"{value / (1 << 20):.0f} MiB"


def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def report_rows(report: Report) -> list[tuple[str, str, str, str, str]]:
    """Rows of (figure, Siaga, ceiling or reference, ratio, target and verdict)."""
    rows: list[tuple[str, str, str, str, str]] = []
    siaga, naive, half = report.siaga, report.naive, report.siaga_half
    if siaga is None or naive is None:
        return rows
    rows.append((
        "sustained readings/s vs naive paho client",
        f"{siaga.rate:,.0f}", f"{naive.rate:,.0f}", f"{siaga.rate / naive.rate:.2f}x",
        f"≥ {TARGET_VS_NAIVE:.0f}x: {_verdict(siaga.rate >= TARGET_VS_NAIVE * naive.rate)}",
    ))  # fmt: skip
    rows.append((
        "sustained readings/s vs broker C-to-C QoS 1",
        f"{siaga.rate:,.0f}", f"{report.broker_rate:,.0f}",
        f"{siaga.rate / report.broker_rate:.0%}",
        f"≥ {TARGET_VS_BROKER:.0%}: "
        f"{_verdict(siaga.rate >= TARGET_VS_BROKER * report.broker_rate)}",
    ))  # fmt: skip
    rows.append((
        "sustained readings/s vs InfluxDB raw points/s",
        f"{siaga.rate:,.0f}", f"{report.influx_rate:,.0f}",
        f"{siaga.rate / report.influx_rate:.0%}", "reference",
    ))  # fmt: skip
    if siaga.latency is not None:
        rows.append((
            "publish→durable p50 / p99 at full speed",
            f"{_seconds(siaga.latency.p50_s)} / {_seconds(siaga.latency.p99_s)}",
            "", "", "backlog included",
        ))  # fmt: skip
    if half is not None and half.latency is not None:
        rows.append((
            f"publish→durable p50 / p99 at half load ({half.offered_rate or 0:,.0f}/s offered)",
            f"{_seconds(half.latency.p50_s)} / {_seconds(half.latency.p99_s)}",
            "", "",
            f"p99 < {TARGET_P99_HALF_LOAD_S:.0f} s: "
            f"{_verdict(half.latency.p99_s < TARGET_P99_HALF_LOAD_S)}",
        ))  # fmt: skip
    rows.append((
        "consumer CPU per message",
        f"{siaga.cpu_us_per_message:.1f} µs", f"{naive.cpu_us_per_message:.1f} µs",
        f"{siaga.cpu_us_per_message / naive.cpu_us_per_message:.2f}x", "lower is better",
    ))  # fmt: skip
    rows.append((
        "consumer peak RSS", _mib(siaga.peak_rss_bytes), _mib(naive.peak_rss_bytes), "", "",
    ))  # fmt: skip
    if report.soak is not None:
        soak = report.soak
        first, last = soak.rss_samples_bytes[0], soak.rss_samples_bytes[-1]
        rows.append((
            f"publish→durable p50 / p99 over a {soak.seconds:.0f} s soak at {soak.rate:,.0f}/s",
            f"{_seconds(soak.latency.p50_s)} / {_seconds(soak.latency.p99_s)}", "", "",
            f"p99 < {TARGET_P99_HALF_LOAD_S:.0f} s: "
            f"{_verdict(soak.latency.p99_s < TARGET_P99_HALF_LOAD_S)}",
        ))  # fmt: skip
        rows.append((
            "worker RSS, start → end of the soak",
            f"{_mib(first)} → {_mib(last)}", "", f"{last / first:.2f}x",
            f"flat (≤ {SOAK_RSS_GROWTH:.1f}x): {_verdict(last <= SOAK_RSS_GROWTH * first)}",
        ))  # fmt: skip
    return rows


def _notes(report: Report) -> list[str]:
    notes = [
        f"{report.messages:,} single-reading QoS 1 messages from {report.stations:,} stations.",
        "best of trials; broker C-to-C: "
        + ", ".join(f"{r:,.0f}/s" for r in report.broker_trials)
        + "; naive: "
        + ", ".join(f"{r:,.0f}/s" for r in report.naive_trials)
        + "; Siaga: "
        + ", ".join(f"{r:,.0f}/s" for r in report.siaga_trials)
        + ".",
    ]
    for label, run in (("full speed", report.siaga), ("half load", report.siaga_half)):
        if run is not None and run.batches:
            notes.append(
                f"Siaga at {label}: {run.batches} batches of {run.messages / run.batches:,.0f} "
                f"readings on average, {run.write_s * 1000 / run.batches:.0f} ms per write."
            )
    if report.siaga is not None and report.naive is not None:
        notes.append(
            f"publisher rate (broker PUBACKs): {report.siaga.publish_rate:,.0f}/s in Siaga's "
            f"run, {report.naive.publish_rate:,.0f}/s in the naive client's."
        )
        notes.append(
            f"after the full-speed runs InfluxDB held {report.stored_in_influx:,} of "
            f"{report.expected_in_influx:,} readings; acknowledged in total: "
            f"{report.acknowledged:,}; "
            f"batches spooled: {report.spooled_batches}."
        )
    if report.soak is not None:
        notes.append(
            "soak RSS samples (MiB): "
            + ", ".join(f"{s / (1 << 20):.0f}" for s in report.soak.rss_samples_bytes)
        )
    return notes


def cpu_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    """Where the machine's CPU went in each run: µs per message by process, and % busy."""
    runs = [
        (name, run)
        for name, run in (
            ("naive client", report.naive),
            ("Siaga, full speed", report.siaga),
            ("Siaga, half load", report.siaga_half),
        )
        if run is not None
    ]
    names: list[str] = []
    for _, run in runs:
        names += [n for n in run.cpu_by_process_s if n not in names]
    header = ["run", *(f"{n} µs/msg" for n in names), "machine busy"]
    rows = [
        [
            label,
            *(
                f"{run.cpu_by_process_s[n] * 1e6 / run.messages:.1f}"
                if n in run.cpu_by_process_s
                else ""
                for n in names
            ),
            f"{run.machine_busy:.0%} of {os.cpu_count()} cores",
        ]
        for label, run in runs
    ]
    return header, rows


ROUND_HEADER = (
    "round", "broker C-to-C /s", "naive paho /s", "Siaga /s", "Siaga ÷ broker",
    "Siaga ÷ naive", "Siaga ÷ round 1", "stored (Siaga's db)", "load 1/5/15 min",
)  # fmt: skip


def round_rows(report: Report) -> list[list[str]]:
    """One row per round: the three rates side by side, ratios, what is stored, the load."""
    if not report.rounds:
        return []
    first = report.rounds[0].siaga.rate
    return [
        [
            str(index + 1),
            f"{r.broker_rate:,.0f}",
            f"{r.naive.rate:,.0f}",
            f"{r.siaga.rate:,.0f}",
            f"{r.siaga.rate / r.broker_rate:.2f}x",
            f"{r.siaga.rate / r.naive.rate:.2f}x",
            f"{r.siaga.rate / first:.2f}",
            f"{r.stored:,}",
            r.load,
        ]
        for index, r in enumerate(report.rounds)
    ]


def round_verdicts(report: Report) -> list[str]:
    """Whether every round met the targets: the broker's ceiling, and steady across rounds."""
    if not report.rounds:
        return []
    first = report.rounds[0].siaga.rate
    low = min(r.siaga.rate / r.broker_rate for r in report.rounds)
    drift = max(abs(r.siaga.rate / first - 1) for r in report.rounds)
    return [
        f"every round ≥ {TARGET_ROUNDS_VS_BROKER:.1f}x the broker's C-to-C ceiling of that round "
        f"(lowest {low:.2f}x): {_verdict(low >= TARGET_ROUNDS_VS_BROKER)}",
        f"every round within {ROUND_DRIFT:.0%} of the first (widest {drift:.0%}): "
        f"{_verdict(drift <= ROUND_DRIFT)}",
        f"Siaga's database held {report.stored_in_influx:,} of "
        f"{report.expected_in_influx:,} readings; acknowledged: {report.acknowledged:,}; "
        f"batches spooled: {report.spooled_batches}.",
        *(
            [
                "one rollup pass over the hours the rounds left dirty (what the worker does "
                "every influx.rollup_interval_s, off the acknowledgement path), run after the "
                f"rounds: {report.rollup_pass[0]} hours in {report.rollup_pass[1]} statements, "
                f"{report.rollup_pass[2]:.1f} s"
            ]
            if report.rollup_pass is not None
            else []
        ),
        *(
            [
                "worker counters at the end: "
                + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(report.rollup_metrics.items()))
            ]
            if report.rollup_metrics
            else []
        ),
    ]


def render_rounds_markdown(report: Report) -> str:
    """A multi-round report as a Markdown document."""
    return "\n".join([
        "# Siaga ingest benchmark, rounds into one database",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in report.environment.items()),
        "",
        f"| {' | '.join(ROUND_HEADER)} |",
        "|---|" + "---:|" * (len(ROUND_HEADER) - 2) + "---|",
        *(f"| {' | '.join(row)} |" for row in round_rows(report)),
        "",
        *(f"- {line}" for line in round_verdicts(report)),
        "",
    ])  # fmt: skip


def print_rounds(report: Report, console: Console) -> None:
    """A multi-round report as a rich table."""
    table = Table(title="Siaga ingest benchmark, rounds into one database")
    for index, name in enumerate(ROUND_HEADER):
        table.add_column(name, justify="left" if index in {0, len(ROUND_HEADER) - 1} else "right")
    for row in round_rows(report):
        table.add_row(*row)
    console.print(table)
    for line in round_verdicts(report):
        console.print(f"• {line}")


def render_markdown(report: Report) -> str:
    """The report as a Markdown document."""
    lines = [
        "# Siaga ingest benchmark",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in report.environment.items()),
        "",
        "| figure | Siaga | ceiling / reference | ratio | target |",
        "|---|---:|---:|---:|---|",
        *(f"| {' | '.join(row)} |" for row in report_rows(report)),
        "",
        *_markdown_cpu(report),
        *(f"- {note}" for note in _notes(report)),
        "",
    ]
    return "\n".join(lines)


def _markdown_cpu(report: Report) -> list[str]:
    header, rows = cpu_rows(report)
    return [
        "CPU per message by process, from the first publish to the last durable write:",
        "",
        f"| {' | '.join(header)} |",
        "|---|" + "---:|" * (len(header) - 1),
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
    ]


def print_report(report: Report, console: Console) -> None:
    """The report as a rich table."""
    table = Table(title="Siaga ingest benchmark")
    for name, justify in (
        ("figure", "left"), ("Siaga", "right"), ("ceiling / reference", "right"),
        ("ratio", "right"), ("target", "left"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in report_rows(report):
        table.add_row(*row)
    console.print(table)
    header, cpu = cpu_rows(report)
    cpu_table = Table(title="CPU per message by process")
    for index, name in enumerate(header):
        cpu_table.add_column(name, justify="left" if index == 0 else "right")
    for cells in cpu:
        cpu_table.add_row(*cells)
    console.print(cpu_table)
    for note in _notes(report):
        console.print(f"• {note}")


def _first_line_of(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def _source_version(checkout: Path | None = None) -> str:
    git = ["git", "-C", str(checkout or Path(__file__).resolve().parents[1])]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (" with uncommitted changes" if changes else "")


def _environment() -> dict[str, str]:

    cpu = "?"
    with contextlib.suppress(OSError):
        cpu = next(
            (line.split(":", 1)[1].strip()
             for line in Path("/proc/cpuinfo").read_text().splitlines()
             if line.startswith("model name")),
            "?",
        )  # fmt: skip
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "siaga": _source_version(),
        "machine": f"{os.cpu_count()} x {cpu}, {platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "mosquitto": _first_line_of([require_binary("mosquitto"), "-h"]),
        "influxd": _first_line_of([require_binary("influxd"), "version"]),
    }


def _uptime() -> str:
    """The load averages over 1, 5 and 15 minutes, as ``uptime`` prints them."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "?"


def _load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


@contextlib.contextmanager
def _cleanup_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM into SystemExit, so servers and child processes are stopped on the way out."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_ingest_benchmark(
    messages: int,
    stations: int,
    output: Path | None,
    *,
    trials: int = 2,
    paced_s: float = 20.0,
    soak_s: float = 60.0,
    rounds: int = 0,
    late_h: float | None = None,
    worker_pythonpath: Path | None = None,
    console: Console | None = None,
) -> None:
    """Measure Siaga's ingest against its ceilings in one run; print and optionally save a report.

    Args:
        messages: Messages (one reading each) per full-speed run and per ceiling.
        stations: Stations in the fleet (and in the generated stations file).
        output: Where to write the report as Markdown.
        trials: Runs of each ceiling and of Siaga at full speed; the best of each counts.
        paced_s: How long the half-load latency run publishes.
        soak_s: Then publish at half load this long, sampling the worker's memory every 5 s
            (0 skips it). A minute covers the worker's once-a-minute background work.
        rounds: Instead of the above, this many rounds of broker ceiling, naive subscriber and
            Siaga, all into the same databases (0: the single run above).
        late_h: Back-date readings by this many hours; default 48 with ``rounds``, else 0.
        worker_pythonpath: Run ``siaga ingest`` from this checkout (another commit).
        console: Where progress and the table go.

    Raises:
        ServerError: A server or a child process failed, or a count did not add up.
    """
    if messages < 1 or stations < 1 or trials < 1 or rounds < 0:
        raise ValueError("messages, stations and trials must be positive")
    if late_h is None:
        late_h = DEFAULT_LATE_H if rounds else 0.0
    console = console or Console()
    load_before = _load_average()
    with _cleanup_on_sigterm(), tempfile.TemporaryDirectory(prefix="siaga-bench-") as tmp:
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        with progress:
            bench = _Bench(
                messages,
                stations,
                Path(tmp),
                progress,
                late_ms=int(late_h * 3_600_000),
                worker_pythonpath=worker_pythonpath,
            )
            report = bench.run_rounds(rounds) if rounds else bench.run(trials, paced_s, soak_s)
    report.environment = _environment()
    if worker_pythonpath is not None:
        report.environment["worker"] = f"{worker_pythonpath} ({_source_version(worker_pythonpath)})"
    report.environment["load average (1 min) before / after"] = f"{load_before} / {_load_average()}"
    report.environment["parameters"] = (
        f"messages={messages}, stations={stations}, rounds={rounds}, late_h={late_h:g}"
        if rounds
        else f"messages={messages}, stations={stations}, trials={trials}, paced_s={paced_s:g}, "
        f"soak_s={soak_s:g}, late_h={late_h:g}"
    )
    if rounds:
        print_rounds(report, console)
    else:
        print_report(report, console)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_rounds_markdown(report) if rounds else render_markdown(report))
        console.print(f"report written to {output}")


# -- entry point for the benchmark's own child processes ----------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.ingest naive ...`` (started by the benchmark) or ``run ...``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ingest")
    commands = parser.add_subparsers(dest="command", required=True)
    naive = commands.add_parser("naive", help="the naive paho subscriber (internal)")
    naive.add_argument("--broker-port", type=int, required=True)
    naive.add_argument("--influx-port", type=int, required=True)
    naive.add_argument("--database", required=True)
    naive.add_argument("--expected", type=int, required=True)
    naive.add_argument("--prefix", default=DEFAULT_PREFIX)
    run = commands.add_parser("run", help="the whole benchmark, with the extra knobs")
    run.add_argument("--messages", type=int, default=200_000)
    run.add_argument("--stations", type=int, default=1000)
    run.add_argument("--output", type=Path, default=None)
    run.add_argument("--trials", type=int, default=2)
    run.add_argument("--paced-s", type=float, default=20.0)
    run.add_argument("--soak-s", type=float, default=60.0)
    run.add_argument("--rounds", type=int, default=0)
    run.add_argument("--late-h", type=float, default=None)
    run.add_argument("--worker-pythonpath", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.command == "naive":
        NaiveSubscriber(
            args.broker_port, args.influx_port, args.database, args.expected, args.prefix
        ).run()
    else:
        run_ingest_benchmark(
            args.messages,
            args.stations,
            args.output,
            trials=args.trials,
            paced_s=args.paced_s,
            soak_s=args.soak_s,
            rounds=args.rounds,
            late_h=args.late_h,
            worker_pythonpath=args.worker_pythonpath,
        )


if __name__ == "__main__":
    main()

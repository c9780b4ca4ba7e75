"""The ingest worker's CPU per message, in process: no broker, no database, no other load.

The wall-clock benchmark (:mod:`benchmarks.ingest`) needs a quiet machine; this one counts CPU
seconds, which a busy machine inflates far less. It runs the worker's real hot path in one
event loop: the MQTT client's protocol parses pre-encoded PUBLISH packets fed in 64 KiB reads
(as the socket gives them), the worker validates and batches them, :class:`InfluxStorage`
encodes each batch as line protocol with dirty-hour marks and gzips it, an httpx mock
transport answers 204, the worker acknowledges (PUBACKs to a fake transport) and the health
observer sees every reading. The messages are those of ``siaga bench ingest``: single-reading
native JSON, back-dated by ``late_h`` hours.

Run it as ``siaga bench ingest-cpu``; ``--profile FILE`` writes a cProfile of one run.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.ingest import station_ids, stations_yaml
from devices import TopicScheme
from devices.registry import load_registry
from ingest.batch import BatchPolicy
from ingest.health import HealthRecorder
from ingest.metrics import IngestMetrics
from ingest.mqtt.client import ConnectOptions, MqttSubscriber, _Protocol
from ingest.mqtt.codec import encode_publish
from ingest.retry import RetryPolicy
from ingest.settings import BatchSettings, InfluxSettings
from ingest.spool import Spool
from ingest.storage.influx import InfluxStorage, registry_tags
from ingest.validation import Limits, Validator
from ingest.worker import IngestWorker

READ_BYTES = 65536
"""Bytes per socket read handed to the protocol (asyncio's selector transport reads 256 KiB at
most; a busy broker connection gives reads of tens of KiB)."""


@dataclass(frozen=True, slots=True)
class CpuRun:
    """One run: messages through the worker and the CPU they took."""

    messages: int
    cpu_s: float
    wall_s: float

    @property
    def cpu_us_per_message(self) -> float:
        """CPU microseconds per message."""
        return self.cpu_s / self.messages * 1e6


def publish_stream(messages: int, stations: int, late_h: float, prefix: str = "siaga") -> bytes:
    """The PUBLISH packets of ``siaga bench ingest``'s fleet, as a broker would send them."""
    ids = station_ids(stations)
    topics = [f"{prefix}/{s}/telemetry".encode() for s in ids]
    start_ms = time.time_ns() // 1_000_000 - int(late_h * 3_600_000)
    packets = []
    for k in range(messages):
        index = k % stations
        ts = start_ms + k // stations
        payload = b'{"ts":%d,"seq":%d,"water_level_cm":%d.4,"battery_v":3.91,"rssi_dbm":-97}' % (
            ts,
            k // stations,
            100 + k % 900,
        )
        packets.append(encode_publish(topics[index], payload, k % 65535 + 1))
    return b"".join(packets)


class _Transport(asyncio.Transport):
    """The socket's side the protocol writes PUBACKs to; counts them."""

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.acked = 0
        self.expected = expected
        self.all_acked = asyncio.Event()
        self.paused = False
        self.resumed = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.acked += len(data) // 4
        if self.acked >= self.expected:
            self.all_acked.set()

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.paused = True
        self.resumed.clear()

    def resume_reading(self) -> None:
        self.paused = False
        self.resumed.set()

    def close(self) -> None:
        pass


class _Subscriber(MqttSubscriber):
    """The real subscriber's consumer side, fed by :func:`_feed` instead of a socket."""

    def __init__(self, options: ConnectOptions) -> None:
        super().__init__(options)
        self.closed = asyncio.Event()

    async def run(self) -> None:
        await self.closed.wait()

    async def disconnect(self, timeout_s: float = 5.0) -> None:
        self.closed.set()


async def _feed(protocol: _Protocol, transport: _Transport, stream: bytes) -> None:
    view = memoryview(stream)
    for offset in range(0, len(stream), READ_BYTES):
        while transport.paused:
            await transport.resumed.wait()
        protocol.data_received(bytes(view[offset : offset + READ_BYTES]))
        await asyncio.sleep(0)


async def _run_once(stream: bytes, messages: int, stations: int, directory: Path) -> CpuRun:
    stations_file = directory / "stations.yaml"
    stations_file.write_text(stations_yaml(stations))
    registry = load_registry(stations_file)
    gc.freeze()  # as run_ingest does after loading the registry
    limits = Limits()
    validator = Validator(registry, TopicScheme("siaga"), limits)
    metrics = IngestMetrics()
    batch = BatchSettings()
    options = ConnectOptions("localhost", 1883, "bench-cpu", ("siaga/+/telemetry",))
    subscriber = _Subscriber(options)
    transport = _Transport(messages)
    protocol = _Protocol(subscriber, 1)
    protocol.connection_made(transport)
    subscriber._protocol = protocol
    subscriber._generation = 1

    def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(204)

    settings = InfluxSettings(url="http://influx.invalid:8086", database="bench")
    retry = RetryPolicy(initial_s=0.01, max_s=0.1, deadline_s=1.0)
    spool = Spool(directory / "spool", 1 << 30, 1 << 26)
    async with InfluxStorage(
        settings, registry_tags(registry), transport=httpx.MockTransport(answer)
    ) as storage:
        storage.rollups_ready = True  # back-dated readings write dirty-hour marks, as live
        health = HealthRecorder(registry, storage, 60.0, heartbeat_s=600.0)
        worker = IngestWorker(
            subscriber,
            storage,
            spool,
            validator,
            metrics,
            batch_policy=BatchPolicy.from_settings(batch),
            write_retry=retry,
            drain_retry=retry,
            loop_restart=retry,
            max_batches_in_flight=batch.max_batches_in_flight,
            observers=[health.observe],
            spool_warn_fraction=0.5,
            idle_flush_s=batch.idle_flush_s,
            idle_flush_max_messages=batch.idle_flush_max_messages,
        )
        stop = asyncio.Event()
        cpu, wall = time.process_time(), time.perf_counter()
        async with asyncio.TaskGroup() as group:
            group.create_task(worker.run(stop))
            await worker.ready.wait()
            group.create_task(_feed(protocol, transport, stream))
            await transport.all_acked.wait()
            stop.set()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    spool.close()
    stored = metrics.readings_stored._value.get()
    if stored != messages or transport.acked != messages:
        raise AssertionError(f"{stored} readings stored, {transport.acked} acknowledged")
    return CpuRun(messages, cpu, wall)


def measure(
    messages: int = 100_000,
    stations: int = 1000,
    repeats: int = 5,
    late_h: float = 48.0,
    profile: Path | None = None,
    say: Callable[[str], Any] = print,
) -> list[CpuRun]:
    """Run the worker over ``messages`` messages ``repeats`` times; the median is the figure."""
    stream = publish_stream(messages, stations, late_h)
    runs = []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory(prefix="siaga-bench-cpu-") as directory:
            if profile is not None and repeat == repeats - 1:
                profiler = cProfile.Profile()
                profiler.enable()
                run = asyncio.run(_run_once(stream, messages, stations, Path(directory)))
                profiler.disable()
                profiler.dump_stats(profile)
            else:
                run = asyncio.run(_run_once(stream, messages, stations, Path(directory)))
        runs.append(run)
        say(
            f"run {repeat + 1}: {run.messages:,} messages, {run.cpu_s:.3f} s CPU, "
            f"{run.cpu_us_per_message:.2f} µs/message ({run.wall_s:.3f} s wall)"
        )
    plain = runs[:-1] if profile is not None and len(runs) > 1 else runs
    median = statistics.median(r.cpu_us_per_message for r in plain)
    best = min(r.cpu_us_per_message for r in plain)
    say(f"median {median:.2f} µs CPU per message (best {best:.2f})")
    return runs

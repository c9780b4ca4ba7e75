"""The worker's Prometheus metrics, in a registry of its own (one per worker)."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from devices import Reason

LAG_BUCKETS_S = (
    0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0,
    3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
)  # fmt: skip


class BulkHistogram(Collector):
    """A histogram that takes many observations in one call (one lock, no per-value objects).

    Args:
        name: Metric name, without ``_bucket``/``_sum``/``_count``.
        documentation: Help text.
        buckets: Upper bounds, ascending; +Inf is added.
    """

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = list(buckets)
        self._counts = [0] * (len(self._bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe_many(self, values: Iterable[float]) -> None:
        """Record each value."""
        bounds = self._bounds
        counts = [0] * len(self._counts)
        total = 0.0
        for value in values:
            counts[bisect.bisect_left(bounds, value)] += 1
            total += value
        with self._lock:
            for index, count in enumerate(counts):
                self._counts[index] += count
            self._sum += total

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """Export cumulative buckets."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative = []
        running = 0
        for bound, count in zip([*self._bounds, float("inf")], counts, strict=True):
            running += count
            cumulative.append((str(bound) if bound != float("inf") else "+Inf", running))
        family = HistogramMetricFamily(self._name, self._documentation)
        family.add_metric([], cumulative, total)
        yield family


class IngestMetrics:
    """Counters and gauges of one ingest worker."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages_received = Counter(
            "siaga_messages_received", "MQTT messages received", registry=r
        )
        self.readings_received = Counter(
            "siaga_readings_received", "Readings decoded from messages (valid or not)", registry=r
        )
        self.readings_stored = Counter(
            "siaga_readings_stored", "Readings made durable (InfluxDB or spool)", registry=r
        )
        self.rejections = Counter(
            "siaga_rejections", "Rejected inputs by reason", ["reason"], registry=r
        )
        self.messages_acked = Counter(
            "siaga_messages_acknowledged", "QoS 1 messages acknowledged to the broker", registry=r
        )
        self.batch_points = Histogram(
            "siaga_batch_points",
            "Entries per flushed batch",
            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000, 50000),
            registry=r,
        )
        self.write_seconds = Histogram(
            "siaga_write_seconds",
            "Time to write one batch to storage",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.reading_lag = BulkHistogram(
            "siaga_reading_lag_seconds",
            "From a reading's own time to the moment it was durable",
            LAG_BUCKETS_S,
        )
        r.register(self.reading_lag)
        self.storage_failures = Counter(
            "siaga_storage_write_failures", "Failed write attempts to storage", registry=r
        )
        self.spool_records = Gauge(
            "siaga_spool_records", "Batches waiting in the spool", registry=r
        )
        self.spool_bytes = Gauge("siaga_spool_bytes", "Bytes used by the spool", registry=r)
        self.spool_budget_bytes = Gauge(
            "siaga_spool_budget_bytes", "The spool's disk budget", registry=r
        )
        self.spooled_batches = Counter(
            "siaga_spooled_batches", "Batches written to the spool", registry=r
        )
        self.spool_full = Counter(
            "siaga_spool_full", "Times a batch waited because the spool was full", registry=r
        )
        self.mqtt_connected = Gauge(
            "siaga_mqtt_connected", "1 while subscribed to the broker", registry=r
        )
        self.mqtt_reconnects = Counter(
            "siaga_mqtt_reconnects", "Connection attempts after a loss", registry=r
        )
        self.storage_up = Gauge(
            "siaga_storage_up", "1 while the last storage write succeeded", registry=r
        )
        self.registry_reloads = Counter(
            "siaga_registry_reloads", "Registry reloads picked up while running", registry=r
        )
        self.registry_load_seconds = Gauge(
            "siaga_registry_load_seconds", "Time the last registry (re)load took", registry=r
        )
        self.registry_load_cpu_seconds = Gauge(
            "siaga_registry_load_cpu_seconds",
            "CPU time the start-up registry load took (on a busy machine, below its wall time)",
            registry=r,
        )
        self.registry_stall_seconds = Gauge(
            "siaga_registry_reload_stall_seconds",
            "The longest the event loop stalled during the last registry reload",
            registry=r,
        )
        self.registry_stations = Gauge(
            "siaga_registry_stations", "Stations in the registry in use", registry=r
        )
        self.batch_flushes = Counter(
            "siaga_batch_flushes",
            "Batches flushed, by cause: size, age, idle (input idle, acks pending), stop",
            ["cause"],
            registry=r,
        )
        self.storage_errors = Counter(
            "siaga_storage_errors",
            "Storage failures by kind (unavailable: retryable; auth, refused...: permanent)",
            ["kind"],
            registry=r,
        )
        self.ready = Gauge(
            "siaga_ready", "0 while storage refuses writes for a lasting reason", registry=r
        )
        self.ready.set(1)
        self.loop_restarts = Counter(
            "siaga_loop_restarts",
            "Secondary loops (health, registry watch) restarted after a failure",
            ["loop"],
            registry=r,
        )
        self.spool_quarantined_bytes = Counter(
            "siaga_spool_quarantined_bytes",
            "Unreadable spool bytes moved to quarantine files",
            registry=r,
        )
        self.spool_damaged = Counter(
            "siaga_spool_damaged_records",
            "Damaged spool records moved to quarantine: batches no longer drained (siaga spool "
            "inspect | replay shows and stores what of them is still readable)",
            registry=r,
        )
        self.rollup_marks = Counter(
            "siaga_rollup_dirty_marks",
            "Dirty (hour, station) marks written with late readings",
            registry=r,
        )
        self.rollup_marks_coalesced = Counter(
            "siaga_rollup_dirty_marks_coalesced",
            "Dirty (hour, station) pairs folded into whole-hour marks (a batch over its bound)",
            registry=r,
        )
        self.rollup_hours = Counter(
            "siaga_rollup_hours_recomputed",
            "Hours of the hourly rollup recomputed in the background for late readings",
            registry=r,
        )
        self.rollup_pass_seconds = Counter(
            "siaga_rollup_pass_seconds",
            "Seconds spent in background rollup passes (InfluxDB aggregating late hours)",
            registry=r,
        )
        self.rollup_passes = Counter(
            "siaga_rollup_passes",
            "Background rollup passes that finished, with or without dirty hours to recompute",
            registry=r,
        )
        self.rollup_failures = Counter(
            "siaga_rollup_pass_failures",
            "Background rollup passes that failed (tried again next interval)",
            registry=r,
        )
        for reason in Reason:
            self.rejections.labels(reason.value)

    def set_mqtt_connected(self, connected: bool) -> None:
        """Record a change of the broker connection's state."""
        self.mqtt_connected.set(int(connected))
        if not connected:
            self.mqtt_reconnects.inc()

    def count_rejections(self, reasons: Iterable[Reason]) -> None:
        """Count rejections, one increment per reason present."""
        tally: dict[Reason, int] = {}
        for reason in reasons:
            tally[reason] = tally.get(reason, 0) + 1
        for reason, count in tally.items():
            self.rejections.labels(reason.value).inc(count)

    def rejected_total(self, reason: Reason) -> float:
        """How many rejections of this reason were counted (for tests and summaries)."""
        value = self.registry.get_sample_value("siaga_rejections_total", {"reason": reason.value})
        return value or 0.0

    def serve(self, host: str, port: int) -> tuple[WSGIServer, threading.Thread]:
        """Serve ``/metrics`` over HTTP in a background thread; port 0 picks a free one."""
        server, thread = start_http_server(port, addr=host, registry=self.registry)
        return server, thread

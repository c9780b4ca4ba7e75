"""The worker's Prometheus metrics, in a registry of its own (one per worker)."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from devices import Reason


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
        self.storage_failures = Counter(
            "siaga_storage_write_failures", "Failed write attempts to storage", registry=r
        )
        self.spool_records = Gauge("siaga_spool_records", "Batches waiting in the spool", registry=r)
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

"""Builds a worker from the settings tree and runs it until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
import time
from collections.abc import Mapping, Sequence

from devices import TopicScheme
from devices.registry import Registry, load_registry, registry_files
from devices.topics import LORAWAN_FILTERS
from ingest.batch import BatchPolicy
from ingest.errors import ConfigError, StorageError
from ingest.health import HealthRecorder
from ingest.metrics import IngestMetrics
from ingest.mqtt.client import ConnectOptions, MqttSubscriber
from ingest.registry_watch import RegistryWatcher
from ingest.retry import RetryPolicy
from ingest.settings import Settings
from ingest.spool import Spool
from ingest.storage.influx import InfluxStorage, registry_tags
from ingest.validation import Limits, Validator
from ingest.worker import IngestWorker, Observer

log = logging.getLogger(__name__)


def connect_options(settings: Settings) -> ConnectOptions:
    """The MQTT subscriber's options, from the settings."""
    mqtt = settings.mqtt
    topics = TopicScheme(mqtt.topic_prefix)
    filters = [topics.subscription(None)]
    if mqtt.lorawan:
        filters += LORAWAN_FILTERS
    if mqtt.shared_group:
        filters = [f"$share/{mqtt.shared_group}/{f}" for f in filters]
    return ConnectOptions(
        host=mqtt.host,
        port=mqtt.port,
        client_id=mqtt.client_id,
        topic_filters=tuple(filters),
        username=mqtt.username,
        password=mqtt.password.get_secret_value().encode() if mqtt.password else None,
        keepalive_s=mqtt.keepalive_s,
        session_expiry_s=mqtt.session_expiry_s,
        receive_maximum=mqtt.receive_maximum,
        connect_timeout_s=mqtt.connect_timeout_s,
        tls=ssl.create_default_context(cafile=mqtt.ca_file) if mqtt.tls else None,
        reconnect=RetryPolicy(
            initial_s=mqtt.reconnect_initial_s, max_s=mqtt.reconnect_max_s, deadline_s=None
        ),
    )


async def run_ingest(
    settings: Settings,
    stop: asyncio.Event | None = None,
    observers: Sequence[Observer] = (),
    metrics: IngestMetrics | None = None,
) -> None:
    """Run an ingest worker until ``stop`` is set or the process gets SIGTERM/SIGINT.

    Raises:
        ConfigError: The station file or spool directory is unusable.
    """

    def load() -> Registry:
        return load_registry(settings.stations.file, settings.stations.devices_file)

    loading, loading_cpu = time.perf_counter(), time.process_time()
    try:
        registry = load()
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    load_s, load_cpu_s = time.perf_counter() - loading, time.process_time() - loading_cpu
    # A national registry is a million long-lived objects: keep them out of the cyclic
    # collector's full passes, which otherwise walk them all and stall the event loop.
    gc.freeze()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    metrics = metrics or IngestMetrics()
    if settings.metrics.enabled:
        server, _ = metrics.serve(settings.metrics.host, settings.metrics.port)
        log.info("metrics on http://%s:%d/metrics", settings.metrics.host, server.server_port)
    validator = Validator(
        registry,
        TopicScheme(settings.mqtt.topic_prefix),
        Limits(
            max_payload_bytes=settings.validation.max_payload_bytes,
            max_readings_per_message=settings.validation.max_readings_per_message,
            max_future_s=settings.validation.max_future_s,
            max_age_s=settings.max_age_s,
        ),
    )
    spool = Spool(settings.spool.dir, settings.spool.max_bytes, settings.spool.segment_bytes)
    subscriber = MqttSubscriber(connect_options(settings), on_state=metrics.set_mqtt_connected)
    current = [registry]
    metrics.registry_stations.set(len(registry.stations()))
    metrics.registry_load_seconds.set(load_s)
    metrics.registry_load_cpu_seconds.set(load_cpu_s)
    log.info(
        "registry: %d stations loaded in %.2f s (%.2f s of CPU)",
        len(registry.stations()),
        load_s,
        load_cpu_s,
    )

    def station_tags(station_id: str) -> Mapping[str, str]:
        return registry_tags(current[0])(station_id)

    async with InfluxStorage(settings.influx, station_tags) as storage:
        health = HealthRecorder(
            registry,
            storage,
            settings.health.interval_s,
            heartbeat_s=settings.health.heartbeat_s,
        )

        def apply(new: Registry) -> None:
            current[0] = new
            validator.use_registry(new)
            storage.encoder.forget_stations()
            health.tracker.use_registry(new)
            metrics.registry_reloads.inc()
            metrics.registry_stations.set(len(new.stations()))
            gc.freeze()

        watcher = RegistryWatcher(
            lambda: registry_files(settings.stations.file, settings.stations.devices_file),
            load,
            apply,
            settings.stations.reload_interval_s,
            metrics,
        )
        await _prepare_storage(storage)
        worker = IngestWorker(
            subscriber,
            storage,
            spool,
            validator,
            metrics,
            batch_policy=BatchPolicy(settings.batch.max_points, settings.batch.flush_interval_s),
            write_retry=RetryPolicy(
                initial_s=0.05, max_s=1.0, deadline_s=settings.influx.write_retry_deadline_s
            ),
            max_batches_in_flight=settings.batch.max_batches_in_flight,
            observers=[health.observe, *observers] if settings.health.enabled else observers,
            spool_warn_fraction=settings.spool.warn_fraction,
        )
        try:
            companions = {"registry-watch": watcher.run}
            if settings.health.enabled:
                companions["health"] = health.run
            await worker.run(stop, companions)
        finally:
            spool.close()


async def _prepare_storage(storage: InfluxStorage) -> None:
    """Create the database if it can be reached now; otherwise the spool covers the outage."""
    try:
        await storage.prepare()
    except StorageError as exc:
        log.warning(
            "could not prepare InfluxDB now (%s); readings will spool until it answers", exc
        )

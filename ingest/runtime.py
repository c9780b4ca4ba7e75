"""Builds a worker from the settings tree and runs it until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import shutil
import signal
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

import httpx

from devices import TopicScheme
from devices.registry import Registry, load_registry, registry_files
from devices.topics import LORAWAN_FILTERS
from ingest.batch import BatchPolicy
from ingest.errors import BrokerUnsuitableError, ConfigError, StorageError
from ingest.health import HealthRecorder
from ingest.metrics import IngestMetrics
from ingest.mqtt.client import ConnectOptions, MqttSubscriber
from ingest.registry_watch import RegistryWatcher
from ingest.retry import RetryPolicy
from ingest.settings import InfluxSettings, Settings
from ingest.spool import Spool
from ingest.storage.base import Storage
from ingest.storage.influx import InfluxStorage, registry_tags
from ingest.storage.rollup import Marks
from ingest.storage.sqlite import SqliteStorage
from ingest.validation import Limits, Validator
from ingest.worker import IngestWorker, Observer

log = logging.getLogger(__name__)

Backend = Literal["influx", "sqlite"]
DEFAULT_INFLUX_URL = InfluxSettings().url


def influx_configured(influx: InfluxSettings) -> bool:
    """Whether the settings point at an InfluxDB on purpose: another URL, or credentials."""
    return (
        influx.url != DEFAULT_INFLUX_URL or influx.username is not None or influx.token is not None
    )


def influxd_installed() -> bool:
    """Whether an ``influxd`` binary is on this machine."""
    return shutil.which("influxd") is not None or Path("/usr/sbin/influxd").exists()


def choose_backend(
    requested: Literal["influx", "sqlite", "auto"],
    *,
    configured: bool,
    installed: bool,
    answering: bool,
) -> Backend:
    """The storage backend to use.

    ``auto`` keeps InfluxDB whenever it was configured, is installed on this machine (a server
    still starting at boot is the spool's business, not a reason to write elsewhere) or answers;
    only with none of the three does it fall back to SQLite.
    """
    if requested != "auto":
        return requested
    return "influx" if configured or installed or answering else "sqlite"


async def influx_answers(influx: InfluxSettings, timeout_s: float) -> bool:
    """Whether an InfluxDB answers ``/ping`` at the configured URL now."""
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.get(f"{influx.url}/ping")
    except httpx.HTTPError:
        return False
    return response.status_code == 204


async def select_backend(settings: Settings) -> Backend:
    """Apply :func:`choose_backend` to the settings, asking InfluxDB only when it matters."""
    requested = settings.storage.backend
    configured = influx_configured(settings.influx)
    installed = requested == "auto" and influxd_installed()
    answering = False
    if requested == "auto" and not configured and not installed:
        answering = await influx_answers(settings.influx, settings.storage.probe_timeout_s)
    backend = choose_backend(
        requested, configured=configured, installed=installed, answering=answering
    )
    if backend == "sqlite":
        log.info("storage: embedded SQLite at %s", settings.storage.sqlite_path)
    else:
        influx = settings.influx
        log.info("storage: InfluxDB at %s, database %s", influx.url, influx.database)
    return backend


def open_storage(
    settings: Settings, backend: Backend, station_tags: Callable[[str], Mapping[str, str]]
) -> InfluxStorage | SqliteStorage:
    """The chosen backend, not yet prepared."""
    if backend == "sqlite":
        return SqliteStorage(settings.storage.sqlite_path, settings.storage.sqlite_synchronous)
    return InfluxStorage(settings.influx, station_tags, writer=settings.mqtt.client_id)


def connect_options(settings: Settings) -> ConnectOptions:
    """The MQTT subscriber's options, from the settings.

    The Maximum Packet Size sent to the broker is the payload limit plus headroom, above what
    the broker itself accepts from devices (``validation``), so it forwards every message it
    accepted; one over the payload limit is stored as a ``payload_too_large`` rejection.
    """
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
        maximum_packet_size=settings.validation.subscriber_max_packet_bytes,
    )


def write_retry(settings: Settings) -> RetryPolicy:
    """How long a batch's write is retried before the batch goes to the spool."""
    influx = settings.influx
    return RetryPolicy(
        initial_s=influx.write_retry_initial_s,
        max_s=influx.write_retry_max_s,
        deadline_s=influx.write_retry_deadline_s,
    )


def drain_retry(settings: Settings) -> RetryPolicy:
    """How the spool's drain backs off while storage stays down or refuses."""
    spool = settings.spool
    return RetryPolicy(
        initial_s=spool.drain_retry_initial_s, max_s=spool.drain_retry_max_s, deadline_s=None
    )


def loop_restart(settings: Settings) -> RetryPolicy:
    """How a failed secondary loop (health, registry watch) is restarted."""
    health = settings.health
    return RetryPolicy(
        initial_s=health.restart_initial_s, max_s=health.restart_max_s, deadline_s=None
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
        Limits.from_settings(settings),
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

    backend = await select_backend(settings)
    async with open_storage(settings, backend, station_tags) as storage:
        health = HealthRecorder(
            registry,
            storage,
            settings.health.interval_s,
            heartbeat_s=settings.health.heartbeat_s,
        )

        def apply(new: Registry) -> None:
            current[0] = new
            validator.use_registry(new)
            if isinstance(storage, InfluxStorage):
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
            batch_policy=BatchPolicy.from_settings(settings.batch),
            write_retry=write_retry(settings),
            drain_retry=drain_retry(settings),
            loop_restart=loop_restart(settings),
            max_batches_in_flight=settings.batch.max_batches_in_flight,
            observers=[health.observe, *observers] if settings.health.enabled else observers,
            spool_warn_fraction=settings.spool.warn_fraction,
            idle_flush_s=settings.batch.idle_flush_s,
            idle_flush_max_messages=settings.batch.idle_flush_max_messages,
        )
        try:
            companions = {"registry-watch": watcher.run}
            if isinstance(storage, SqliteStorage):
                companions["sqlite-retention"] = lambda: _retain(storage, settings.max_age_s)
            elif settings.influx.rollups:
                storage.on_marks = lambda marks: _count_marks(metrics, marks)
                companions["rollup"] = lambda: refresh_rollups(
                    storage, settings.influx.rollup_interval_s, metrics
                )
            if settings.health.enabled:
                companions["health"] = health.run
            await worker.run(stop, companions)
        except BrokerUnsuitableError as exc:
            raise ConfigError(
                f"the MQTT broker at {settings.mqtt.url} cannot serve this worker: {exc}"
            ) from None
        finally:
            spool.close()


SQLITE_PRUNE_INTERVAL_S = 3600.0


async def _retain(storage: SqliteStorage, max_age_s: float) -> None:
    """Hourly, drop what is older than the retention window (InfluxDB's policy does it there)."""
    while True:
        cutoff_ns = time.time_ns() - int(max_age_s * 1e9)
        try:
            deleted = await storage.prune(cutoff_ns)
        except StorageError as exc:
            log.warning("SQLite retention: could not prune now (%s)", exc)
        else:
            if deleted:
                log.info(
                    "SQLite retention: %d rows older than %.0f days deleted",
                    deleted,
                    max_age_s / 86400,
                )
        await asyncio.sleep(SQLITE_PRUNE_INTERVAL_S)


def _count_marks(metrics: IngestMetrics, marks: Marks) -> None:
    metrics.rollup_marks.inc(len(marks.pairs))
    if marks.coalesced:
        metrics.rollup_marks_coalesced.inc(marks.coalesced)


async def refresh_rollups(
    storage: InfluxStorage,
    interval_s: float,
    metrics: IngestMetrics,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Every ``interval_s``, recompute the hours late readings made dirty (off the write path).

    The first pass runs at once: marks left by a worker killed after acknowledging are
    recomputed on start. A pass that fails (InfluxDB down) leaves its marks for the next one.
    """
    while True:
        started = time.monotonic()
        try:
            done = await storage.refresh_dirty()
        except StorageError as exc:
            metrics.rollup_failures.inc()
            log.warning(
                "rollup of late readings: not now (%s); next pass in %.0f s", exc, interval_s
            )
        else:
            metrics.rollup_passes.inc()
            if done.hours:
                metrics.rollup_pass_seconds.inc(time.monotonic() - started)
                metrics.rollup_hours.inc(done.hours)
                log.info(
                    "rollup of late readings: %d hours recomputed (%d marks, %d statements) "
                    "in %.1f s",
                    done.hours,
                    done.marks,
                    done.statements,
                    time.monotonic() - started,
                )
        await sleep(interval_s)


async def _prepare_storage(storage: Storage) -> None:
    """Create the database if it can be reached now; otherwise the spool covers the outage."""
    try:
        await storage.prepare()
    except StorageError as exc:
        log.warning("could not prepare storage now (%s); readings will spool until it can", exc)

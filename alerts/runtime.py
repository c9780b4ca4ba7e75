"""``siaga alerts run``: the engine's process, wired from the settings.

:func:`run_alerts` builds the parts from the settings tree (the validator, the engine, its
broker session, the incident store, the readings' storage and the alert spool), then runs the
loop (:mod:`alerts.loop`) with its companions, each a named task under
:func:`~ingest.supervise.supervise` in the loop's TaskGroup: the registry and rules watchers
and, with ``notify.in_engine``, the notifier's tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Callable, Mapping, Sequence

import httpx

from alerts.engine import Engine, Scope
from alerts.forecasting import live_forecaster, warning_rule
from alerts.incidents.store import SqlIncidentStore
from alerts.loop import AlertLoop, CommitObserver, LoopPolicy
from alerts.notify.errors import PolicyError
from alerts.notify.message import AckLink
from alerts.notify.runtime import notification_companions
from alerts.notify.sqlstore import SqlNotifyStore
from alerts.rules.config import RulesConfig, load_rules
from alerts.rules.watch import RulesWatcher
from alerts.settings import Settings
from devices import TopicScheme
from devices.registry import Registry, load_registry
from forecast.store import ModelStoreError
from ingest.errors import ConfigError, SpoolError, StorageError
from ingest.mqtt.client import MqttSubscriber
from ingest.registry_watch import RegistryWatcher
from ingest.runtime import connect_options, open_storage, select_backend
from ingest.spool import Spool
from ingest.storage.influx import InfluxStorage, registry_tags
from ingest.validation import Limits, Validator

GIL_SWITCH_INTERVAL_S = 0.0005
GC_THRESHOLDS = (20_000, 20, 20)
"""The engine process's collector thresholds (CPython's defaults: 700, 10, 10)."""


def engine_scope(settings: Settings) -> Scope:
    """The stations this engine evaluates (``alerts.stations`` / ``alerts.regencies``)."""
    alerts = settings.alerts
    return Scope(
        stations=None if alerts.stations is None else frozenset(alerts.stations),
        regencies=None if alerts.regencies is None else frozenset(alerts.regencies),
    )


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for the engine's process.

    The engine allocates a few small objects per reading and keeps a large, long-lived heap
    (the registry, every station's rule state, device health); none of it forms cycles that
    need the collector. With CPython's default thresholds a young collection ran every 700
    allocations and the full ones walked the whole heap: 15 to 20 % of the engine's CPU with
    nothing ever collected. The heap built at start-up is frozen (never scanned again) and
    collections run 30 times less often; reference counting still frees everything else at once.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_alerts(
    settings: Settings,
    stop: asyncio.Event | None = None,
    observers: Sequence[CommitObserver] = (),
    on_loop: Callable[[AlertLoop], None] | None = None,
    ack_link: AckLink | None = None,
) -> None:
    """Run the alert engine until ``stop`` is set or the process gets SIGTERM/SIGINT.

    The notifications (``alerts.notify``) run alongside as companions while this engine
    leads: policy reload, dispatcher and sender; ``ack_link`` builds acknowledgement links.

    Raises:
        ConfigError: The station, rules or spool configuration is unusable.
        LeadershipLostError: Another engine took over (the process should exit and restart).
    """

    def load() -> Registry:
        return load_registry(settings.stations.file, settings.stations.devices_file)

    try:
        registry = load()
        rules: RulesConfig = load_rules(settings.alerts.rules_file)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    # The committer's thread releases the GIL at every SQLite step; with the default 5 ms
    # switch interval it waits that long for the CPU-bound evaluation loop each time (a GIL
    # convoy): at 6,000 messages/s commits took 738 ms at p50, with 0.5 ms 15 ms.
    sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_INTERVAL_S))
    validator = Validator(
        registry, TopicScheme(settings.mqtt.topic_prefix), Limits.from_settings(settings)
    )
    try:
        forecaster = live_forecaster(settings.forecast)
    except ModelStoreError as exc:
        raise ConfigError(str(exc)) from None
    engine = Engine(
        registry,
        rules,
        scope=engine_scope(settings),
        late_lag_s=settings.alerts.late_lag_s,
        health_window_s=settings.alerts.health_window_s,
        forecaster=forecaster,
        forecast_rule=warning_rule(settings.forecast),
    )
    # Its own persistent session, outside the ingest workers' shared group: it sees every
    # message whatever the number of workers.
    own = settings.model_copy(
        update={
            "mqtt": settings.mqtt.model_copy(
                update={"client_id": settings.engine_client_id, "shared_group": None}
            )
        }
    )
    subscriber = MqttSubscriber(connect_options(own))
    try:
        spool = Spool(
            settings.engine_spool_dir, settings.spool.max_bytes, settings.spool.segment_bytes
        )
    except SpoolError as exc:
        raise ConfigError(str(exc)) from None
    current = [registry]

    def station_tags(station_id: str) -> Mapping[str, str]:
        return registry_tags(current[0])(station_id)

    store = SqlIncidentStore(
        settings.database.url,
        lock_name=settings.engine_client_id,
        inline_commits=settings.database.url.startswith("sqlite"),
    )
    # The backend the ingest workers use (storage.backend): alert events and device health go
    # beside the readings, where the web UI reads them.
    backend = await select_backend(settings)
    try:
        async with (
            open_storage(settings, backend, station_tags) as storage,
            store,
            # The incident store's migrations (run above) create the notification tables too.
            SqlNotifyStore(settings.database.url, migrate=False) as notify_store,
            httpx.AsyncClient() as http,
        ):
            with contextlib.suppress(StorageError):
                await storage.prepare()
            notifications = None
            try:
                if settings.notify.in_engine:
                    notifications = notification_companions(
                        settings,
                        incidents=store,
                        store=notify_store,
                        client=http,
                        registry=lambda: current[0],
                        is_leader=lambda: store.leading,
                        ack_link=ack_link,
                        actions=store,
                    )
            except PolicyError as exc:
                raise ConfigError(str(exc)) from None
            alert_loop = AlertLoop(
                source=subscriber,
                validator=validator,
                engine=engine,
                store=store,
                storage=storage,
                spool=spool,
                registry=registry,
                policy=LoopPolicy.from_settings(settings),
                observers=[*observers, *([notifications.on_commit] if notifications else [])],
            )
            if on_loop is not None:
                on_loop(alert_loop)

            def apply(new: Registry) -> None:
                current[0] = new
                if isinstance(storage, InfluxStorage):
                    storage.encoder.forget_stations()
                alert_loop.use_registry(new)

            watcher = RegistryWatcher(
                [settings.stations.file, settings.stations.devices_file],
                load,
                apply,
                settings.stations.reload_interval_s,
            )
            rules_watcher = RulesWatcher(
                settings.alerts.rules_file,
                rules,
                alert_loop.use_rules,
                settings.alerts.reload_interval_s,
            )
            companions = {"registry-watch": watcher.run, "rules-watch": rules_watcher.run}
            if notifications is not None:
                companions |= notifications.tasks
            tune_gc()
            await alert_loop.run(stop, companions)
    finally:
        spool.close()

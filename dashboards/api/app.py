"""The FastAPI application: :func:`create_app` wires the stores, the routes and the web UI."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine

from alerts.incidents.database import create_sql_engine
from alerts.incidents.memory import MemoryIncidentStore
from alerts.incidents.records import IncidentFilter
from alerts.notify.chatstore import ChatStore, SqlChatStore
from alerts.notify.memory import MemoryNotifyStore
from dashboards.api import errors
from dashboards.api.accounts import Accounts
from dashboards.api.context import ApiContext
from dashboards.api.forecasts import ModelCache
from dashboards.api.guard import Guard, install_log_redaction
from dashboards.api.live import (
    Fingerprint,
    LiveEvent,
    LiveHub,
    changed_incidents,
    new_readings,
)
from dashboards.api.ports import IncidentStore, NotifyReader
from dashboards.api.ratelimit import LoginLimiter
from dashboards.api.routes import audit, auth, contacts, incidents, policies, stations, system
from dashboards.api.routes.stations import render_list
from dashboards.api.routes.system import event_json
from dashboards.api.views import WATER_LEVEL, incident_public, to_datetime
from dashboards.settings import Settings
from devices.levels import label, thresholds_at
from devices.registry import load_registry
from devices.stations import StationRegistry
from ingest.errors import SiagaError
from ingest.runtime import Backend, loop_restart, open_storage
from ingest.storage.base import LatestReading, Storage
from ingest.storage.influx import registry_tags
from ingest.supervise import LoopFactory, supervised

log = logging.getLogger(__name__)

API_VERSION = "1"
# Incidents seen by the live stream are remembered this long (bounded memory).
_SEEN_INCIDENTS_MAX = 10_000
_LIVE_INCIDENTS = 500
_PREPARE_RETRY_S = 5.0
_RECENT_NS = 3600 * 1_000_000_000


def sql_engine(url: str) -> Engine:
    """An engine for the incident database (SQLite with WAL and foreign keys, or PostgreSQL)."""
    return create_sql_engine(url)


def _reading_event(registry: StationRegistry, reading: LatestReading) -> LiveEvent:
    station = registry.get(reading.station_id)
    value = reading.values.get(WATER_LEVEL)
    level = level_label = None
    if station is not None and value is not None:
        thresholds = thresholds_at(station.thresholds, reading.ts_ns)
        if thresholds is not None:
            found = thresholds.level_of(value)
            level, level_label = found.name, label(found, thresholds.scheme)
    return LiveEvent(
        "reading",
        event_json(
            {
                "station": reading.station_id,
                "ts": to_datetime(reading.ts_ns).isoformat(),
                "value_cm": value,
                "level": level,
                "level_label": level_label,
                "values": reading.values,
            }
        ),
        station.regency if station is not None else None,
    )


def _poller(ctx: ApiContext) -> Callable[[], asyncio.Future[list[LiveEvent]]]:
    latest: dict[str, LatestReading] = {}
    seen: dict[int, Fingerprint] = {}

    async def poll() -> list[LiveEvent]:
        nonlocal latest
        current = await ctx.storage.latest()
        fresh = new_readings(latest, current)
        latest = current
        # Active incidents (acknowledgements, assignments, escalations) and the ones updated
        # lately (resolutions): an incident resolved long ago changes no more.
        active, recent = await asyncio.gather(
            ctx.incidents.list(IncidentFilter(limit=_LIVE_INCIDENTS)),
            ctx.incidents.list(
                IncidentFilter(
                    active_only=False, since_ns=ctx.clock_ns() - _RECENT_NS, limit=_LIVE_INCIDENTS
                )
            ),
        )
        changed = changed_incidents(seen, {i.id: i for i in [*recent, *active]}.values())
        if len(seen) > _SEEN_INCIDENTS_MAX:
            for incident_id in sorted(seen, key=lambda i: seen[i][0])[: len(seen) // 2]:
                del seen[incident_id]
        events = [_reading_event(ctx.registry, r) for r in fresh]
        events += [
            LiveEvent(
                "alert",
                incident_public(i, ctx.schemes, registry=ctx.registry).model_dump_json(),
                i.labels.get("regency") or None,
            )
            for i in changed
        ]
        return events

    return poll  # type: ignore[return-value]


def create_app(
    settings: Settings,
    *,
    storage: Storage | None = None,
    registry: StationRegistry | None = None,
    incidents_store: IncidentStore | None = None,
    notify: NotifyReader | None = None,
    accounts: Accounts | None = None,
    clock_ns: Callable[[], int] = time.time_ns,
    live: bool = True,
    backend: Backend = "influx",
    chats: ChatStore | None = None,
) -> FastAPI:
    """The API (and the web UI, when ``dashboards.web`` mounts one) as an ASGI app.

    Args:
        settings: The settings tree (``api``, ``influx``, ``database``, ``stations``).
        storage: The time-series store (default: ``backend`` from the settings, closed with
            the app).
        registry: The stations (default: read from ``settings.stations``).
        incidents_store: The incident store (default: an empty in-memory one; ``siaga serve``
            passes the SQL store).
        notify: Silences and CAP documents (default: an empty in-memory one; ``siaga serve``
            passes the SQL store).
        accounts: Users, keys and sessions (default: on ``settings.database.url``; the API's
            tables are created where missing).
        clock_ns: The clock (tests pass their own).
        live: Run the poller behind ``/api/v1/events``.
        backend: Where the readings are when no ``storage`` is given (``siaga serve`` passes
            the one the ingest workers chose: ``ingest.runtime.select_backend``).
        chats: Telegram links and SMS numbers (default: on the accounts' database).
    """
    install_log_redaction()
    if registry is None:
        registry = load_registry(settings.stations.file, settings.stations.devices_file)
    own_storage = storage is None
    if storage is None:
        storage = open_storage(settings, backend, registry_tags(registry))
    if accounts is None:
        accounts = Accounts(sql_engine(settings.database.url))
        accounts.create_tables()
    if chats is None:
        sql_chats = SqlChatStore(engine=accounts.engine)
        sql_chats.create_tables()
        chats = sql_chats
    ctx = ApiContext(
        settings=settings.api,
        storage=storage,
        registry=registry,
        accounts=accounts,
        incidents=incidents_store if incidents_store is not None else MemoryIncidentStore(),
        notify=notify if notify is not None else MemoryNotifyStore(),
        secret_key=settings.api.resolve_secret_key(),
        limiter=LoginLimiter(settings.api.login_max_failures, settings.api.login_window_s),
        clock_ns=clock_ns,
        forecast=settings.forecast,
        models=ModelCache(settings.forecast.models_dir),
        chats=chats,
        link_code_valid_s=settings.telegram.link_code_valid_s,
        policy_file=Path(settings.notify.policy_file),
    )
    ctx.refresh_schemes()
    ctx.prerender = functools.partial(render_list, ctx, regency=None, river=None)
    if live:
        ctx.hub = LiveHub(_poller(ctx), settings.api.live_poll_s, settings.api.live_queue_max)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Every background task runs supervised in one group that ends with the app: one that
        # raises is logged, counted (``/healthz``'s ``loop_restarts``) and started again.
        loops: dict[str, LoopFactory] = {}
        if own_storage:
            loops["prepare"] = functools.partial(_prepare, ctx.storage)
        if ctx.hub is not None:
            loops["live-poll"] = ctx.hub.run
        try:
            async with supervised(
                loops,
                restart=loop_restart(settings),
                on_failure=ctx.count_loop_failure,
                task_prefix="siaga-api",
            ) as spawn:
                ctx.spawn = spawn
                try:
                    yield
                finally:
                    ctx.spawn = None
        finally:
            if own_storage:
                await ctx.storage.aclose()

    app = FastAPI(
        title="Siaga API",
        version=API_VERSION,
        description="River levels, incidents and alerts of Siaga. Authenticate with the "
        "session cookie from POST /api/v1/login, or an API key (Authorization: Bearer sk_...).",
        lifespan=lifespan,
    )
    app.state.siaga = ctx
    errors.install(app)
    for router in (
        stations.router,
        incidents.router,
        system.router,
        system.probes,
        auth.router,
        auth.admin,
        contacts.router,
        audit.router,
        policies.router,
    ):
        app.include_router(router)
    _mount_web(app)
    app.add_middleware(Guard, max_body_bytes=settings.api.max_body_bytes, refused=ctx.refused)
    return app


async def _prepare(storage: Storage) -> None:
    """Prepare storage (database, rollups) once InfluxDB answers; the API serves meanwhile."""
    while True:
        try:
            await storage.prepare()
        except SiagaError as exc:
            log.warning("InfluxDB is not ready (%s); trying again in %.0f s", exc, _PREPARE_RETRY_S)
            await asyncio.sleep(_PREPARE_RETRY_S)
        else:
            return


def _mount_web(app: FastAPI) -> None:
    from dashboards import web  # noqa: PLC0415 - the UI is optional

    mount = getattr(web, "mount", None)
    if callable(mount):
        mount(app)

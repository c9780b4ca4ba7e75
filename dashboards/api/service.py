"""What ``siaga serve`` and ``siaga users`` do: run the app, administer users. Wiring only."""

from __future__ import annotations

import secrets
import signal
import socket
import time

import uvicorn
from fastapi import FastAPI

from alerts.incidents.store import SqlIncidentStore
from alerts.notify.sqlstore import SqlNotifyStore
from dashboards.api.accounts import Accounts, Role, User
from dashboards.api.app import create_app, sql_engine
from dashboards.api.context import ApiContext
from dashboards.settings import Settings
from devices.registry import load_registry
from devices.scopes import DEPLOYMENT, Scope
from devices.stations import StationRegistry
from ingest.runtime import select_backend

# After the live streams have ended, requests still running get this long to finish.
GRACEFUL_SHUTDOWN_S = 3


class ApiServer(uvicorn.Server):
    """uvicorn that ends the app's live streams as it starts shutting down.

    uvicorn stops accepting connections, then waits for every open response before the app's
    own shutdown runs; a page's event stream never ends by itself, so without this each open
    page would hold the server until the graceful timeout.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        app = config.app
        ctx = app.state.siaga if isinstance(app, FastAPI) else None
        self._context: ApiContext | None = ctx if isinstance(ctx, ApiContext) else None

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End the live streams, then shut down as uvicorn does."""
        if self._context is not None and self._context.hub is not None:
            self._context.hub.close()
        await super().shutdown(sockets)


def checked_scope(scope: Scope, registry: StationRegistry) -> Scope:
    """``scope`` when the registry knows its regencies and province.

    Raises:
        ScopeError: Naming what the registry does not know.
    """
    if scope.deployment_wide:
        return scope
    return scope.check(registry.provinces(), {s.regency for s in registry.stations()})


def accounts_for(settings: Settings) -> Accounts:
    """The user store of the configured database, migrated to the newest schema first."""
    from alerts.incidents.migrations import upgrade  # noqa: PLC0415 - alembic is heavy

    upgrade(settings.database.url)
    return Accounts(sql_engine(settings.database.url))


def add_user(
    settings: Settings,
    username: str,
    role: Role,
    password: str | None,
    scope: Scope = DEPLOYMENT,
) -> tuple[User, str | None]:
    """Create a user; returns the generated password when none was given (shown once).

    Args:
        settings: Where the database and the station registry are.
        username: The name they sign in with.
        role: What they may do.
        password: Their password (None: generated).
        scope: Which regencies (or province) they see and act on; checked against the registry.

    Raises:
        AccountError: The name is taken or the password too short.
        ScopeError: The registry has no such regency or province.
        ConfigError: The registry cannot be read.
    """
    if not scope.deployment_wide:
        checked_scope(scope, load_registry(settings.stations.file, settings.stations.devices_file))
    generated = secrets.token_urlsafe(15) if password is None else None
    user = accounts_for(settings).add_user(
        username, role, password or generated or "", time.time_ns(), scope
    )
    return user, generated


async def serve(settings: Settings, host: str | None = None, port: int | None = None) -> None:
    """Run the API and web UI under uvicorn until SIGINT/SIGTERM.

    The incident database is migrated first (the API's tables are among its revisions).
    """
    async with (
        SqlIncidentStore(settings.database.url) as incidents,
        SqlNotifyStore(settings.database.url, migrate=False) as notify,
    ):
        app = create_app(
            settings,
            # The readings where the ingest workers store them (storage.backend).
            backend=await select_backend(settings),
            incidents_store=incidents,
            notify=notify,
            accounts=Accounts(incidents.engine),
        )
        await _serve(app, settings, host, port)


async def _serve(app: FastAPI, settings: Settings, host: str | None, port: int | None) -> None:
    config = uvicorn.Config(
        app,
        host=host or settings.api.host,
        port=port if port is not None else settings.api.port,
        log_config=None,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    await run_uvicorn(config)


async def run_uvicorn(config: uvicorn.Config) -> None:
    """Serve until SIGTERM/SIGINT, then return (exit status 0)."""
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
    # handler it found; a handler that does nothing lets `siaga serve` exit 0 like the others.
    previous = {sig: signal.signal(sig, _ignore) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        await ApiServer(config).serve()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(_signal: int, _frame: object) -> None:
    """Nothing: the server has already shut down when this runs."""

"""What ``siaga public serve`` does: open the stores read-only, build the pages, serve them.

A process of its own, on its own port: a surge of residents shares no event loop, no thread
pool and no database connection with the operators' API.
"""

from __future__ import annotations

import importlib.util

import uvicorn

from alerts.incidents.store import SqlIncidentStore
from dashboards.api.service import run_uvicorn
from dashboards.public.site import PublicSite
from dashboards.settings import Settings
from devices.registry import load_registry
from ingest.runtime import loop_restart, open_storage, select_backend
from ingest.storage.influx import registry_tags


def fast_http() -> tuple[str, str]:
    """uvicorn's ``http`` and ``loop``: httptools and uvloop where installed (several times the
    requests per core of the pure-Python h11 and asyncio)."""
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return http, loop


async def serve_public(
    settings: Settings, host: str | None = None, port: int | None = None
) -> None:
    """Serve the residents' pages until SIGINT/SIGTERM."""
    registry = load_registry(settings.stations.file, settings.stations.devices_file)
    backend = await select_backend(settings)
    storage = open_storage(settings, backend, registry_tags(registry))
    async with SqlIncidentStore(settings.database.url) as incidents:
        site = PublicSite(
            settings.public.file,
            lambda: registry,
            storage,
            incidents,
            refresh_s=settings.public.refresh_s,
            max_age_s=settings.public.max_age_s,
            stale_intervals=settings.public.stale_intervals,
            stale_floor_s=settings.public.stale_floor_s,
            cap_url=settings.cap_feed_url(),
            restart=loop_restart(settings),
        )
        http, _loop = fast_http()
        config = uvicorn.Config(
            site,
            host=host or settings.public.host,
            port=port if port is not None else settings.public.port,
            http=http,
            lifespan="on",
            access_log=False,
            log_config=None,
            server_header=False,
        )
        try:
            await run_uvicorn(config)
        finally:
            await storage.aclose()

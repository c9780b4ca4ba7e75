"""The residents' site: pages rebuilt every ``public.refresh_s`` in the background, served from
memory, so a surge of residents costs the databases nothing (one set of queries per refresh
however many people look) and never reaches the operators' API.

:class:`PublicSite` is also the ASGI app (plain ASGI: a dictionary lookup and one write per
request). Conditional requests get 304; gzip when asked; ``Cache-Control`` lets phones and any
proxy keep a page for ``max_age_s`` and use it while revalidating.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from alerts.incidents.records import ACTIVE, IncidentFilter
from alerts.model import Incident
from dashboards.public.config import WATER_LEVEL, PublicConfig, load_public
from dashboards.public.model import NS, build_page
from dashboards.public.render import (
    CSP,
    Body,
    icon,
    index_html,
    manifest,
    page_html,
    page_json,
    service_worker,
)
from dashboards.settings import PublicSettings
from devices.stations import StationRegistry
from ingest.errors import ConfigError, SiagaError
from ingest.retry import RetryPolicy
from ingest.settings import HealthSettings
from ingest.storage.base import LatestReading, MetricSpan
from ingest.supervise import supervised

log = logging.getLogger(__name__)
TREND_WINDOW_S = 3600
_PUBLIC = PublicSettings.model_fields  # the settings tree: one source of defaults


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one refresh read."""

    latest: Mapping[str, LatestReading]
    spans: Mapping[str, MetricSpan]
    incidents: Sequence[Incident]


class ReadingSource(Protocol):
    """The time-series store's part the page reads (``ingest.storage.base.Storage``)."""

    async def latest(self) -> dict[str, LatestReading]:
        """Every station's newest reading."""
        ...

    async def spans(self, metric: str, since_ns: int) -> dict[str, MetricSpan]:
        """First and last value of a metric per station since ``since_ns``."""
        ...


class IncidentSource(Protocol):
    """The incident store's part the page reads."""

    async def list(self, wanted: IncidentFilter = ACTIVE) -> list[Incident]:
        """The incidents ``wanted`` selects (active ones by default)."""
        ...


@dataclass(slots=True)
class Built:
    """Everything served, by path."""

    bodies: dict[str, Body] = field(default_factory=dict)
    built_ns: int = 0


class PublicSite:
    """Builds the pages and serves them (see the module doc).

    Args:
        config_file: ``config/public.yaml`` (re-read when it changes).
        registry: The stations in force.
        readings: Where the newest readings come from.
        incidents: Where the active warnings come from.
        refresh_s: How often pages are rebuilt.
        max_age_s: How long phones and proxies may keep a page.
        stale_intervals, stale_floor_s: When a reading is too old to be the state now.
        cap_url: The public CAP feed (linked from every page).
        clock: Nanoseconds since the epoch.
        restart: How the refresh loop is restarted after a bug (default: ``health``'s
            ``restart_initial_s`` and ``restart_max_s``); each restart counts
            ``counts["refresh_restarts"]``.
    """

    def __init__(
        self,
        config_file: Path,
        registry: Callable[[], StationRegistry],
        readings: ReadingSource,
        incidents: IncidentSource,
        *,
        refresh_s: float = _PUBLIC["refresh_s"].default,
        max_age_s: int = _PUBLIC["max_age_s"].default,
        stale_intervals: float = _PUBLIC["stale_intervals"].default,
        stale_floor_s: float = _PUBLIC["stale_floor_s"].default,
        cap_url: str | None = None,
        clock: Callable[[], int] = time.time_ns,
        restart: RetryPolicy | None = None,
    ) -> None:
        if restart is None:
            health = HealthSettings()
            restart = RetryPolicy(
                initial_s=health.restart_initial_s, max_s=health.restart_max_s, deadline_s=None
            )
        self._restart = restart
        self._config_file = config_file
        self._config_seen: tuple[int, int] | None = None
        self._config = PublicConfig()
        self._registry = registry
        self._readings = readings
        self._incidents = incidents
        self._refresh_s = refresh_s
        self._cache_control = f"public, max-age={max_age_s}, stale-while-revalidate=600"
        self._stale_intervals = stale_intervals
        self._stale_floor_s = stale_floor_s
        self._cap_url = cap_url
        self._clock = clock
        self._last: Snapshot | None = None
        self.built = Built()
        self.counts: Counter[str] = Counter()

    # -- building -----------------------------------------------------------------------------

    def _config_now(self) -> PublicConfig:
        try:
            status = self._config_file.stat()
            signature: tuple[int, int] | None = (status.st_mtime_ns, status.st_size)
        except FileNotFoundError:
            signature = None
        if signature != self._config_seen:
            self._config_seen = signature
            try:
                self._config = load_public(self._config_file)
            except ConfigError as exc:
                self.counts["config_failed"] += 1
                log.warning("public pages: %s; keeping the last good file", exc)
        return self._config

    async def _read(self, now_ns: int) -> Snapshot:
        latest, spans, incidents = await asyncio.gather(
            self._readings.latest(),
            self._readings.spans(WATER_LEVEL, now_ns - TREND_WINDOW_S * NS),
            self._incidents.list(IncidentFilter(limit=10_000)),
        )
        return Snapshot(latest, spans, incidents)

    async def refresh(self) -> Built:
        """Read once and rebuild every page. When the stores fail, the pages are rebuilt from
        the last data read, with the time now, so a stale reading is marked stale all the same.
        """
        now = self._clock()
        config = self._config_now()
        try:
            self._last = await self._read(now)
        except (SiagaError, OSError) as exc:
            self.counts["read_failed"] += 1
            log.warning("public pages: reading failed, rebuilding from the last data: %s", exc)
        snapshot = self._last or Snapshot({}, {}, [])
        registry = self._registry()
        bodies: dict[str, Body] = {
            "/": index_html(config.published()),
            "/icon-192.png": icon(192),
            "/icon-512.png": icon(512),
        }
        for regency in config.published():
            page = build_page(
                regency,
                registry,
                latest=snapshot.latest,
                spans=snapshot.spans,
                incidents=snapshot.incidents,
                now_ns=now,
                stale_intervals=self._stale_intervals,
                stale_floor_s=self._stale_floor_s,
                cap_url=self._cap_url,
            )
            base = f"/{regency.slug}/"
            bodies[base] = page_html(page)
            bodies[base + "state.json"] = page_json(page)
            bodies[base + "manifest.webmanifest"] = manifest(regency)
            bodies[base + "sw.js"] = service_worker()
        self.built = Built(bodies, now)
        self.counts["refreshed"] += 1
        return self.built

    async def run(self) -> None:
        """Rebuild every ``refresh_s`` until cancelled (the first build is the caller's)."""
        while True:
            await asyncio.sleep(self._refresh_s)
            await self.refresh()

    # -- serving (plain ASGI) -----------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Serve one request from memory."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if scope["method"] not in {"GET", "HEAD"}:
            await _answer(send, 405, b"", [(b"allow", b"GET, HEAD")])
            return
        if path == "/healthz":
            await _answer(send, 200, b"ok", [(b"content-type", b"text/plain")])
            return
        body = self.built.bodies.get(path)
        if body is None and not path.endswith("/") and f"{path}/" in self.built.bodies:
            await _answer(send, 308, b"", [(b"location", f"{path}/".encode())])
            return
        if body is None:
            self.counts["not_found"] += 1
            await _answer(
                send,
                404,
                b"Tidak ditemukan.",
                [(b"content-type", b"text/plain; charset=utf-8")],
            )
            return
        headers = dict(scope.get("headers") or [])
        common = [
            (b"etag", body.etag.encode()),
            (b"cache-control", self._cache_control.encode()),
            (b"vary", b"accept-encoding"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if path.endswith(".js"):
            common[1] = (b"cache-control", b"no-cache")  # a new worker must reach phones
        if headers.get(b"if-none-match") == body.etag.encode():
            self.counts["not_modified"] += 1
            await _answer(send, 304, b"", common)
            return
        if body.media_type.startswith("text/html"):
            common.append((b"content-security-policy", CSP.encode()))
        zipped = b"gzip" in headers.get(b"accept-encoding", b"")
        content = body.gzipped if zipped else body.raw
        extra = [(b"content-encoding", b"gzip")] if zipped else []
        self.counts["served"] += 1
        await _answer(
            send,
            200,
            b"" if scope["method"] == "HEAD" else content,
            [(b"content-type", body.media_type.encode()), *common, *extra],
            length=len(content),
        )

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while (await receive())["type"] != "lifespan.startup":
            pass
        await self.refresh()
        # Supervised: a bug in one rebuild is logged, counted and the loop goes on, rather than
        # leaving the pages frozen at their last build.
        async with supervised(
            {"refresh": self.run},
            restart=self._restart,
            on_failure=lambda _name: self.counts.update(["refresh_restarts"]),
            task_prefix="siaga-public",
        ):
            await send({"type": "lifespan.startup.complete"})
            while (await receive())["type"] != "lifespan.shutdown":
                pass
        await send({"type": "lifespan.shutdown.complete"})


async def _answer(
    send: Any,
    status: int,
    content: bytes,
    headers: list[tuple[bytes, bytes]],
    length: int | None = None,
) -> None:
    size = len(content) if length is None else length
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(size).encode())],
        }
    )
    await send({"type": "http.response.body", "body": content})

"""Everything a request may need, built once per app: stores, registry, accounts, clock."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from alerts.notify.cap import CapDocument
from alerts.notify.chatstore import ChatStore, MemoryChatStore
from alerts.settings import ForecastSettings
from dashboards.api.accounts import Accounts
from dashboards.api.audit import AuditLog
from dashboards.api.forecasts import ModelCache
from dashboards.api.live import LiveHub
from dashboards.api.ports import IncidentStore, NotifyReader
from dashboards.api.ratelimit import LoginLimiter
from dashboards.api.schemas import LinkPublic
from dashboards.api.scopes import regency_index
from dashboards.api.views import NS, WATER_LEVEL, trend_backfill, upstream_links
from dashboards.settings import ApiSettings
from devices.health import StationHealth
from devices.stations import Station, StationRegistry
from ingest.errors import RetryableStorageError, SiagaError
from ingest.storage.base import LatestReading, MetricSpan, Storage
from ingest.supervise import Spawn

log = logging.getLogger(__name__)
# Queries per snapshot for the trends of stations whose newest readings are older than the window.
_TREND_BACKFILL_QUERIES = 8


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Every station's newest reading, health and trend span, taken at one moment."""

    taken_ns: int
    latest: dict[str, LatestReading]
    health: dict[str, StationHealth]
    spans: dict[str, MetricSpan]
    # Each filter's stations rendered once (all but their staleness), and the lists answered
    # from them by filter and second (staleness is as of the answer); both bounded.
    parts: dict[tuple[str | None, str | None, frozenset[str] | None], list[RenderedStation]] = (
        field(default_factory=dict)
    )
    bodies: dict[tuple[str | None, str | None, frozenset[str] | None, int], bytes] = field(
        default_factory=dict
    )


@dataclass(frozen=True, slots=True)
class RenderedStation:
    """A station's JSON as of a snapshot, split where its staleness goes at each answer."""

    before: bytes
    after: bytes
    ts_ns: int | None
    stale_after_s: float


@dataclass
class ApiContext:
    """The app's collaborators (``app.state.siaga``)."""

    settings: ApiSettings
    storage: Storage
    registry: StationRegistry
    accounts: Accounts
    incidents: IncidentStore
    notify: NotifyReader
    # ``api.secret_key`` (or its file): verifies acknowledgement links (alerts/notify/acklink.py).
    secret_key: bytes
    limiter: LoginLimiter
    clock_ns: Callable[[], int] = time.time_ns
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    models: ModelCache | None = None
    hub: LiveHub | None = None
    # The deployment's notification policy file (``notify.policy_file``): regency policies are
    # checked against it before they are stored.
    policy_file: Path | None = None
    # The audit log (default: on the accounts' database, see :meth:`audit_log`).
    audit: AuditLog | None = None
    schemes: dict[str, str] = field(default_factory=dict)
    # Renders a new snapshot's unfiltered station list (in a thread) before it is published.
    prerender: Callable[[FleetSnapshot], object] | None = None
    _snapshot: FleetSnapshot | None = None
    # Back-dated stations' trend spans by the newest reading they end at (one per station).
    _trend_cache: dict[str, tuple[int, MetricSpan | None]] = field(default_factory=dict)
    _refreshing: asyncio.Task[None] | None = None
    snapshot_failures: int = 0
    # Starts a supervised task in the app's lifespan (None outside it; see ``create_app``).
    spawn: Spawn | None = None
    # Background tasks (live poll, fleet refresh...) restarted after raising, by name.
    loop_restarts: Counter[str] = field(default_factory=Counter)
    # Requests refused before a route ran (body too large, too many live streams), by reason.
    refused: Counter[str] = field(default_factory=Counter)
    # The newest CAP documents and when they were read (the public feed's flood guard).
    cap_cache: tuple[int, list[CapDocument]] | None = None
    cap_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Telegram links and SMS numbers (alerts/notify/chatstore.py); telegram link-code lifetime.
    chats: ChatStore = field(default_factory=MemoryChatStore)
    link_code_valid_s: float = 600.0
    _by_regency: dict[str, list[Station]] | None = None
    _upstream: dict[str, list[LinkPublic]] | None = None

    async def fleet(self) -> FleetSnapshot:
        """The whole fleet's readings, shared by requests, never older than a bound.

        A snapshot younger than ``overview_max_age_s`` is served as it is; an older one is
        served while a new one is taken in the background (one refresh at a time); one older
        than ``overview_max_stale_s`` is never served: the request waits for the refresh, and
        fails with it when storage fails. With ``overview_max_age_s`` 0 every request queries.

        Raises:
            RetryableStorageError: The snapshot was too old and storage did not answer.
        """
        current = self._snapshot
        if current is None or self.settings.overview_max_age_s == 0:
            current = await self._take()
            self._snapshot = current
            return current
        age_ns = self.clock_ns() - current.taken_ns
        if age_ns < self.settings.overview_max_age_s * NS:
            return current
        refreshing = self._refreshing
        if refreshing is None or refreshing.done():
            if self.spawn is not None:
                refreshing = self.spawn("fleet-refresh", self._refresh)
            else:  # no lifespan (an app driven without one): a task of its own
                refreshing = asyncio.create_task(self._refresh(), name="siaga-api.fleet-refresh")
            self._refreshing = refreshing
        if age_ns < self.settings.overview_max_stale_s * NS:
            return current
        # Too old to show: wait for the refresh (shielded: one request giving up must not
        # cancel it for the others).
        await asyncio.shield(refreshing)
        if self._snapshot is current:
            raise RetryableStorageError(
                f"the station overview is {age_ns / NS:.0f} s old and storage did not answer"
            )
        return self._snapshot or current

    async def _take(self) -> FleetSnapshot:
        now_ns = self.clock_ns()
        latest, health, spans = await asyncio.gather(
            self.storage.latest(),
            self.storage.health(),
            self.storage.spans(WATER_LEVEL, now_ns - self.settings.trend_window_s * NS),
        )
        return FleetSnapshot(now_ns, latest, health, await self.trend_spans(latest, spans))

    async def trend_spans(
        self, latest: dict[str, LatestReading], spans: dict[str, MetricSpan]
    ) -> dict[str, MetricSpan]:
        """``spans`` with each back-dated station's span ending at its own newest reading.

        A station's span is asked for once per newest reading: until another arrives, the
        answer is remembered (an hourly gauge costs a query an hour, not one a snapshot).
        """
        merged = dict(spans)
        unknown = {}
        for station_id, reading in latest.items():
            cached = self._trend_cache.get(station_id)
            if cached is not None and cached[0] == reading.ts_ns:
                if cached[1] is not None:
                    merged[station_id] = cached[1]
            else:
                unknown[station_id] = reading
        starts = trend_backfill(
            unknown, spans, self.settings.trend_window_s * NS, _TREND_BACKFILL_QUERIES
        )
        if not starts:
            return merged
        found = await asyncio.gather(
            *(self.storage.spans(WATER_LEVEL, start, ids) for start, ids in starts.items())
        )
        for (_, ids), more in zip(starts.items(), found, strict=True):
            merged.update(more)
            for station_id in ids:
                self._trend_cache[station_id] = (latest[station_id].ts_ns, more.get(station_id))
        return merged

    async def _refresh(self) -> None:
        try:
            snapshot = await self._take()
            if self.prerender is not None:
                await asyncio.to_thread(self.prerender, snapshot)
            self._snapshot = snapshot
        except SiagaError as exc:
            # The previous snapshot stays until it is too old to show; readyz tells whether
            # storage answers.
            self.snapshot_failures += 1
            log.warning("refreshing the station overview failed: %s", exc)

    def count_loop_failure(self, name: str) -> None:
        """Count a background task that raised (it is restarted)."""
        self.loop_restarts[name] += 1

    def audit_log(self) -> AuditLog:
        """The audit log, on the users' database."""
        if self.audit is None:
            self.audit = AuditLog(self.accounts.engine)
        return self.audit

    def upstream(self) -> dict[str, list[LinkPublic]]:
        """Each station's upstream links (computed once: the API's registry does not change)."""
        if self._upstream is None:
            self._upstream = upstream_links(self.registry.stations())
        return self._upstream

    def stations_of(self, regency: str) -> list[Station]:
        """The stations of one regency, in registry order (an index built once)."""
        if self._by_regency is None:
            self._by_regency = dict(regency_index(self.registry.stations()))
        return self._by_regency.get(regency, [])

    def refresh_schemes(self) -> None:
        """Each station's label scheme (of its newest thresholds), for incident labels."""
        self.schemes = {
            s.id: s.thresholds[-1].scheme for s in self.registry.stations() if s.thresholds
        }

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
from dashboards.api.accounts import Accounts
from dashboards.api.audit import AuditLog
from dashboards.api.live import LiveHub
from dashboards.api.ports import IncidentStore, NotifyReader
from dashboards.api.ratelimit import LoginLimiter
from dashboards.api.schemas import LinkPublic
from dashboards.api.scopes import regency_index
from dashboards.api.views import upstream_links
from dashboards.settings import ApiSettings
from devices.health import StationHealth
from devices.stations import Station, StationRegistry
from ingest.errors import SiagaError
from ingest.storage.base import LatestReading, MetricSpan, Storage

log = logging.getLogger(__name__)
WATER_LEVEL = "water_level_cm"


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Every station's newest reading, health and trend span, taken at one moment."""

    taken_ns: int
    latest: dict[str, LatestReading]
    health: dict[str, StationHealth]
    spans: dict[str, MetricSpan]
    # Rendered station lists by filter, built once per snapshot (bounded: a few filters).
    bodies: dict[tuple[str | None, str | None, frozenset[str] | None], bytes] = field(
        default_factory=dict
    )


@dataclass
class ApiContext:
    """The app's collaborators (``app.state.siaga``)."""

    settings: ApiSettings
    storage: Storage
    registry: StationRegistry
    accounts: Accounts
    incidents: IncidentStore
    notify: NotifyReader
    secret_key: bytes
    # ``notify.ack_secret``: signs the notification pipeline's links (alerts/notify/acklink.py).
    notify_ack_secret: bytes | None
    limiter: LoginLimiter
    clock_ns: Callable[[], int] = time.time_ns
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
    _refreshing: asyncio.Task[None] | None = None
    snapshot_failures: int = 0
    # Requests refused before a route ran (body too large, too many live streams), by reason.
    refused: Counter[str] = field(default_factory=Counter)
    # The newest CAP documents and when they were read (the public feed's flood guard).
    cap_cache: tuple[int, list[CapDocument]] | None = None
    cap_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _by_regency: dict[str, list[Station]] | None = None
    _upstream: dict[str, list[LinkPublic]] | None = None

    async def fleet(self) -> FleetSnapshot:
        """The whole fleet's readings, shared by requests.

        Requests get the current snapshot at once; one older than ``overview_max_age_s`` is
        refreshed in the background (one refresh at a time), so no request waits for InfluxDB
        but the very first. With ``overview_max_age_s`` 0 every request queries.
        """
        current = self._snapshot
        if current is None or self.settings.overview_max_age_s == 0:
            current = await self._take()
            self._snapshot = current
            return current
        age_ns = self.clock_ns() - current.taken_ns
        if age_ns >= self.settings.overview_max_age_s * 1e9 and (
            self._refreshing is None or self._refreshing.done()
        ):
            self._refreshing = asyncio.create_task(self._refresh(), name="siaga-api.fleet")
        return current

    async def _take(self) -> FleetSnapshot:
        now_ns = self.clock_ns()
        latest, health, spans = await asyncio.gather(
            self.storage.latest(),
            self.storage.health(),
            self.storage.spans(WATER_LEVEL, now_ns - self.settings.trend_window_s * 1_000_000_000),
        )
        return FleetSnapshot(now_ns, latest, health, spans)

    async def _refresh(self) -> None:
        try:
            snapshot = await self._take()
            if self.prerender is not None:
                await asyncio.to_thread(self.prerender, snapshot)
            self._snapshot = snapshot
        except SiagaError as exc:
            # The previous snapshot stays; readyz tells whether storage answers.
            self.snapshot_failures += 1
            log.warning("refreshing the station overview failed: %s", exc)

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

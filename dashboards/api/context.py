"""Everything a request may need, built once per app: stores, registry, accounts, clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dashboards.api.accounts import Accounts
from dashboards.api.live import LiveHub
from dashboards.api.ports import IncidentStore, NotifyReader
from dashboards.api.ratelimit import LoginLimiter
from dashboards.settings import ApiSettings
from devices.stations import StationRegistry
from ingest.storage.base import Storage


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
    limiter: LoginLimiter
    clock_ns: Callable[[], int] = time.time_ns
    hub: LiveHub | None = None
    schemes: dict[str, str] = field(default_factory=dict)

    def refresh_schemes(self) -> None:
        """Each station's label scheme (of its newest thresholds), for incident labels."""
        self.schemes = {
            s.id: s.thresholds[-1].scheme for s in self.registry.stations() if s.thresholds
        }

"""The narrow interfaces the API reads and changes alerting through.

:class:`IncidentStore` is the incident store's people's side (contract 3), defined once in
:class:`alerts.incidents.ports.IncidentQueries`. The notification store
(``alerts/notify/store.py``) satisfies :class:`NotifyReader` structurally; the in-memory twins
(``alerts/incidents/memory.py``, ``alerts/notify/memory.py``) both too.
"""

from __future__ import annotations

from typing import Protocol

from alerts.incidents.ports import IncidentQueries as IncidentStore
from alerts.notify.cap import CapDocument
from alerts.notify.records import Delivery
from alerts.notify.regency_policy import RegencyPolicy, StoredRegencyPolicy
from alerts.pipeline.silence import Silence

__all__ = ["IncidentStore", "NotifyReader"]


class NotifyReader(Protocol):
    """The part of the notification store (``alerts/notify/store.py``) the API uses."""

    async def add_silence(self, silence: Silence) -> Silence:
        """Store a silence; returns it with its id."""
        ...

    async def expire_silence(self, silence_id: int, at_ns: int) -> bool:
        """End a silence now; False when there is no such silence."""
        ...

    async def silences(self, now_ns: int | None = None) -> list[Silence]:
        """Silences not yet ended at ``now_ns`` (all when None)."""
        ...

    async def deliveries(
        self, message_id: str | None = None, *, since_ns: int | None = None
    ) -> list[Delivery]:
        """Deliveries (of one message; created at or after ``since_ns``), oldest first."""

    async def save_regency_policy(
        self, regency: str, policy: RegencyPolicy, created_by: str, created_ns: int
    ) -> StoredRegencyPolicy:
        """Store a new version of a regency's notification policy."""
        ...

    async def regency_policies(
        self, regency: str | None = None, *, history: bool = False
    ) -> list[StoredRegencyPolicy]:
        """The newest version per regency (every version with ``history``)."""
        ...

    async def cap_feed_entries(self, since_ns: int | None, limit: int) -> list[CapDocument]:
        """CAP documents sent at or after ``since_ns``, newest first."""
        ...

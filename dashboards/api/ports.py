"""The narrow interfaces the API reads and changes alerting through.

The incident store (``alerts/incidents/store.py``) satisfies :class:`IncidentStore` and the
notification store (``alerts/notify/store.py``) :class:`NotifyReader` structurally; their
in-memory twins (``alerts/incidents/memory.py``, ``alerts/notify/memory.py``) too.
"""

from __future__ import annotations

from typing import Protocol

from alerts.model import EventKind, Incident
from alerts.notify.cap import CapDocument
from alerts.pipeline.silence import Silence
from devices.levels import Level


class IncidentStore(Protocol):
    """The part of the incident store the API uses (contract 3)."""

    async def list(
        self,
        active_only: bool,
        *,
        regency: str | None = None,
        station: str | None = None,
        kind: EventKind | None = None,
        severity: Level | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Incident]:
        """Incidents, newest update first; ``active_only`` keeps pending and firing ones."""
        ...

    async def get(self, incident_id: int) -> Incident | None:
        """One incident with its transitions."""
        ...

    async def acknowledge(self, incident_id: int, by: str, comment: str, at_ns: int) -> Incident:
        """Record who acknowledged an incident, when and why."""
        ...

    async def assign(self, incident_id: int, assignee: str, at_ns: int) -> Incident:
        """Give an incident to someone."""
        ...


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

    async def cap_feed_entries(self, since_ns: int | None, limit: int) -> list[CapDocument]:
        """CAP documents sent at or after ``since_ns``, newest first."""
        ...

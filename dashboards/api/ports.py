"""The narrow interfaces the API reads and changes alerting through.

The incident store (``alerts/incidents/store.py``) satisfies :class:`IncidentStore` structurally;
silences and CAP documents come from the notification pipeline. Each has an in-memory twin in
:mod:`dashboards.api.memory`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from alerts.model import EventKind, Incident
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


@dataclass(frozen=True, slots=True)
class Silence:
    """Notifications matching ``matchers`` (label → value) are held between start and end."""

    id: int
    matchers: Mapping[str, str]
    starts_ns: int
    ends_ns: int
    created_by: str
    comment: str = ""


class SilenceStore(Protocol):
    """Silences, kept by the notification pipeline."""

    async def add(
        self,
        matchers: Mapping[str, str],
        starts_ns: int,
        ends_ns: int,
        created_by: str,
        comment: str,
    ) -> Silence:
        """Store a new silence."""
        ...

    async def list(self, active_at_ns: int | None = None) -> list[Silence]:
        """Silences, only those in force at ``active_at_ns`` when given."""
        ...


@dataclass(frozen=True, slots=True)
class CapDocument:
    """One CAP 1.2 alert message as the notification pipeline produced it."""

    identifier: str
    sent_ns: int
    headline: str
    xml: str
    incident_id: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


class CapArchive(Protocol):
    """The CAP documents produced so far."""

    async def recent(self, limit: int) -> list[CapDocument]:
        """The newest documents first."""
        ...

    async def get(self, identifier: str) -> CapDocument | None:
        """One document."""
        ...

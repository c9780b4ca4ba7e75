"""A fake incident store whose incidents a test puts in directly (the real twin needs commits)."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Collection, Mapping

from alerts.incidents.records import IncidentFilter
from alerts.model import Acknowledgement, EventKind, Incident
from devices.levels import Level


class UnknownIncidentError(KeyError):
    """No incident has this id."""


class MemoryIncidents:
    """Incidents in a dict, filtered like the SQL store filters them."""

    def __init__(self, incidents: Mapping[int, Incident] | None = None) -> None:
        self.incidents: dict[int, Incident] = dict(incidents or {})

    def put(self, incident: Incident) -> None:
        """Add or replace an incident (what the engine's commit would do)."""
        self.incidents[incident.id] = incident

    async def list(
        self,
        active_only: bool = True,
        *,
        regency: str | None = None,
        station: str | None = None,
        kind: EventKind | None = None,
        severity: Level | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int = 100,
        offset: int = 0,
        regencies: Collection[str] | None = None,
    ) -> builtins.list[Incident]:
        """Newest update first; selected as :class:`IncidentFilter` selects in the memory store."""
        wanted = IncidentFilter(
            active_only,
            regency,
            station,
            kind,
            severity,
            since_ns,
            until_ns,
            limit,
            offset,
            None if regencies is None else frozenset(regencies),
        )
        found = [
            dataclasses.replace(i, transitions=())
            for i in self.incidents.values()
            if wanted.matches(i)
        ]
        found.sort(key=lambda i: (i.updated_ns, i.id), reverse=True)
        return found[offset : offset + limit]

    async def get(self, incident_id: int) -> Incident | None:
        """One incident with its transitions."""
        return self.incidents.get(incident_id)

    def _existing(self, incident_id: int) -> Incident:
        try:
            return self.incidents[incident_id]
        except KeyError:
            raise UnknownIncidentError(incident_id) from None

    async def acknowledge(
        self, incident_id: int, by: str, comment: str, at_ns: int, *, only_if_new: bool = False
    ) -> Incident:
        """Record the acknowledgement (with ``only_if_new``, never over an earlier one)."""
        existing = self._existing(incident_id)
        if only_if_new and existing.acknowledged is not None:
            return existing
        incident = dataclasses.replace(
            existing,
            acknowledged=Acknowledgement(by=by, at_ns=at_ns, comment=comment),
            updated_ns=at_ns,
        )
        self.incidents[incident_id] = incident
        return incident

    async def assign(self, incident_id: int, assignee: str | None, at_ns: int) -> Incident:
        """Record the assignee."""
        incident = dataclasses.replace(
            self._existing(incident_id), assignee=assignee, updated_ns=at_ns
        )
        self.incidents[incident_id] = incident
        return incident

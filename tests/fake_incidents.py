"""A fake incident store whose incidents a test puts in directly (the real twin needs commits)."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Mapping

from alerts.model import Acknowledgement, EventKind, Incident, IncidentState
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
    ) -> builtins.list[Incident]:
        """Newest update first."""
        found = [
            dataclasses.replace(i, transitions=())
            for i in self.incidents.values()
            if (not active_only or i.state is not IncidentState.RESOLVED)
            and (regency is None or i.labels.get("regency") == regency)
            and (station is None or i.labels.get("station", i.subject) == station)
            and (kind is None or i.kind == kind)
            and (severity is None or i.severity == severity)
            and (since_ns is None or i.updated_ns >= since_ns)
            and (until_ns is None or i.opened_ns < until_ns)
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

    async def acknowledge(self, incident_id: int, by: str, comment: str, at_ns: int) -> Incident:
        """Record the acknowledgement."""
        incident = dataclasses.replace(
            self._existing(incident_id),
            acknowledged=Acknowledgement(by=by, at_ns=at_ns, comment=comment),
            updated_ns=at_ns,
        )
        self.incidents[incident_id] = incident
        return incident

    async def assign(self, incident_id: int, assignee: str, at_ns: int) -> Incident:
        """Record the assignee."""
        incident = dataclasses.replace(
            self._existing(incident_id), assignee=assignee, updated_ns=at_ns
        )
        self.incidents[incident_id] = incident
        return incident

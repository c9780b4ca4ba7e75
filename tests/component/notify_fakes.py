"""A tiny incident source for notification tests: an outbox and a list of incidents.

Stands in for ``alerts.incidents.memory.MemoryIncidentStore`` (same method names) so the
pipeline can be tested before and independently of the incident store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from alerts.incidents.records import ACTIVE, IncidentFilter
from alerts.model import (
    Acknowledgement,
    AlertEvent,
    EventKind,
    Incident,
    IncidentState,
    Transition,
)
from devices.levels import Level


@dataclass(frozen=True, slots=True)
class Entry:
    id: int
    transition_id: int
    incident_id: int
    transition: Transition
    created_ns: int


class FakeIncidents:
    def __init__(self) -> None:
        self.outbox: list[tuple[Entry, bool]] = []
        self.incidents: dict[tuple[str, str], Incident] = {}

    def transition(
        self,
        station: str,
        severity: Level,
        at_ns: int,
        *,
        kind: EventKind = EventKind.LEVEL,
        state: IncidentState = IncidentState.FIRING,
        late: bool = False,
        source: str | None = None,
        expected_at_ns: int | None = None,
    ) -> int:
        """Commit one transition (incident + outbox row); returns the incident id."""
        rule = f"upstream:{source}" if kind is EventKind.UPSTREAM else str(kind)
        key = (station, rule)
        event = AlertEvent(
            at_ns=at_ns,
            subject=station,
            kind=kind,
            rule=rule,
            firing=state is IncidentState.FIRING,
            severity=severity,
            previous=Level.NORMAL,
            value=100.0 + severity * 50,
            trend_cm_h=30.0,
            late=late,
            source=source,
            expected_at_ns=expected_at_ns,
        )
        old = self.incidents.get(key)
        incident_id = old.id if old else len(self.incidents) + 1
        self.incidents[key] = Incident(
            id=incident_id,
            subject=station,
            rule=rule,
            kind=kind,
            state=state,
            severity=severity,
            opened_ns=old.opened_ns if old else at_ns,
            updated_ns=at_ns,
            last_event=event,
        )
        number = len(self.outbox) + 1
        transition = Transition(station, rule, old.state if old else None, state, event)
        self.outbox.append((Entry(number, number, incident_id, transition, at_ns), False))
        return incident_id

    def acknowledge(self, incident_id: int, at_ns: int) -> None:
        for key, incident in self.incidents.items():
            if incident.id == incident_id:
                self.incidents[key] = dataclasses.replace(
                    incident, acknowledged=Acknowledgement("duty", at_ns)
                )

    async def outbox_new(self, limit: int = 100) -> list[Entry]:
        return [entry for entry, routed in self.outbox if not routed][:limit]

    async def mark_routed(self, outbox_ids: Sequence[int], at_ns: int) -> int:
        ids = set(outbox_ids)
        self.outbox = [(e, routed or e.id in ids) for e, routed in self.outbox]
        return len(ids)

    async def list(self, wanted: IncidentFilter = ACTIVE) -> list[Incident]:
        found = [
            i
            for i in self.incidents.values()
            if not wanted.active_only or i.state is not IncidentState.RESOLVED
        ]
        return found[: wanted.limit]

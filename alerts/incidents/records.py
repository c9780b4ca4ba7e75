"""Pure pieces shared by the SQL store and its in-memory twin: JSON forms and incident updates.

Both stores apply a transition to an incident with :func:`apply_transition`, so they cannot
disagree on what an incident looks like after the same transitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from alerts.model import (
    Acknowledgement,
    AlertEvent,
    EventKind,
    Incident,
    IncidentState,
    Transition,
)
from devices.levels import Level

NEW = "new"
ROUTED = "routed"


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """What :meth:`IncidentStore.list` selects (every ``None`` means: any).

    Attributes:
        active_only: Pending and firing incidents only (not resolved ones).
        regency: Incidents of this regency.
        station: Incidents of this station.
        kind: Incidents of this kind of event.
        severity: Incidents at this level.
        since_ns: Incidents updated at or after this time.
        until_ns: Incidents opened before this time.
        limit: At most this many (the most recently updated first).
        offset: Skipping this many first.
        regencies: A caller's scope: only incidents of these regencies.
    """

    active_only: bool = True
    regency: str | None = None
    station: str | None = None
    kind: EventKind | None = None
    severity: Level | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    limit: int = 100
    offset: int = 0
    regencies: frozenset[str] | None = None

    def matches(self, incident: Incident) -> bool:
        """Whether ``incident`` is selected (the in-memory store's WHERE clause)."""
        if self.active_only and incident.state == IncidentState.RESOLVED:
            return False
        if self.regency is not None and incident.labels.get("regency") != self.regency:
            return False
        if self.regencies is not None and incident.labels.get("regency") not in self.regencies:
            return False
        if self.station is not None and self.station not in (
            incident.subject,
            incident.labels.get("station"),
        ):
            return False
        if self.kind is not None and incident.kind != self.kind:
            return False
        if self.severity is not None and incident.severity != self.severity:
            return False
        if self.since_ns is not None and incident.updated_ns < self.since_ns:
            return False
        return self.until_ns is None or incident.opened_ns < self.until_ns


ACTIVE = IncidentFilter()
"""The default selection: the 100 most recently updated incidents not resolved."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row for the notification pipeline: a committed transition to route.

    Attributes:
        id: The outbox row's id (increasing in commit order).
        transition_id: The ``incident_transitions`` row.
        incident_id: The incident it belongs to.
        transition: The transition itself, with its event.
        created_ns: When it was committed (wall clock).
    """

    id: int
    transition_id: int
    incident_id: int
    transition: Transition
    created_ns: int


@dataclass(frozen=True, slots=True)
class CommitReport:
    """What :meth:`IncidentStore.commit` did.

    Attributes:
        transition_ids: The ids of the transitions stored (each with its outbox row).
        duplicates: Transitions already stored by an earlier commit, skipped.
        skipped: The positions (in the committed sequence) of those duplicates.
    """

    transition_ids: tuple[int, ...]
    duplicates: int = 0
    skipped: tuple[int, ...] = ()


StateRows = Mapping[str, bytes | None]
"""Engine state rows to store: key → value, None to delete the key."""


def transition_key(transition: Transition) -> str:
    """The identity of a transition: the same event moving to the same state is stored once."""
    return f"{transition.event.id}:{transition.state.value}"


def open_key(subject: str, rule: str) -> str:
    """The key that allows one open incident per (subject, rule)."""
    return f"{subject}|{rule}"


def event_to_json(event: AlertEvent) -> dict[str, Any]:
    """An event as a JSON object (``incident_transitions.event``, the notification queue)."""
    return {
        "id": event.id,
        "at_ns": event.at_ns,
        "subject": event.subject,
        "kind": event.kind.value,
        "rule": event.rule,
        "firing": event.firing,
        "severity": event.severity.name,
        "previous": None if event.previous is None else event.previous.name,
        "value": event.value,
        "trend_cm_h": event.trend_cm_h,
        "late": event.late,
        "source": event.source,
        "expected_at_ns": event.expected_at_ns,
        "stations": list(event.stations),
        "detail": event.detail,
        "expected_range_ns": (
            None if event.expected_range_ns is None else list(event.expected_range_ns)
        ),
        "range_open": event.range_open,
        "coverage_pct": event.coverage_pct,
    }


def event_from_json(data: dict[str, Any]) -> AlertEvent:
    """The inverse of :func:`event_to_json`."""
    previous = data.get("previous")
    return AlertEvent(
        at_ns=int(data["at_ns"]),
        subject=data["subject"],
        kind=EventKind(data["kind"]),
        rule=data["rule"],
        firing=bool(data["firing"]),
        severity=Level[data["severity"]],
        previous=None if previous is None else Level[previous],
        value=data.get("value"),
        trend_cm_h=data.get("trend_cm_h"),
        late=bool(data.get("late", False)),
        source=data.get("source"),
        expected_at_ns=data.get("expected_at_ns"),
        stations=tuple(data.get("stations") or ()),
        detail=data.get("detail") or "",
        expected_range_ns=_range(data.get("expected_range_ns")),
        range_open=bool(data.get("range_open", False)),
        coverage_pct=data.get("coverage_pct"),
    )


def _range(value: Any) -> tuple[int, int] | None:
    """A stored ``[earliest, latest]`` pair (absent in events stored before forecasts)."""
    if not value:
        return None
    earliest, latest = value
    return int(earliest), int(latest)


def incident_labels(subject_labels: dict[str, str], event: AlertEvent) -> dict[str, str]:
    """An incident's routing labels: the subject's (regency, river, station), kind, severity."""
    labels = dict(subject_labels)
    labels.setdefault("station", event.subject)
    labels["kind"] = event.kind.value
    labels["severity"] = event.severity.name
    return labels


def open_incident(incident_id: int, transition: Transition, labels: dict[str, str]) -> Incident:
    """A new incident for the first transition of (subject, rule)."""
    event = transition.event
    return apply_transition(
        Incident(
            id=incident_id,
            subject=transition.subject,
            rule=transition.rule,
            kind=event.kind,
            state=transition.state,
            severity=event.severity,
            opened_ns=event.at_ns,
            updated_ns=event.at_ns,
            labels=incident_labels(labels, event),
        ),
        transition,
    )


def apply_transition(incident: Incident, transition: Transition) -> Incident:
    """The incident after ``transition``.

    Severity follows the event while the incident is open and keeps its last open value when
    it resolves (a resolution's own severity is the level it fell to).
    """
    event = transition.event
    resolved = transition.state == IncidentState.RESOLVED
    severity = incident.severity if resolved else event.severity
    labels = dict(incident.labels)
    labels["severity"] = severity.name
    return replace(
        incident,
        state=transition.state,
        severity=severity,
        updated_ns=max(incident.updated_ns, event.at_ns),
        resolved_ns=event.at_ns if resolved else None,
        labels=labels,
        last_event=event,
    )


def acknowledged(incident: Incident, by: str, comment: str, at_ns: int) -> Incident:
    """The incident acknowledged by ``by``."""
    return replace(incident, acknowledged=Acknowledgement(by, at_ns, comment))

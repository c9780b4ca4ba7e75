"""Incidents as JSON objects and as lines for people (``siaga alerts list/show``, the API)."""

from __future__ import annotations

from typing import Any

from alerts.backtest import event_record
from alerts.model import Incident, IncidentState, Transition
from alerts.notify.message import Language, subject_name, summarise
from devices.stations import StationRegistry
from devices.timestamps import format_rfc3339


def _time(ts_ns: int | None) -> str | None:
    return None if ts_ns is None else format_rfc3339(ts_ns)


def transition_json(transition: Transition) -> dict[str, Any]:
    """One transition: the states and the event (with the reading's time and value)."""
    return {
        "previous_state": (
            None if transition.previous_state is None else transition.previous_state.value
        ),
        "state": transition.state.value,
        "event": event_record(transition.event),
    }


def incident_json(incident: Incident, *, with_transitions: bool = False) -> dict[str, Any]:
    """An incident as one JSON object; times RFC 3339 UTC, levels by canonical name."""
    ack = incident.acknowledged
    document: dict[str, Any] = {
        "id": incident.id,
        "station": incident.subject,
        "rule": incident.rule,
        "kind": incident.kind.value,
        "state": incident.state.value,
        "severity": incident.severity.name,
        "opened": _time(incident.opened_ns),
        "updated": _time(incident.updated_ns),
        "resolved": _time(incident.resolved_ns),
        "acknowledged": (
            None
            if ack is None
            else {"by": ack.by, "at": format_rfc3339(ack.at_ns), "comment": ack.comment}
        ),
        "assignee": incident.assignee,
        "labels": dict(incident.labels),
        "last_event": None if incident.last_event is None else event_record(incident.last_event),
    }
    if with_transitions:
        document["transitions"] = [transition_json(t) for t in incident.transitions]
    return document


def summary(incident: Incident, registry: StationRegistry, language: Language = "id") -> str:
    """The incident's last event as one sentence for people, with station names."""
    if incident.last_event is None:
        return subject_name(incident.subject, registry)
    return summarise(
        incident.last_event,
        language,
        registry,
        labels=incident.labels,
        resolved=incident.state is IncidentState.RESOLVED,
    )


def incident_line(
    incident: Incident, registry: StationRegistry, language: Language = "id"
) -> list[str]:
    """The columns of ``siaga alerts list``: the station by name, the summary in ``language``."""
    ack = incident.acknowledged
    return [
        str(incident.id),
        incident.state.value,
        incident.severity.name,
        subject_name(incident.subject, registry),
        incident.rule,
        format_rfc3339(incident.opened_ns),
        format_rfc3339(incident.updated_ns),
        "" if ack is None else ack.by,
        summary(incident, registry, language),
    ]


LIST_COLUMNS = ("id", "state", "severity", "station", "rule", "opened", "updated", "ack", "summary")

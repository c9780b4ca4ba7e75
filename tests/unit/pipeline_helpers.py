"""Notices for the pipeline tests."""

from __future__ import annotations

from alerts.model import AlertEvent, EventKind, IncidentState
from alerts.pipeline.model import Notice, labels_of
from devices.levels import Level

T0 = 1_700_000_000 * 1_000_000_000
S = 1_000_000_000


def notice(
    station: str = "katulampa",
    *,
    incident_id: int = 1,
    regency: str = "Kota Bogor",
    river: str = "Ciliwung",
    kind: EventKind = EventKind.LEVEL,
    severity: Level = Level.WASPADA,
    state: IncidentState = IncidentState.FIRING,
    at_ns: int = T0,
    late: bool = False,
    nid: str | None = None,
) -> Notice:
    """A notice about one station's level (or another kind)."""
    event = AlertEvent(
        at_ns=at_ns,
        subject=station,
        kind=kind,
        rule=str(kind),
        firing=state is IncidentState.FIRING,
        severity=severity,
        previous=Level.NORMAL,
        value=123.0,
        trend_cm_h=12.5,
        late=late,
    )
    return Notice(
        id=nid or f"{station}:{incident_id}:{severity.name}:{at_ns}",
        incident_id=incident_id,
        labels=labels_of(event, state, regency=regency, river=river),
        event=event,
        state=state,
    )

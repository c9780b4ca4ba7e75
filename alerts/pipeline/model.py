"""What flows through the pipeline: a :class:`Notice` is one incident transition for people."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from alerts.model import AlertEvent, IncidentState

Labels = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Notice:
    """One incident transition (or an escalation of it) on its way to people.

    Attributes:
        id: Stable across restarts (the outbox row's transition, or ``esc:<incident>:<step>:<n>``
            for an escalation); the dedup key and part of every message id built from it.
        incident_id: The incident, as people acknowledge it.
        labels: What routes, groups, inhibits and silences match: ``station``, ``regency``,
            ``river``, ``kind``, ``severity``, ``rule``, ``scope``, ``state``, ``late``.
        event: The event that caused the transition.
        state: The incident's new state.
        previous_state: Its state before (None for a new incident).
        reason: ``transition``, ``escalation`` or ``reminder``.
        step: For escalations and reminders, the step of the chain.
    """

    id: str
    incident_id: int
    labels: Labels
    event: AlertEvent
    state: IncidentState
    previous_state: IncidentState | None = None
    reason: str = "transition"
    step: int = 0
    groups: tuple[str, ...] = field(default=())

    @property
    def firing(self) -> bool:
        """Whether the incident is firing after this notice (not resolved, not pending)."""
        return self.state is IncidentState.FIRING


def labels_of(
    event: AlertEvent,
    state: IncidentState,
    *,
    regency: str = "",
    river: str = "",
) -> dict[str, str]:
    """The routing labels of a transition.

    ``scope`` tells a grouped subject (``regency:<name>``, ``gateway:<id>``) from a station;
    a regency-wide event carries its regency from the subject when none is given.
    """
    scope, _, rest = event.subject.partition(":")
    if not rest:
        scope, rest = "station", event.subject
    if scope == "regency" and not regency:
        regency = rest
    return {
        "station": event.subject if scope == "station" else "",
        "regency": regency,
        "river": river,
        "kind": str(event.kind),
        "severity": event.severity.name,
        "rule": event.rule,
        "scope": scope,
        "state": str(state),
        "late": "true" if event.late else "false",
    }

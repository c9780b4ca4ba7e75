"""The values alerting agrees on: what a rule decided, what happened to an incident, what to send.

The engine turns readings into :class:`AlertEvent` values and incident :class:`Transition`
values; the notification pipeline consumes transitions (through the outbox the incident store
writes in the same transaction) and never talks back to the engine. Everything here is pure data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum

from devices.levels import Level


class EventKind(StrEnum):
    """What kind of rule produced an event (``kind`` in backtest output and the API)."""

    LEVEL = "level"
    RATE = "rate"
    UPSTREAM = "upstream"
    NO_DATA = "no_data"
    SENSOR_FAULT = "sensor_fault"
    FORECAST = "forecast"


class IncidentState(StrEnum):
    """Where an incident is in its life."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """One decision of one rule about one subject at one moment.

    Attributes:
        at_ns: The time of the reading that caused it (event time, not arrival); for a
            pending incident that fires, when its pending time ran out; for no-data events,
            the moment the silence was judged.
        subject: The station id, or ``regency:<name>`` / ``gateway:<id>`` for a grouped event.
        kind: The rule kind.
        rule: The rule instance, unique per subject (``level``, ``rate:rise``,
            ``upstream:katulampa``, ``no_data``, ``sensor_fault:flatline``).
        firing: True when the condition holds (or escalated), False when it cleared.
        severity: For ``level`` the new level; for other kinds the level the rule stands for.
        previous: For ``level``, the level before.
        value: The reading's value that decided it (cm for levels), when there is one.
        trend_cm_h: The rise (positive) or fall rate at that moment, when known.
        late: The reading was older than the late-data lag when it arrived (a backlog).
        source: For ``upstream``, the upstream station that warned.
        expected_at_ns: For ``upstream``, when the wave is expected at ``subject``; for
            ``forecast``, when the forecast crosses the level's threshold.
        stations: For a grouped event, the stations it covers.
        detail: One sentence for logs and records (messages are rendered from the facts).
        expected_range_ns: For ``forecast``, the earliest and latest crossing the forecast's
            interval allows; the latest is the horizon's end when ``range_open``.
        range_open: The interval's low bound does not cross within the horizon ("after …").
        coverage_pct: For ``forecast``, the interval's nominal coverage (80).
    """

    at_ns: int
    subject: str
    kind: EventKind
    rule: str
    firing: bool
    severity: Level
    previous: Level | None = None
    value: float | None = None
    trend_cm_h: float | None = None
    late: bool = False
    source: str | None = None
    expected_at_ns: int | None = None
    stations: tuple[str, ...] = ()
    detail: str = ""
    expected_range_ns: tuple[int, int] | None = None
    range_open: bool = False
    coverage_pct: int | None = None

    @property
    def id(self) -> str:
        """A stable id: the same decision about the same reading always has the same id."""
        key = f"{self.subject}|{self.rule}|{self.at_ns}|{int(self.firing)}|{self.severity.name}"
        return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class Transition:
    """An incident changed state because of an event.

    Attributes:
        subject: The incident's subject (see :attr:`AlertEvent.subject`).
        rule: The incident's rule; ``(subject, rule)`` names the incident.
        previous_state: None when the incident is new.
        state: The state it moved to (an escalation within FIRING is a transition too).
        event: The event that caused it, with the reading's time and value.
    """

    subject: str
    rule: str
    previous_state: IncidentState | None
    state: IncidentState
    event: AlertEvent


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Who acknowledged an incident, when, and why."""

    by: str
    at_ns: int
    comment: str = ""


@dataclass(frozen=True, slots=True)
class Incident:
    """One incident per (subject, rule), as the store keeps it.

    Attributes:
        id: The store's id (shown to people: ``siaga alerts ack 42``).
        labels: ``regency``, ``river``, ``station``, ``kind`` and ``severity``, for routing.
        transitions: Filled by the store's ``get``; empty in listings.
    """

    id: int
    subject: str
    rule: str
    kind: EventKind
    state: IncidentState
    severity: Level
    opened_ns: int
    updated_ns: int
    resolved_ns: int | None = None
    acknowledged: Acknowledgement | None = None
    assignee: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    last_event: AlertEvent | None = None
    transitions: tuple[Transition, ...] = ()

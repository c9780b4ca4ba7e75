"""One commit's incident changes, worked out in memory and written in four statements, and the
rows of the incident tables read back as the model's incidents and transitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam
from sqlalchemy.engine import RowMapping

from alerts.incidents import tables
from alerts.incidents.ports import Labels
from alerts.incidents.records import (
    NEW,
    apply_transition,
    event_from_json,
    event_to_json,
    open_incident,
    open_key,
)
from alerts.model import Acknowledgement, EventKind, Incident, IncidentState, Transition
from devices.levels import Level


def incident_from_row(row: Mapping[Any, Any]) -> Incident:
    """An ``incidents`` row as an incident (without its transitions)."""
    ack = None
    if row["acknowledged_by"] is not None:
        ack = Acknowledgement(
            row["acknowledged_by"], int(row["acknowledged_ns"]), row["ack_comment"] or ""
        )
    last = row["last_event"]
    return Incident(
        id=int(row["id"]),
        subject=row["subject"],
        rule=row["rule"],
        kind=EventKind(row["kind"]),
        state=IncidentState(row["state"]),
        severity=Level[row["severity"]],
        opened_ns=int(row["opened_ns"]),
        updated_ns=int(row["updated_ns"]),
        resolved_ns=None if row["resolved_ns"] is None else int(row["resolved_ns"]),
        acknowledged=ack,
        assignee=row["assignee"],
        labels=dict(row["labels"] or {}),
        last_event=None if last is None else event_from_json(last),
    )


def transition_from_row(row: RowMapping) -> Transition:
    """An ``incident_transitions`` row (or a row with its columns) as a transition."""
    event = event_from_json(row["event"])
    previous = row["previous_state"]
    return Transition(
        subject=event.subject,
        rule=event.rule,
        previous_state=None if previous is None else IncidentState(previous),
        state=IncidentState(row["state"]),
        event=event,
    )


_ENGINE_COLUMNS = (
    "state",
    "severity",
    "updated_ns",
    "resolved_ns",
    "labels",
    "last_event",
    "open_key",
)
"""The incident columns the engine changes (acknowledgement and assignee are people's)."""
_INCIDENT_UPDATE = tables.incidents.update().where(
    tables.incidents.c.id == bindparam("incident_id")
)


class CommitPlan:
    """One commit's incident changes, worked out in memory, then written in four statements.

    Statement per transition cost about 0.7 ms in SQLAlchemy (building, caching and executing
    three statements); with ``insertmanyvalues`` a commit of a few hundred transitions is one
    ``UPDATE`` executemany, and three multi-row ``INSERT``s (``RETURNING`` the new ids in the
    parameters' order).

    Args:
        open_rows: The open incidents the transitions move (``open_key`` → row).
    """

    def __init__(self, open_rows: dict[str, dict[str, Any]]) -> None:
        self._open_rows = open_rows
        self._slots: list[dict[str, Any]] = []  # incidents moved: a row, "id" None if new
        self._open_slot: dict[str, int] = {}
        # (slot, transition, key, the event as JSON): one per transition to store
        self.history: list[tuple[int, Transition, str, dict[str, Any]]] = []

    def apply(self, transition: Transition, key: str, labels: Labels) -> None:
        """Move the transition's incident (opened by it when none is open)."""
        slot_key = open_key(transition.subject, transition.rule)
        slot = self._open_slot.get(slot_key)
        if slot is None and slot_key in self._open_rows:
            slot = len(self._slots)
            self._slots.append(self._open_rows.pop(slot_key))
        event = transition.event
        if slot is None:
            after = open_incident(0, transition, dict(labels.get(transition.subject, {})))
            slot = len(self._slots)
            self._slots.append(
                {
                    "id": None,
                    "subject": after.subject,
                    "rule": after.rule,
                    "kind": after.kind.value,
                    "regency": after.labels.get("regency", ""),
                    "river": after.labels.get("river", ""),
                    "opened_ns": after.opened_ns,
                    "acknowledged_by": None,
                    "acknowledged_ns": None,
                    "ack_comment": None,
                    "assignee": None,
                }
            )
        else:
            row = self._slots[slot]
            after = apply_transition(incident_from_row({**row, "id": row["id"] or 0}), transition)
        resolved = after.state == IncidentState.RESOLVED
        event_json = event_to_json(event)
        self._slots[slot].update(
            {
                "state": after.state.value,
                "severity": after.severity.name,
                "updated_ns": after.updated_ns,
                "resolved_ns": after.resolved_ns,
                "labels": after.labels,
                "last_event": event_json,
                "open_key": None if resolved else slot_key,
            }
        )
        if resolved:
            self._open_slot.pop(slot_key, None)
        else:
            self._open_slot[slot_key] = slot
        self.history.append((slot, transition, key, event_json))

    def write(self, connection: Connection, now_ns: int) -> list[int]:
        """Write the changes; the new transitions' ids, in order."""
        incidents, history, outbox = (
            tables.incidents,
            tables.incident_transitions,
            tables.outbox,
        )
        # Every incident in a slot was moved by at least one transition.
        updates = [
            {"incident_id": row["id"], **{name: row[name] for name in _ENGINE_COLUMNS}}
            for row in self._slots
            if row["id"] is not None
        ]
        if updates:
            # Before the inserts: an incident resolved here frees its open_key for a new one.
            connection.execute(_INCIDENT_UPDATE, updates)
        created = [row for row in self._slots if row["id"] is None]
        if created:
            columns = [c.name for c in incidents.columns if c.name != "id"]
            ids = connection.execute(
                incidents.insert().returning(incidents.c.id, sort_by_parameter_order=True),
                [{name: row[name] for name in columns} for row in created],
            ).scalars()
            for row, incident_id in zip(created, ids, strict=True):
                row["id"] = int(incident_id)
        rows = []
        for slot, transition, key, event_json in self.history:
            event = transition.event
            no_data = event.kind == EventKind.NO_DATA
            previous = transition.previous_state
            rows.append(
                {
                    "incident_id": self._slots[slot]["id"],
                    "transition_key": key,
                    "previous_state": None if previous is None else previous.value,
                    "state": transition.state.value,
                    "event_id": event.id,
                    "event": event_json,
                    "at_ns": event.at_ns,
                    "reading_station": None if no_data else event.subject,
                    "reading_ts_ns": None if no_data else event.at_ns,
                    "reading_value": event.value,
                    "committed_ns": now_ns,
                }
            )
        transition_ids = [
            int(i)
            for i in connection.execute(
                history.insert().returning(history.c.id, sort_by_parameter_order=True), rows
            ).scalars()
        ]
        connection.execute(
            outbox.insert(),
            [
                {
                    "transition_id": transition_id,
                    "incident_id": row["incident_id"],
                    "created_ns": now_ns,
                    "state": NEW,
                }
                for transition_id, row in zip(transition_ids, rows, strict=True)
            ],
        )
        return transition_ids

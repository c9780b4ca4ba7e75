"""The incident store in memory: the same contract as :class:`SqlIncidentStore`, no database.

Used by component tests, backtests and the notifier's and API's tests. ``available`` can be
switched off to rehearse a database outage.
"""

from __future__ import annotations

import builtins
import dataclasses
import time
from collections.abc import Sequence

from alerts.incidents.errors import IncidentNotFoundError, IncidentStoreError
from alerts.incidents.ports import LEADER_POLL_S, Labels
from alerts.incidents.records import (
    ACTIVE,
    NEW,
    ROUTED,
    CommitReport,
    IncidentFilter,
    OutboxEntry,
    StateRows,
    acknowledged,
    apply_transition,
    open_incident,
    open_key,
    transition_key,
)
from alerts.model import Incident, IncidentState, Transition


@dataclasses.dataclass(slots=True)
class _OutboxRow:
    id: int
    transition_id: int
    incident_id: int
    created_ns: int
    state: str = NEW
    routed_ns: int | None = None


class MemoryIncidentStore:
    """Incidents, history, outbox and engine state in dictionaries.

    Args:
        states_apart: Have the engine save its snapshots with :meth:`save_states` after
            the transitions' commit (as the SQLite store does), instead of in it.
    """

    def __init__(self, *, states_apart: bool = False) -> None:
        self.states_apart = states_apart
        self.incidents: dict[int, Incident] = {}
        self.history: dict[int, tuple[int, Transition]] = {}  # transition id -> (incident, t)
        self.outbox: dict[int, _OutboxRow] = {}
        self.states: dict[str, bytes] = {}
        self._open: dict[str, int] = {}
        self._keys: set[str] = set()
        self.available = True
        self.leading = True

    def put(self, incident: Incident) -> None:
        """Add or replace an incident as commits would have left it, with its transitions in
        the history (and no outbox rows): for tests and demonstrations that start from a state.
        """
        self.incidents[incident.id] = dataclasses.replace(incident, transitions=())
        for transition in incident.transitions:
            key = transition_key(transition)
            if key not in self._keys:  # stored already, as a commit would skip it
                self._keys.add(key)
                self.history[len(self.history) + 1] = (incident.id, transition)
        slot = open_key(incident.subject, incident.rule)
        if incident.state == IncidentState.RESOLVED:
            if self._open.get(slot) == incident.id:
                del self._open[slot]
        else:
            self._open[slot] = incident.id

    async def prepare(self) -> None:
        """Nothing to create."""

    async def __aenter__(self) -> MemoryIncidentStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to release."""

    async def lead(self, poll_s: float = LEADER_POLL_S) -> None:
        """One process, always the leader."""

    async def check_leadership(self) -> None:
        """Always leading."""

    def _check(self) -> None:
        if not self.available:
            raise IncidentStoreError("memory incident store is switched off")

    async def commit(
        self,
        transitions: Sequence[Transition],
        states: StateRows,
        labels: Labels | None = None,
        now_ns: int | None = None,
    ) -> CommitReport:
        """See :meth:`alerts.incidents.ports.IncidentStore.commit` (all or nothing)."""
        self._check()
        now = time.time_ns() if now_ns is None else now_ns
        labels = labels or {}
        stored: list[int] = []
        skipped: list[int] = []
        # Work on copies, then swap in: a failure half-way leaves nothing behind.
        incidents, opened, keys = dict(self.incidents), dict(self._open), set(self._keys)
        history, outbox = dict(self.history), dict(self.outbox)
        for position, transition in enumerate(transitions):
            key = transition_key(transition)
            if key in keys:
                skipped.append(position)
                continue
            keys.add(key)
            slot = open_key(transition.subject, transition.rule)
            incident_id = opened.get(slot)
            if incident_id is None:
                incident_id = max(incidents, default=0) + 1
                subject_labels = dict(labels.get(transition.subject, {}))
                after = open_incident(incident_id, transition, subject_labels)
            else:
                after = apply_transition(incidents[incident_id], transition)
            incidents[incident_id] = after
            if after.state == IncidentState.RESOLVED:
                opened.pop(slot, None)
            else:
                opened[slot] = incident_id
            transition_id = len(history) + 1
            history[transition_id] = (incident_id, transition)
            outbox_id = len(outbox) + 1
            outbox[outbox_id] = _OutboxRow(outbox_id, transition_id, incident_id, now)
            stored.append(transition_id)
        self.incidents, self._open, self._keys = incidents, opened, keys
        self.history, self.outbox = history, outbox
        self._put_states(states)
        return CommitReport(tuple(stored), len(skipped), tuple(skipped))

    async def save_states(self, states: StateRows) -> None:
        """See :meth:`alerts.incidents.ports.IncidentStore.save_states`."""
        self._check()
        self._put_states(states)

    def _put_states(self, states: StateRows) -> None:
        for key, value in states.items():
            if value is None:
                self.states.pop(key, None)
            else:
                self.states[key] = value

    async def load_states(self) -> dict[str, bytes]:
        """The saved engine state."""
        self._check()
        return dict(self.states)

    async def list(self, wanted: IncidentFilter = ACTIVE) -> builtins.list[Incident]:
        """See :meth:`alerts.incidents.ports.IncidentQueries.list`."""
        self._check()
        found = [
            dataclasses.replace(i, transitions=())
            for i in self.incidents.values()
            if wanted.matches(i)
        ]
        found.sort(key=lambda i: (i.updated_ns, i.id), reverse=True)
        return found[wanted.offset : wanted.offset + wanted.limit]

    async def get(self, incident_id: int) -> Incident | None:
        """One incident with its transitions."""
        self._check()
        incident = self.incidents.get(incident_id)
        if incident is None:
            return None
        transitions = tuple(t for i, t in self.history.values() if i == incident_id)
        return dataclasses.replace(incident, transitions=transitions)

    async def acknowledge(
        self, incident_id: int, by: str, comment: str, at_ns: int, *, only_if_new: bool = False
    ) -> Incident:
        """Record an acknowledgement (with ``only_if_new``, never over an earlier one)."""
        self._check()
        incident = self.incidents.get(incident_id)
        if incident is None:
            raise IncidentNotFoundError(f"no incident {incident_id}")
        if not (only_if_new and incident.acknowledged is not None):
            self.incidents[incident_id] = acknowledged(incident, by, comment, at_ns)
        found = await self.get(incident_id)
        assert found is not None
        return found

    async def assign(self, incident_id: int, assignee: str | None, at_ns: int) -> Incident:
        """Assign (or unassign) an incident."""
        self._check()
        incident = self.incidents.get(incident_id)
        if incident is None:
            raise IncidentNotFoundError(f"no incident {incident_id}")
        self.incidents[incident_id] = dataclasses.replace(incident, assignee=assignee)
        found = await self.get(incident_id)
        assert found is not None
        return found

    async def outbox_new(self, limit: int = 100) -> builtins.list[OutboxEntry]:
        """The oldest new outbox rows."""
        self._check()
        rows = [r for r in self.outbox.values() if r.state == NEW][:limit]
        return [
            OutboxEntry(
                r.id, r.transition_id, r.incident_id, self.history[r.transition_id][1], r.created_ns
            )
            for r in rows
        ]

    async def mark_routed(self, outbox_ids: Sequence[int], at_ns: int) -> int:
        """Mark rows routed."""
        self._check()
        changed = 0
        for outbox_id in outbox_ids:
            row = self.outbox.get(outbox_id)
            if row is not None and row.state == NEW:
                row.state, row.routed_ns = ROUTED, at_ns
                changed += 1
        return changed

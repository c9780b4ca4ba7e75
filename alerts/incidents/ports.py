"""The incident store's interfaces: what the engine, the notifier and the API code against.

:class:`IncidentQueries` is the people's side (list, read, acknowledge, assign);
:class:`IncidentStore` adds the engine's side (commit, engine state, the outbox). Both stores
satisfy them: :class:`alerts.incidents.store.SqlIncidentStore` (SQLite, PostgreSQL) and
:class:`alerts.incidents.memory.MemoryIncidentStore`; one contract suite runs against both.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Final, Protocol

from alerts.incidents.records import (
    ACTIVE,
    CommitReport,
    IncidentFilter,
    OutboxEntry,
    StateRows,
)
from alerts.model import Incident, Transition
from alerts.settings import AlertsSettings

Labels = Mapping[str, Mapping[str, str]]
"""Routing labels per subject (``regency``, ``river``, ``station``), from the registry."""

LEADER_POLL_S: Final[float] = AlertsSettings.model_fields["leader_poll_s"].default
"""How often a standby tries the leader lock unless told (``alerts.leader_poll_s``)."""


class IncidentQueries(Protocol):
    """People's side of the store (contract 3): list, read, acknowledge, assign. All async.

    The API reads and changes incidents through this alone (``dashboards.api.ports``).
    """

    async def list(self, wanted: IncidentFilter = ACTIVE) -> builtins.list[Incident]:
        """The incidents ``wanted`` selects, most recently updated first, without their
        transitions (see :class:`IncidentFilter`)."""
        ...

    async def get(self, incident_id: int) -> Incident | None:
        """One incident with all its transitions (oldest first), or None."""
        ...

    async def acknowledge(
        self, incident_id: int, by: str, comment: str, at_ns: int, *, only_if_new: bool = False
    ) -> Incident:
        """Record who acknowledged the incident. Raises :class:`IncidentNotFoundError`.

        With ``only_if_new`` an earlier acknowledgement is kept (and returned): chat buttons
        and SMS replies acknowledge exactly once however often they are replayed.
        """
        ...

    async def assign(self, incident_id: int, assignee: str | None, at_ns: int) -> Incident:
        """Assign the incident (None unassigns). Raises :class:`IncidentNotFoundError`."""
        ...


class IncidentStore(IncidentQueries, Protocol):
    """Incidents, their history, the outbox and the engine's state. All methods are async."""

    async def commit(
        self,
        transitions: Sequence[Transition],
        states: StateRows,
        labels: Labels | None = None,
        now_ns: int | None = None,
    ) -> CommitReport:
        """Atomically store transitions, one outbox row each, and engine state rows (a key
        with None is deleted).

        A transition already stored (same event, same new state) is skipped, so replaying a
        step after a crash between commit and acknowledgement repeats nothing.

        Raises:
            LeadershipLostError: This store was leading and lost the lock (nothing stored).
            IncidentStoreError: The database failed (nothing stored).
        """
        ...

    async def save_states(self, states: StateRows) -> None:
        """Store engine state rows on their own, in a transaction of their own (None deletes).

        For a snapshot of the engine's state after the checkpoint whose transitions and
        journal entry :meth:`commit` already stored (the loop uses it when ``states_apart`` is
        true): it only replaces journal entries that are durable already. A crash between the
        two restarts from the older snapshot and replays the entries.

        Raises:
            LeadershipLostError: This store was leading and lost the lock (nothing stored).
            IncidentStoreError: The database failed (nothing stored).
        """
        ...

    async def load_states(self) -> dict[str, bytes]:
        """The engine state saved by :meth:`commit` or :meth:`save_states`, for
        ``Engine.restore``."""
        ...

    async def outbox_new(self, limit: int = 100) -> builtins.list[OutboxEntry]:
        """The oldest outbox rows still ``new``, in commit order."""
        ...

    async def mark_routed(self, outbox_ids: Sequence[int], at_ns: int) -> int:
        """Mark outbox rows ``routed``; returns how many changed."""
        ...

    async def aclose(self) -> None:
        """Release connections and the leader lock."""
        ...

"""The notification store: queued notices, deliveries, silences, CAP documents, escalations.

Two implementations with one behaviour: :class:`alerts.notify.sqlstore.SqlNotifyStore`
(SQLite or PostgreSQL, the incident database) and :class:`alerts.notify.memory.MemoryNotifyStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from alerts.notify.cap import CapDocument, CapReference
from alerts.notify.records import Delivery, Queued
from alerts.notify.regency_policy import RegencyPolicy, StoredRegencyPolicy
from alerts.pipeline.silence import Silence


class NotifyQueries(Protocol):
    """The people's side: silences, deliveries, regency policies and the CAP feed (what the
    API reads and changes, ``dashboards.api.ports.NotifyReader``). All methods are async."""

    async def deliveries(
        self, message_id: str | None = None, *, since_ns: int | None = None
    ) -> list[Delivery]:
        """Deliveries (of one message; created at or after ``since_ns``), oldest first."""
        ...

    async def add_silence(self, silence: Silence) -> Silence:
        """Store a silence; returns it with its id."""
        ...

    async def expire_silence(self, silence_id: int, at_ns: int) -> bool:
        """End a silence now; False when there is no such silence."""
        ...

    async def silences(self, now_ns: int | None = None) -> list[Silence]:
        """Silences not yet ended at ``now_ns`` (all when None)."""
        ...

    async def save_regency_policy(
        self, regency: str, policy: RegencyPolicy, created_by: str, created_ns: int
    ) -> StoredRegencyPolicy:
        """Store a new version of a regency's policy (validated by the caller); returns it."""
        ...

    async def regency_policies(
        self, regency: str | None = None, *, history: bool = False
    ) -> list[StoredRegencyPolicy]:
        """The newest version of each regency's policy (of ``regency`` only when given); with
        ``history`` every version, newest first."""
        ...

    async def cap_feed_entries(self, since_ns: int | None, limit: int) -> list[CapDocument]:
        """CAP documents sent at or after ``since_ns``, newest first (the Atom feed)."""
        ...


class NotifyStore(NotifyQueries, Protocol):
    """Where the pipeline keeps what must survive a restart. All methods are async."""

    async def queue(
        self, items: Sequence[Queued], escalations: Sequence[tuple[int, int, int]] = ()
    ) -> list[Queued]:
        """Queue notices for groups; returns those newly queued.

        A (group, notice id) already queued or already flushed is skipped, so re-reading the
        outbox after a crash queues nothing twice. ``escalations`` ``(incident, step, seq)``
        are recorded as emitted in the same transaction.
        """
        ...

    async def queued(self) -> list[Queued]:
        """Everything waiting in buckets (to rebuild the grouper at start)."""
        ...

    async def flush(
        self,
        flushed: Sequence[tuple[str, str]],
        deliveries: Sequence[Delivery],
        documents: Sequence[CapDocument] = (),
    ) -> None:
        """Atomically: remove ``(group, notice id)`` from the queue, add the deliveries (an id
        already present is kept as it is) and the CAP documents."""
        ...

    async def escalations_emitted(self, incident_id: int) -> set[tuple[int, int]]:
        """``(step, seq)`` already emitted for an incident."""
        ...

    async def claim(self, now_ns: int, limit: int, lease_ns: int) -> list[Delivery]:
        """Deliveries due now (pending and due, or sending with an expired lease), marked
        ``sending`` until ``now + lease``; oldest first."""
        ...

    async def record(self, delivery: Delivery) -> None:
        """Store a delivery's new status, attempts, next attempt and error."""
        ...

    async def cap_references(self, incident_id: int) -> list[CapReference]:
        """An incident's CAP documents so far, oldest first (for ``references``)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...

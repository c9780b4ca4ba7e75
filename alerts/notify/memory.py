"""The in-memory notification store: the SQL store's behaviour without a database."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from alerts.notify.cap import CapDocument, CapReference
from alerts.notify.records import PENDING, SENDING, Delivery, Queued
from alerts.notify.regency_policy import RegencyPolicy, StoredRegencyPolicy
from alerts.pipeline.silence import Silence


class MemoryNotifyStore:
    """Implements :class:`alerts.notify.store.NotifyStore` in dictionaries."""

    def __init__(self) -> None:
        self._queue: dict[tuple[str, str], Queued] = {}
        self._flushed: set[tuple[str, str]] = set()
        self._deliveries: dict[str, Delivery] = {}
        self._escalations: set[tuple[int, int, int]] = set()
        self._silences: dict[int, Silence] = {}
        self._documents: dict[str, CapDocument] = {}
        self._regency_policies: dict[str, list[StoredRegencyPolicy]] = {}

    async def queue(
        self, items: Sequence[Queued], escalations: Sequence[tuple[int, int, int]] = ()
    ) -> list[Queued]:
        """See :meth:`NotifyStore.queue`."""
        added = []
        for item in items:
            key = (item.group, item.notice.id)
            if key in self._queue or key in self._flushed:
                continue
            self._queue[key] = item
            added.append(item)
        self._escalations.update(escalations)
        return added

    async def queued(self) -> list[Queued]:
        """See :meth:`NotifyStore.queued`."""
        return sorted(self._queue.values(), key=lambda q: q.queued_ns)

    async def flush(
        self,
        flushed: Sequence[tuple[str, str]],
        deliveries: Sequence[Delivery],
        documents: Sequence[CapDocument] = (),
    ) -> None:
        """See :meth:`NotifyStore.flush`."""
        for key in flushed:
            self._queue.pop(key, None)
            self._flushed.add(key)
        for delivery in deliveries:
            self._deliveries.setdefault(delivery.id, delivery)
        for document in documents:
            self._documents.setdefault(document.identifier, document)

    async def escalations_emitted(self, incident_id: int) -> set[tuple[int, int]]:
        """See :meth:`NotifyStore.escalations_emitted`."""
        return {(step, seq) for i, step, seq in self._escalations if i == incident_id}

    async def claim(self, now_ns: int, limit: int, lease_ns: int) -> list[Delivery]:
        """See :meth:`NotifyStore.claim`."""
        due = [
            d
            for d in self._deliveries.values()
            if (d.status == PENDING and d.next_attempt_ns <= now_ns)
            or (d.status == SENDING and (d.lease_until_ns or 0) <= now_ns)
        ]
        due.sort(key=lambda d: (d.next_attempt_ns, d.created_ns, d.id))
        claimed = []
        for delivery in due[:limit]:
            updated = dataclasses.replace(
                delivery, status=SENDING, lease_until_ns=now_ns + lease_ns
            )
            self._deliveries[delivery.id] = updated
            claimed.append(updated)
        return claimed

    async def record(self, delivery: Delivery) -> None:
        """See :meth:`NotifyStore.record`."""
        self._deliveries[delivery.id] = delivery

    async def deliveries(
        self, message_id: str | None = None, *, since_ns: int | None = None
    ) -> list[Delivery]:
        """See :meth:`NotifyStore.deliveries`."""
        found = [
            d
            for d in self._deliveries.values()
            if (message_id is None or d.message_id == message_id)
            and (since_ns is None or d.created_ns >= since_ns)
        ]
        return sorted(found, key=lambda d: (d.created_ns, d.id))

    async def add_silence(self, silence: Silence) -> Silence:
        """See :meth:`NotifyStore.add_silence`."""
        stored = silence.model_copy(update={"id": len(self._silences) + 1})
        self._silences[stored.id] = stored
        return stored

    async def expire_silence(self, silence_id: int, at_ns: int) -> bool:
        """See :meth:`NotifyStore.expire_silence`."""
        silence = self._silences.get(silence_id)
        if silence is None:
            return False
        end = max(silence.starts_ns + 1, min(silence.ends_ns, at_ns))
        self._silences[silence_id] = silence.model_copy(update={"ends_ns": end})
        return True

    async def silences(self, now_ns: int | None = None) -> list[Silence]:
        """See :meth:`NotifyStore.silences`."""
        return [s for s in self._silences.values() if now_ns is None or s.ends_ns > now_ns]

    async def save_regency_policy(
        self, regency: str, policy: RegencyPolicy, created_by: str, created_ns: int
    ) -> StoredRegencyPolicy:
        """See :meth:`NotifyStore.save_regency_policy`."""
        versions = self._regency_policies.setdefault(regency, [])
        stored = StoredRegencyPolicy(regency, len(versions) + 1, policy, created_by, created_ns)
        versions.append(stored)
        return stored

    async def regency_policies(
        self, regency: str | None = None, *, history: bool = False
    ) -> list[StoredRegencyPolicy]:
        """See :meth:`NotifyStore.regency_policies`."""
        found = []
        for name in sorted(self._regency_policies):
            if regency is None or name == regency:
                versions = self._regency_policies[name][::-1]
                found += versions if history else versions[:1]
        return found

    async def cap_references(self, incident_id: int) -> list[CapReference]:
        """See :meth:`NotifyStore.cap_references`."""
        documents = sorted(
            (d for d in self._documents.values() if d.incident_id == incident_id),
            key=lambda d: (d.sent_ns, d.identifier),
        )
        return [CapReference(d.identifier, d.sent) for d in documents]

    async def cap_feed_entries(self, since_ns: int | None, limit: int) -> list[CapDocument]:
        """See :meth:`NotifyStore.cap_feed_entries`."""
        documents = [
            d for d in self._documents.values() if since_ns is None or d.sent_ns >= since_ns
        ]
        documents.sort(key=lambda d: (d.sent_ns, d.identifier), reverse=True)
        return documents[:limit]

    async def aclose(self) -> None:
        """Nothing to release."""

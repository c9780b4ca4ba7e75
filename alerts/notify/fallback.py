"""Fallback: a message not delivered on a person's primary channels in time goes by SMS too.

:func:`fallbacks_due` is pure: from recent deliveries and the policy it makes the fallback
deliveries due now. A fallback delivery's id is the stable ``delivery_id(message, recipient,
channel)``, and the store keeps a delivery id once, so however often the check runs (or two
notifiers race) a message falls back once. :class:`FallbackWatch` runs it every few seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

from alerts.notify.policy import Policy
from alerts.notify.records import DELIVERED, PENDING, Delivery
from alerts.notify.store import NotifyStore
from alerts.pipeline.dedup import delivery_id
from alerts.settings import NotifySettings

NS = 1_000_000_000


def fallbacks_due(
    deliveries: Sequence[Delivery], policy: Policy, now_ns: int, deadline_s: float
) -> list[Delivery]:
    """The fallback deliveries due at ``now_ns``.

    A (message, recipient) whose recipient has a fallback falls back when none of its primary
    deliveries is delivered ``after_min`` after the first was made, and it has no delivery on
    the fallback channel yet.
    """
    by_message: dict[tuple[str, str], list[Delivery]] = defaultdict(list)
    for delivery in deliveries:
        by_message[(delivery.message_id, delivery.recipient)].append(delivery)
    due = []
    for (message, name), rows in by_message.items():
        recipient = policy.recipient(name)
        if recipient is None or recipient.fallback is None:
            continue
        channel = recipient.fallback.channel
        primary = [r for r in rows if r.channel != channel]
        if not primary or len(primary) < len(rows):
            continue  # nothing to fall back from, or fallen back already
        if any(r.status == DELIVERED for r in primary):
            continue
        order = [c.name for c in recipient.primary]
        # The fallback stands in for the first channel the policy lists (the primary one).
        first = min(
            primary,
            key=lambda r: (r.created_ns, order.index(r.channel) if r.channel in order else 99),
        )
        if now_ns - first.created_ns < recipient.fallback.after_min * 60 * NS:
            continue
        due.append(
            dataclasses.replace(
                first,
                id=delivery_id(message, name, channel),
                channel=channel,
                payload={**first.payload, "fallback_of": first.id},
                status=PENDING,
                attempts=0,
                created_ns=now_ns,
                next_attempt_ns=now_ns,
                deadline_ns=now_ns + int(deadline_s * NS),
                lease_until_ns=None,
                delivered_ns=None,
                last_error=None,
            )
        )
    return due


class FallbackWatch:
    """Looks for messages to fall back every ``interval_s`` while leading.

    Args:
        store: The notification store.
        policy: The policy in force.
        deadline_s: A fallback delivery's own retry deadline.
        on_deliveries: Wakes the sender.
        clock: Nanoseconds since the epoch.
        is_leader: Only the leader looks.
        interval_s: How often.
    """

    def __init__(
        self,
        store: NotifyStore,
        policy: Callable[[], Policy],
        *,
        deadline_s: float,
        on_deliveries: Callable[[], None] = lambda: None,
        clock: Callable[[], int] = time.time_ns,
        is_leader: Callable[[], bool] = lambda: True,
        interval_s: float = NotifySettings.model_fields["fallback_check_s"].default,
    ) -> None:
        self._store = store
        self._policy = policy
        self._deadline_s = deadline_s
        self._on_deliveries = on_deliveries
        self._clock = clock
        self._is_leader = is_leader
        self._interval_s = interval_s
        self.fallen_back = 0

    async def step(self) -> list[Delivery]:
        """Look once; returns the fallback deliveries made."""
        policy = self._policy()
        waits = [r.fallback.after_min for r in policy.recipients if r.fallback is not None]
        if not waits:
            return []
        now = self._clock()
        # Messages older than the longest wait plus a delivery deadline are history.
        since = now - int((max(waits) * 60 + self._deadline_s) * NS)
        due = fallbacks_due(
            await self._store.deliveries(since_ns=since), policy, now, self._deadline_s
        )
        if due:
            await self._store.flush([], due)
            self.fallen_back += len(due)
            self._on_deliveries()
        return due

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            if self._is_leader():
                await self.step()
            await asyncio.sleep(self._interval_s)

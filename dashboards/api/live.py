"""Live updates: poll the stores, turn changes into events, fan them out to bounded queues.

Pure parts (:func:`new_readings`, :func:`changed_incidents`) decide what changed; :class:`LiveHub`
only moves events. A slow client's queue fills up and its further events are dropped and counted
rather than slowing the poller or the other clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from alerts.model import Incident
from ingest.errors import SiagaError
from ingest.storage.base import LatestReading

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One Server-Sent Event: its type (``reading`` or ``alert``), JSON body and regency.

    ``regency`` decides who receives it: clients whose scope reaches that regency (an event
    of no regency goes to deployment-wide clients only).
    """

    kind: str
    data: str
    regency: str | None = None


# Put in every queue when the server shuts down: the stream ends and its connection closes.
END = LiveEvent("end", "")


def new_readings(
    previous: Mapping[str, LatestReading], current: Mapping[str, LatestReading]
) -> list[LatestReading]:
    """Readings newer (by reading time) than what was seen for each station."""
    return [
        reading
        for station_id, reading in current.items()
        if (seen := previous.get(station_id)) is None or reading.ts_ns > seen.ts_ns
    ]


Fingerprint = tuple[int, str, int, str | None, int | None, str | None]


def fingerprint(incident: Incident) -> Fingerprint:
    """What people see change: state, level, update time, acknowledgement, assignee.

    Acknowledging or assigning does not move ``updated_ns`` (that is the event time), so the
    fingerprint holds them too.
    """
    ack = incident.acknowledged
    return (
        incident.updated_ns,
        incident.state.value,
        int(incident.severity),
        ack.by if ack else None,
        ack.at_ns if ack else None,
        incident.assignee,
    )


def changed_incidents(
    seen: dict[int, Fingerprint], incidents: Iterable[Incident]
) -> list[Incident]:
    """Incidents that changed since last seen; updates ``seen`` as it goes."""
    changed = []
    for incident in incidents:
        now = fingerprint(incident)
        if seen.get(incident.id) != now:
            seen[incident.id] = now
            changed.append(incident)
    return changed


class Subscription:
    """One client's bounded queue of events, whose it is, and the regencies it may receive
    (None: every event)."""

    def __init__(self, maxsize: int, owner: str = "", reach: frozenset[str] | None = None) -> None:
        self.queue: asyncio.Queue[LiveEvent] = asyncio.Queue(maxsize)
        self.owner = owner
        self.reach = reach
        self.dropped = 0

    def wants(self, event: LiveEvent) -> bool:
        """Whether ``event`` is inside this client's scope."""
        return self.reach is None or event.regency in self.reach


class LiveHub:
    """Polls while anyone listens and fans events out.

    Args:
        poll: Returns the events since the last call (first call: a baseline, no events).
        interval_s: Time between polls.
        queue_max: Each client's queue bound.
    """

    def __init__(
        self,
        poll: Callable[[], Awaitable[list[LiveEvent]]],
        interval_s: float,
        queue_max: int,
    ) -> None:
        self._poll = poll
        self._interval_s = interval_s
        self._queue_max = queue_max
        self._subscriptions: set[Subscription] = set()
        self._per_owner: dict[str, int] = {}
        self._listening = asyncio.Event()
        self.closed = False
        self.dropped = 0
        self.published = 0
        self.polls = 0
        self.poll_failures = 0

    @property
    def clients(self) -> int:
        """Clients connected now."""
        return len(self._subscriptions)

    def clients_of(self, owner: str) -> int:
        """Streams ``owner`` has open now."""
        return self._per_owner.get(owner, 0)

    def subscribe(self, owner: str = "", reach: frozenset[str] | None = None) -> Subscription:
        """A new client's queue (``owner``: who opened it, for the per-user cap; ``reach``:
        the regencies of the events it receives, None: all)."""
        subscription = Subscription(self._queue_max, owner, reach)
        self._subscriptions.add(subscription)
        self._per_owner[owner] = self._per_owner.get(owner, 0) + 1
        self._listening.set()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Forget a client."""
        if subscription not in self._subscriptions:
            return
        self._subscriptions.discard(subscription)
        left = self._per_owner.pop(subscription.owner, 1) - 1
        if left > 0:
            self._per_owner[subscription.owner] = left
        if not self._subscriptions:
            self._listening.clear()

    def close(self) -> None:
        """End every stream now and refuse new ones (the server is shutting down).

        The server waits for open responses before it stops; an event stream never ends by
        itself, so each gets :data:`END` (ahead of anything it has not sent yet).
        """
        self.closed = True
        for subscription in self._subscriptions:
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            subscription.queue.put_nowait(END)

    def publish(self, events: Iterable[LiveEvent]) -> None:
        """Offer events to every client; a full queue drops the event and counts it."""
        for event in events:
            self.published += 1
            for subscription in self._subscriptions:
                if not subscription.wants(event):
                    continue
                try:
                    subscription.queue.put_nowait(event)
                except asyncio.QueueFull:
                    subscription.dropped += 1
                    self.dropped += 1

    async def run(self) -> None:
        """Poll every interval while at least one client listens; never dies of a bad poll."""
        baseline = True
        while True:
            if not self._listening.is_set():
                await self._listening.wait()
                # What changed while nobody listened is not news: clients load the state first.
                baseline = True
            try:
                events = await self._poll()
                self.polls += 1
                if not baseline:
                    self.publish(events)
                baseline = False
            except SiagaError as exc:
                self.poll_failures += 1
                log.warning("live poll failed: %s", exc)
            await asyncio.sleep(self._interval_s)

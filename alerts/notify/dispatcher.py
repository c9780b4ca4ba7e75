"""The dispatcher: the notification pipeline's driver, outbox → delivery rows. Only moves data.

The order is one declaration, :attr:`Dispatcher.pipeline`, read as Alertmanager's
``PipelineBuilder``: route → (escalate) → group → inhibit → silence → dedup → notify; the
:class:`~alerts.notify.sender.Sender` then sends each delivery row and retries it. Every stage
is a method over one :class:`Round` calling the pure functions of :mod:`alerts.pipeline`:

- **route** reads committed transitions from the incident store's outbox, finds their
  recipient groups and queues them durably (then marks the outbox rows routed);
- **escalate** queues the due steps of unacknowledged incidents' chains the same way;
- **group** lets out the batches whose time has come (:class:`~alerts.pipeline.group.Grouper`);
- **inhibit**, then **silence**, drop muted notices (a notice both inhibited and silenced
  counts as inhibited, as in Alertmanager);
- **dedup** renders one message per batch and language with a stable message id, one delivery
  row per recipient and channel with a stable id (the store keeps one row per id);
- **notify** writes the rows, the queue's flushed entries and the CAP documents in one
  transaction, and wakes the sender.

It only acts while ``is_leader()`` says so.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from alerts.incidents.records import ACTIVE, IncidentFilter
from alerts.model import Incident, IncidentState, Transition
from alerts.notify.cap import CapDocument, CapReference, build_cap, wants_cap
from alerts.notify.message import AckLink, Rendered, level_label, no_ack_link, render
from alerts.notify.policy import Policy
from alerts.notify.records import PENDING, Delivery, Queued
from alerts.notify.sender import nap
from alerts.notify.store import NotifyStore
from alerts.pipeline.dedup import delivery_id, message_id
from alerts.pipeline.escalation import escalations_due
from alerts.pipeline.group import Batch, Grouper
from alerts.pipeline.inhibit import Inhibition
from alerts.pipeline.model import Labels, Notice, labels_of
from alerts.pipeline.route import channels_for, route
from alerts.pipeline.silence import Silence, silenced
from alerts.settings import NotifySettings
from devices.stations import StationRegistry

log = logging.getLogger(__name__)


class OutboxEntry(Protocol):
    """What the incident store's outbox gives (``alerts.incidents.records.OutboxEntry``)."""

    @property
    def id(self) -> int: ...
    @property
    def incident_id(self) -> int: ...
    @property
    def transition_id(self) -> int: ...
    @property
    def transition(self) -> Transition: ...


class IncidentSource(Protocol):
    """The part of the incident store the pipeline reads (``alerts.incidents.store``)."""

    async def outbox_new(self, limit: int = 100) -> Sequence[OutboxEntry]:
        """The oldest outbox rows still ``new``."""
        ...

    async def mark_routed(self, outbox_ids: Sequence[int], at_ns: int) -> int:
        """Mark outbox rows routed."""
        ...

    async def list(self, wanted: IncidentFilter = ACTIVE) -> list[Incident]:
        """The incidents ``wanted`` selects, most recently updated first."""
        ...


def rfc3339(ts_ns: int) -> str:
    """UTC RFC 3339 with seconds."""
    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def notice_labels(event_subject: str, registry: StationRegistry) -> tuple[str, str]:
    """``(regency, river)`` of a subject from the registry (empty when unknown)."""
    station = registry.get(event_subject)
    if station is None:
        return "", ""
    return station.regency, station.river or ""


def notice_of(entry: OutboxEntry, registry: StationRegistry) -> Notice:
    """The pipeline's notice for an outbox row (id ``t<transition id>``: stable)."""
    transition = entry.transition
    regency, river = notice_labels(transition.subject, registry)
    return Notice(
        id=f"t{entry.transition_id}",
        incident_id=entry.incident_id,
        labels=labels_of(transition.event, transition.state, regency=regency, river=river),
        event=transition.event,
        state=transition.state,
        previous_state=transition.previous_state,
    )


@dataclasses.dataclass(slots=True)
class Counts:
    """What the pipeline did (exposed as metrics and in tests)."""

    intake: int = 0
    unrouted: int = 0
    queued: int = 0
    escalations: int = 0
    silenced: int = 0
    inhibited: int = 0
    messages: int = 0
    deliveries: int = 0
    cap_documents: int = 0
    unknown_group: int = 0


def _drop(notices: list[Notice], mutes: Callable[[Labels], object | None]) -> int:
    """Remove from ``notices`` those ``mutes`` mutes (in place); returns how many."""
    before = len(notices)
    notices[:] = [n for n in notices if mutes(n.labels) is None]
    return before - len(notices)


@dataclasses.dataclass(slots=True)
class Round:
    """One pass of the pipeline: what each stage hands the next.

    Attributes:
        now_ns: The moment of the pass (every stage sees the same).
        policy: The policy in force for the whole pass.
        registry: The stations, for labels, messages and CAP areas.
        batches: What the group stage let out.
        kept: Per batch, the notices no mute stage has dropped (yet).
        deliveries: One row per message, recipient and channel (the dedup stage's ids).
    """

    now_ns: int
    policy: Policy
    registry: StationRegistry
    batches: list[Batch] = dataclasses.field(default_factory=list)
    kept: list[list[Notice]] = dataclasses.field(default_factory=list)
    deliveries: list[Delivery] = dataclasses.field(default_factory=list)


Stage = Callable[[Round], Awaitable[None]]


class Dispatcher:
    """Outbox → route → group → inhibit → silence → dedup → notify (see :attr:`pipeline`).

    Args:
        incidents: The incident store (outbox and active incidents).
        store: The notification store.
        policy: Returns the policy in force (hot reload swaps it).
        registry: Stations, for labels and messages.
        settings: The ``notify`` settings (``escalation_check_s``: how often unacknowledged
            incidents are checked for escalation).
        clock: Nanoseconds since the epoch.
        ack_link: Builds an incident's one-click acknowledgement link (the API supplies it).
        is_leader: Only the leader dispatches.
    """

    def __init__(
        self,
        incidents: IncidentSource,
        store: NotifyStore,
        policy: Callable[[], Policy],
        registry: Callable[[], StationRegistry],
        settings: NotifySettings,
        *,
        clock: Callable[[], int] = time.time_ns,
        ack_link: AckLink = no_ack_link,
        is_leader: Callable[[], bool] = lambda: True,
    ) -> None:
        self._incidents = incidents
        self._store = store
        self._policy = policy
        self._registry = registry
        self._settings = settings
        self._clock = clock
        self._ack_link = ack_link
        self._is_leader = is_leader
        self._escalation_check_ns = int(settings.escalation_check_s * 1e9)
        current = policy()
        self.grouper = Grouper(current.timings, current.group_by)
        self.counts = Counts()
        self._firing: list[Labels] = []
        self._next_escalation_ns = 0
        self._started = False
        self._warned_unrouted = False
        self._wake = asyncio.Event()
        self._emitted: dict[int, set[tuple[int, int]]] = {}
        self.on_deliveries: Callable[[], None] = lambda: None
        # The pipeline, in order; each pass runs every stage (Alertmanager's PipelineBuilder).
        # The sender (alerts/notify/sender.py) then delivers each row and retries it.
        self.pipeline: tuple[tuple[str, Stage], ...] = (
            ("route", self._route),  # outbox rows → recipient groups, queued durably
            ("escalate", self._escalate),  # unacknowledged incidents' due steps join the queue
            ("group", self._group),  # the batches whose wait, interval or repeat has come
            ("inhibit", self._inhibit),  # a graver firing alert mutes a lesser one
            ("silence", self._silence),  # people's silences mute what they match
            ("dedup", self._dedup),  # stable ids: one message a batch, a row a recipient+channel
            ("notify", self._notify),  # rows and CAP documents in one transaction; wake the sender
        )

    def wake(self) -> None:
        """Look at the outbox now (the engine just committed), not at the next tick."""
        self._wake.set()

    async def start(self) -> None:
        """Rebuild the buckets from the durable queue (after a restart)."""
        for item in await self._store.queued():
            self.grouper.add(item.group, item.notice, item.queued_ns)
        self._started = True

    async def run(self) -> None:
        """Dispatch every ``tick_s`` while leading, until cancelled."""
        if not self._started:
            await self.start()
        while True:
            if self._is_leader():
                await self.step()
            await nap(self._wake, self._settings.tick_s)

    async def step(self, now_ns: int | None = None) -> list[Batch]:
        """One pass through :attr:`pipeline`. Returns the batches the group stage let out."""
        now = self._clock() if now_ns is None else now_ns
        current = Round(now, self._policy(), self._registry())
        for _name, stage in self.pipeline:
            await stage(current)
        return current.batches

    async def _route(self, r: Round) -> None:
        entries = await self._incidents.outbox_new(self._settings.claim_limit)
        if not entries:
            return
        items: list[Queued] = []
        for entry in entries:
            notice = notice_of(entry, r.registry)
            groups = route(notice.labels, r.policy.routes, r.policy.default_groups)
            if not groups:
                self.counts.unrouted += 1
                if not self._warned_unrouted:
                    log.warning(
                        "no recipient group for incident %d (%s) and no default_groups in "
                        "the policy: not notified (counted in unrouted; said once)",
                        entry.incident_id,
                        notice.event.subject,
                    )
                    self._warned_unrouted = True
            items.extend(Queued(group, notice, r.now_ns) for group in groups)
        added = await self._store.queue(items)
        await self._incidents.mark_routed([e.id for e in entries], r.now_ns)
        self.counts.intake += len(entries)
        self.counts.queued += len(added)
        for item in added:
            self.grouper.add(item.group, item.notice, item.queued_ns)

    async def _escalate(self, r: Round) -> None:
        now, policy = r.now_ns, r.policy
        if now < self._next_escalation_ns:
            return
        self._next_escalation_ns = now + self._escalation_check_ns
        active = await self._incidents.list(IncidentFilter(limit=100_000))
        firing: list[Labels] = []
        acknowledged: list[int] = []
        items: list[Queued] = []
        emitted_keys: list[tuple[int, int, int]] = []
        for incident in active:
            event = incident.last_event
            if event is None or incident.state is not IncidentState.FIRING:
                continue
            regency, river = notice_labels(incident.subject, r.registry)
            labels = labels_of(event, incident.state, regency=regency, river=river)
            firing.append(labels)
            if incident.acknowledged is not None:
                acknowledged.append(incident.id)
                continue
            found = policy.chain_for(route(labels, policy.routes, policy.default_groups))
            if found is None:
                continue
            chain, routed = found
            emitted = self._emitted.get(incident.id)
            if emitted is None:  # once per incident per leader: then kept up to date here
                emitted = self._emitted[incident.id] = await self._store.escalations_emitted(
                    incident.id
                )
            for due in escalations_due(
                chain,
                firing_since_ns=incident.opened_ns,
                now_ns=now,
                acknowledged=False,
                resolved=False,
                emitted=emitted,
            ):
                notice = Notice(
                    id=f"esc:{incident.id}:{due.step}:{due.seq}",
                    incident_id=incident.id,
                    labels=labels,
                    event=event,
                    state=IncidentState.FIRING,
                    reason=due.reason,
                    step=due.step,
                )
                targets = routed if due.step == 0 else (due.group,)
                items.extend(Queued(group, notice, now) for group in targets)
                emitted_keys.append((incident.id, due.step, due.seq))
        self._firing = firing
        active_ids = {incident.id for incident in active}
        for gone in set(self._emitted) - active_ids:
            del self._emitted[gone]
        if acknowledged:
            self.grouper.forget(acknowledged)
        if items:
            added = await self._store.queue(items, emitted_keys)
            for incident_id, step, seq in emitted_keys:
                self._emitted.setdefault(incident_id, set()).add((step, seq))
            self.counts.escalations += len(added)
            for item in added:
                self.grouper.add(item.group, item.notice, item.queued_ns)

    async def _group(self, r: Round) -> None:
        self.grouper.timings = r.policy.timings
        r.batches = self.grouper.due(r.now_ns)
        r.kept = [list(batch.notices) for batch in r.batches]

    async def _inhibit(self, r: Round) -> None:
        if not r.batches:
            return
        inhibition = Inhibition(self._firing, r.policy.inhibit)
        for batch, kept in zip(r.batches, r.kept, strict=True):
            firing = [n.labels for n in batch.notices if n.firing]  # a batch's own count too
            inhibition.add(firing)
            self.counts.inhibited += _drop(kept, inhibition.mutes)
            inhibition.remove(firing)

    async def _silence(self, r: Round) -> None:
        if not any(r.kept):
            return
        silences: list[Silence] = [s.silence() for s in r.policy.silences]
        silences += await self._store.silences(r.now_ns)
        for kept in r.kept:
            self.counts.silenced += _drop(kept, lambda labels: silenced(labels, r.now_ns, silences))

    async def _dedup(self, r: Round) -> None:
        for number, (batch, kept) in enumerate(zip(r.batches, r.kept, strict=True)):
            if number:
                # A flush after a national surge holds thousands of notices: the engine's
                # evaluation loop shares this thread, so it gets its turn between batches.
                await asyncio.sleep(0)
            if kept:
                r.deliveries.extend(self._deliveries(r.policy, batch, kept, r.now_ns, r.registry))

    async def _notify(self, r: Round) -> None:
        if not r.batches:
            return
        flushed = [(b.group, n.id) for b in r.batches if not b.repeat for n in b.notices]
        documents = await self._cap_documents(r)
        await self._store.flush(flushed, r.deliveries, documents)
        if r.deliveries:
            self.on_deliveries()
        self.counts.deliveries += len(r.deliveries)
        self.counts.cap_documents += len(documents)

    async def _cap_documents(self, r: Round) -> list[CapDocument]:
        """The CAP documents of the batches' news, muted or not (the public feed does not
        depend on staff routing)."""
        documents: list[CapDocument] = []
        references: dict[int, list[CapReference]] = {}
        made: set[str] = set()
        for number, batch in enumerate(r.batches):
            if number:
                await asyncio.sleep(0)  # as in the dedup stage: the engine's loop gets its turn
            for notice in batch.notices:
                if batch.repeat or not wants_cap(notice) or notice.id in made:
                    continue
                made.add(notice.id)
                if notice.incident_id not in references:
                    references[notice.incident_id] = await self._store.cap_references(
                        notice.incident_id
                    )
                chain = references[notice.incident_id]
                document = build_cap(
                    notice,
                    r.registry,
                    chain,
                    sender=self._settings.cap_sender,
                    sent_ns=notice.event.at_ns,
                    radius_km=self._settings.cap_radius_km,
                    status=self._settings.cap_status,
                )
                if all(ref.identifier != document.identifier for ref in chain):
                    chain.append(CapReference(document.identifier, document.sent))
                    documents.append(document)
        return documents

    def _deliveries(
        self,
        policy: Policy,
        batch: Batch,
        notices: Sequence[Notice],
        now: int,
        registry: StationRegistry,
    ) -> list[Delivery]:
        group = policy.group(batch.group)
        if group is None:
            self.counts.unknown_group += 1
            log.warning(
                "group %s is no longer in the policy: %d notices dropped", batch.group, len(notices)
            )
            return []
        message = message_id(
            batch.group, [n.id for n in notices], repeat_at_ns=now if batch.repeat else None
        )
        self.counts.messages += 1
        late = all(n.event.late for n in notices)
        payload = {
            "group": batch.group,
            "repeat": batch.repeat,
            "alerts": [self._alert_json(n, registry) for n in notices],
        }
        rendered: dict[str, Rendered] = {}
        deadline = now + int(self._settings.delivery_deadline_s * 1e9)
        out: list[Delivery] = []
        for member in group.members:
            recipient = policy.recipient(member)
            if recipient is None:
                continue
            language = recipient.language
            if language not in rendered:
                rendered[language] = render(
                    notices,
                    language,
                    registry,
                    ack_link=self._ack_link,
                    zones=dict(policy.time_zones),
                    repeat=batch.repeat,
                )
            text = rendered[language]
            paging = {c.name: c.paging for c in recipient.primary}
            for channel in channels_for(paging, late=late, page_late=policy.page_late):
                out.append(
                    Delivery(
                        id=delivery_id(message, recipient.name, channel),
                        message_id=message,
                        group=batch.group,
                        recipient=recipient.name,
                        channel=channel,
                        language=language,
                        subject=text.subject,
                        body=text.body,
                        short=text.short,
                        payload=payload,
                        status=PENDING,
                        created_ns=now,
                        next_attempt_ns=now,
                        deadline_ns=deadline,
                    )
                )
        return out

    @staticmethod
    def _alert_json(notice: Notice, registry: StationRegistry) -> dict[str, Any]:
        event = notice.event
        station = registry.get(event.subject)
        return {
            "incident_id": notice.incident_id,
            "notice_id": notice.id,
            "reason": notice.reason,
            "station": event.subject,
            "regency": notice.labels.get("regency", ""),
            "river": notice.labels.get("river", ""),
            "kind": event.kind.value,
            "rule": event.rule,
            "level": event.severity.name,
            "level_label": level_label(station, event.severity, event.at_ns),
            "state": notice.state.value,
            "firing": event.firing,
            "late": event.late,
            "at": rfc3339(event.at_ns),
            "value_cm": event.value,
            "trend_cm_h": event.trend_cm_h,
            "expected_at": rfc3339(event.expected_at_ns) if event.expected_at_ns else None,
            "source": event.source,
        }

"""The notification shell: outbox → pipeline → deliveries → channels. Only moves data.

:class:`Dispatcher` reads committed transitions from the incident store's outbox, routes them
and queues them per recipient group (durably, then marks the outbox rows routed), grouped by
the pure :class:`~alerts.pipeline.group.Grouper`. When a group is due it drops what is
inhibited or silenced, renders one message per language, and writes one delivery row per
recipient and channel (with the CAP documents) in one transaction. Escalations of
unacknowledged incidents are queued the same way.

:class:`Sender` claims due delivery rows and sends them, each channel with its own
concurrency limit so a slow or failing channel never holds up the others; it records the
outcome and schedules retries with backoff until the deadline. A crash while sending leaves
rows ``sending``; their lease expires and they are sent again with the same ids (the only
possible repeats). Both only act while ``is_leader()`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from alerts.model import Incident, IncidentState, Transition
from alerts.notify.apprise_channel import AppriseChannel
from alerts.notify.cap import CapDocument, CapReference, build_cap, wants_cap
from alerts.notify.channels import Channel, Outgoing, SendResult
from alerts.notify.errors import DeliveryError
from alerts.notify.message import AckLink, Rendered, level_label, no_ack_link, render
from alerts.notify.policy import ChannelSpec, Policy
from alerts.notify.records import DELIVERED, FAILED, PENDING, Delivery, Queued
from alerts.notify.store import NotifyStore
from alerts.notify.webhook import WebhookChannel
from alerts.pipeline.dedup import delivery_id, message_id
from alerts.pipeline.escalation import escalations_due
from alerts.pipeline.group import Batch, Grouper
from alerts.pipeline.inhibit import Inhibition
from alerts.pipeline.model import Labels, Notice, labels_of
from alerts.pipeline.route import channels_for, route
from alerts.pipeline.silence import Silence, silenced
from alerts.settings import NotifySettings
from devices.stations import StationRegistry
from ingest.retry import RetryPolicy as Backoff

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

    async def list(self, active_only: bool = True, *, limit: int = 100) -> list[Incident]:
        """Incidents, most recently updated first (the store's other filters unused here)."""
        ...


async def _nap(wake: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``wake`` is set meanwhile; then clear it."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
    wake.clear()


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


class Dispatcher:
    """Outbox → route → queue → group → inhibit/silence → deliveries (see the module doc).

    Args:
        incidents: The incident store (outbox and active incidents).
        store: The notification store.
        policy: Returns the policy in force (hot reload swaps it).
        registry: Stations, for labels and messages.
        settings: The ``notify`` settings.
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
        escalation_check_s: float = 1.0,
    ) -> None:
        self._incidents = incidents
        self._store = store
        self._policy = policy
        self._registry = registry
        self._settings = settings
        self._clock = clock
        self._ack_link = ack_link
        self._is_leader = is_leader
        self._escalation_check_ns = int(escalation_check_s * 1e9)
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
            await _nap(self._wake, self._settings.tick_s)

    async def step(self, now_ns: int | None = None) -> list[Batch]:
        """One round: intake, escalations, due groups. Returns the batches flushed."""
        now = self._clock() if now_ns is None else now_ns
        policy = self._policy()
        self.grouper.timings = policy.timings
        await self._intake(policy, now)
        if now >= self._next_escalation_ns:
            await self._escalate(policy, now)
            self._next_escalation_ns = now + self._escalation_check_ns
        batches = self.grouper.due(now)
        if batches:
            await self._flush(policy, batches, now)
        return batches

    async def _intake(self, policy: Policy, now: int) -> None:
        entries = await self._incidents.outbox_new(self._settings.claim_limit)
        if not entries:
            return
        registry = self._registry()
        items: list[Queued] = []
        for entry in entries:
            notice = notice_of(entry, registry)
            groups = route(notice.labels, policy.routes, policy.default_groups)
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
            items.extend(Queued(group, notice, now) for group in groups)
        added = await self._store.queue(items)
        await self._incidents.mark_routed([e.id for e in entries], now)
        self.counts.intake += len(entries)
        self.counts.queued += len(added)
        for item in added:
            self.grouper.add(item.group, item.notice, item.queued_ns)

    async def _escalate(self, policy: Policy, now: int) -> None:
        active = await self._incidents.list(active_only=True, limit=100_000)
        registry = self._registry()
        firing: list[Labels] = []
        acknowledged: list[int] = []
        items: list[Queued] = []
        emitted_keys: list[tuple[int, int, int]] = []
        for incident in active:
            event = incident.last_event
            if event is None or incident.state is not IncidentState.FIRING:
                continue
            regency, river = notice_labels(incident.subject, registry)
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

    async def _flush(self, policy: Policy, batches: Sequence[Batch], now: int) -> None:
        registry = self._registry()
        silences: list[Silence] = [s.silence() for s in policy.silences]
        silences += await self._store.silences(now)
        flushed: list[tuple[str, str]] = []
        deliveries: list[Delivery] = []
        documents: list[CapDocument] = []
        references: dict[int, list[CapReference]] = {}
        made: set[str] = set()
        inhibition = Inhibition(self._firing, policy.inhibit)
        for number, batch in enumerate(batches):
            if number:
                # A flush after a national surge holds thousands of notices: the engine's
                # evaluation loop shares this thread, so it gets its turn between batches.
                await asyncio.sleep(0)
            if not batch.repeat:
                flushed.extend((batch.group, n.id) for n in batch.notices)
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
                    registry,
                    chain,
                    sender=self._settings.cap_sender,
                    sent_ns=notice.event.at_ns,
                    radius_km=self._settings.cap_radius_km,
                    status=self._settings.cap_status,
                )
                if all(ref.identifier != document.identifier for ref in chain):
                    chain.append(CapReference(document.identifier, document.sent))
                    documents.append(document)
            firing = [n.labels for n in batch.notices if n.firing]
            inhibition.add(firing)
            kept: list[Notice] = []
            for notice in batch.notices:
                if silenced(notice.labels, now, silences) is not None:
                    self.counts.silenced += 1
                elif inhibition.mutes(notice.labels) is not None:
                    self.counts.inhibited += 1
                else:
                    kept.append(notice)
            inhibition.remove(firing)
            if kept:
                deliveries.extend(self._deliveries(policy, batch, kept, now, registry))
        await self._store.flush(flushed, deliveries, documents)
        if deliveries:
            self.on_deliveries()
        self.counts.deliveries += len(deliveries)
        self.counts.cap_documents += len(documents)

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


class ChannelBook:
    """The channels of the policy in force, built on first use and rebuilt on reload.

    Args:
        client: The HTTP client webhooks share.
        environ: Where ``${VAR}`` secrets and webhook keys come from (the process by default).
        timeout_s: Webhook timeout per attempt.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        environ: Mapping[str, str] | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        self._client = client
        self._environ = environ
        self._timeout_s = timeout_s
        self._cache: dict[tuple[str, str], tuple[ChannelSpec, Channel]] = {}
        self.overrides: dict[tuple[str, str], Channel] = {}
        self.kinds: dict[str, Callable[[ChannelSpec], Channel]] = {}
        """Factories of the channel types that need a running part (``telegram``, ``sms``)."""

    def get(self, policy: Policy, recipient: str, name: str) -> Channel | None:
        """The channel ``name`` of ``recipient`` under ``policy`` (None: no longer exists)."""
        if (recipient, name) in self.overrides:
            return self.overrides[(recipient, name)]
        person = policy.recipient(recipient)
        spec = next((c for c in person.channels if c.name == name), None) if person else None
        if spec is None:
            return None
        cached = self._cache.get((recipient, name))
        if cached is not None and cached[0] == spec:
            return cached[1]
        channel = self._build(spec)
        self._cache[(recipient, name)] = (spec, channel)
        return channel

    def _build(self, spec: ChannelSpec) -> Channel:
        if spec.type in {"telegram", "sms"}:
            factory = self.kinds.get(spec.type)
            if factory is None:
                return Unavailable(spec.name, f"{spec.type} is not set up in this process")
            return factory(spec)
        if spec.type == "webhook":
            env = os.environ if self._environ is None else self._environ
            key = env.get(spec.secret_env or "", "")
            return WebhookChannelLazy(
                spec, SecretStr(key), self._client, self._timeout_s, self._environ
            )
        return AppriseChannel(
            spec.name, spec.url, pages=spec.paging, short=spec.short, environ=self._environ
        )


class Unavailable:
    """A channel whose part is not running (no bot token, no modem): fails for good, saying why."""

    pages = True

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self._why = why

    async def send(self, message: Outgoing) -> SendResult:
        """Refuse."""
        return SendResult(False, False, f"{self.name}: {self._why}")


class WebhookChannelLazy:
    """A webhook channel that refuses to send without its key (permanent failure)."""

    pages = False

    def __init__(
        self,
        spec: ChannelSpec,
        secret: SecretStr,
        client: httpx.AsyncClient,
        timeout_s: float,
        environ: Mapping[str, str] | None,
    ) -> None:
        self.name = spec.name
        self._secret_env = spec.secret_env
        self._missing = not secret.get_secret_value()
        self._channel = WebhookChannel(
            spec.name, spec.url, secret, client, timeout_s=timeout_s, environ=environ
        )

    async def send(self, message: Outgoing) -> SendResult:
        """Send, unless the key is missing."""
        if self._missing:
            return SendResult(False, False, f"{self.name}: {self._secret_env} is not set")
        return await self._channel.send(message)


class Sender:
    """Claims due deliveries and sends them; retries with backoff until the deadline.

    Args:
        store: The notification store.
        channels: Finds the channel of a (recipient, channel name).
        policy: The policy in force.
        settings: The ``notify`` settings.
        clock: Nanoseconds since the epoch.
        is_leader: Only the leader sends.
        rng: Jitter's randomness (seeded in tests).
    """

    def __init__(
        self,
        store: NotifyStore,
        channels: ChannelBook,
        policy: Callable[[], Policy],
        settings: NotifySettings,
        *,
        clock: Callable[[], int] = time.time_ns,
        is_leader: Callable[[], bool] = lambda: True,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._channels = channels
        self._policy = policy
        self._settings = settings
        self._clock = clock
        self._is_leader = is_leader
        self._rng = rng or random.Random()  # noqa: S311 - jitter
        self.backoff = Backoff(
            initial_s=settings.retry_initial_s,
            max_s=settings.retry_max_s,
            multiplier=settings.retry_multiplier,
            jitter=settings.retry_jitter,
            deadline_s=settings.delivery_deadline_s,
        )
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._in_flight: set[str] = set()
        self.counts: Counter[str] = Counter()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Claim now (the dispatcher just wrote deliveries), not at the next tick."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and send every ``tick_s`` while leading, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            while True:
                if self._is_leader():
                    for delivery in await self._claim():
                        tasks.create_task(
                            self._deliver(delivery), name=f"notify.send.{delivery.id}"
                        )
                await _nap(self._wake, self._settings.tick_s)

    async def step(self) -> int:
        """Claim what is due and send it all (tests and one-shot runs); returns how many."""
        claimed = await self._claim()
        await asyncio.gather(*(self._deliver(d) for d in claimed))
        return len(claimed)

    async def _claim(self) -> list[Delivery]:
        now = self._clock()
        claimed = await self._store.claim(
            now, self._settings.claim_limit, int(self._settings.lease_s * 1e9)
        )
        fresh = [d for d in claimed if d.id not in self._in_flight]
        self._in_flight.update(d.id for d in fresh)
        return fresh

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            key = f"{delivery.recipient}/{delivery.channel}"
            limit = self._limits.setdefault(
                key, asyncio.Semaphore(self._settings.channel_concurrency)
            )
            async with limit:
                result = await self._attempt(delivery)
            await self._store.record(self._after(delivery, result))
        finally:
            self._in_flight.discard(delivery.id)

    async def _attempt(self, delivery: Delivery) -> SendResult:
        channel = self._channels.get(self._policy(), delivery.recipient, delivery.channel)
        if channel is None:
            return SendResult(False, False, "channel no longer in the policy")
        outgoing = Outgoing(
            id=delivery.message_id,
            delivery_id=delivery.id,
            recipient=delivery.recipient,
            language=delivery.language,
            subject=delivery.subject,
            body=delivery.body,
            short=delivery.short,
            payload=delivery.payload,
        )
        try:
            async with asyncio.timeout(self._settings.lease_s / 2):
                return await channel.send(outgoing)
        except DeliveryError as exc:
            return SendResult(False, exc.retryable, str(exc), exc.retry_after_s)
        except TimeoutError:
            return SendResult(False, True, f"{delivery.channel}: timed out")
        except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the others
            log.warning("channel %s failed unexpectedly: %s", delivery.channel, type(exc).__name__)
            return SendResult(False, True, f"{delivery.channel}: {type(exc).__name__}")

    def _after(self, delivery: Delivery, result: SendResult) -> Delivery:
        now = self._clock()
        attempts = delivery.attempts + 1
        if result.delivered:
            self.counts["delivered"] += 1
            return dataclasses.replace(
                delivery,
                status=DELIVERED,
                attempts=attempts,
                delivered_ns=now,
                lease_until_ns=None,
                last_error=None,
            )
        delay_s = self.backoff.delay_s(attempts, self._rng)
        if result.retry_after_s is not None:
            delay_s = max(delay_s, result.retry_after_s)
        next_ns = now + int(delay_s * 1e9)
        if result.retryable and next_ns <= delivery.deadline_ns:
            self.counts["retried"] += 1
            return dataclasses.replace(
                delivery,
                status=PENDING,
                attempts=attempts,
                next_attempt_ns=next_ns,
                lease_until_ns=None,
                last_error=result.error,
            )
        self.counts["failed"] += 1
        log.warning(
            "delivery %s to %s/%s failed: %s",
            delivery.id,
            delivery.recipient,
            delivery.channel,
            result.error,
        )
        return dataclasses.replace(
            delivery,
            status=FAILED,
            attempts=attempts,
            lease_until_ns=None,
            last_error=result.error,
        )

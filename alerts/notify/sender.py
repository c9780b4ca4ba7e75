"""The sender: claims due delivery rows and sends them, retrying with backoff until the deadline.

Each (recipient, channel) has its own concurrency limit, so a slow or failing channel never
holds up the others; the outcome is recorded and a retry scheduled with backoff (honouring a
channel's ``Retry-After``) while the delivery's deadline allows. A crash while sending leaves
rows ``sending``; their lease expires and they are sent again with the same ids (the only
possible repeats). It only acts while ``is_leader()`` says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections import Counter
from collections.abc import Callable

from alerts.notify.channelbook import ChannelBook
from alerts.notify.channels import Outgoing, SendResult
from alerts.notify.errors import DeliveryError
from alerts.notify.policy import Policy
from alerts.notify.records import DELIVERED, FAILED, PENDING, Delivery
from alerts.notify.store import NotifyStore
from alerts.settings import NotifySettings
from ingest.retry import RetryPolicy

log = logging.getLogger(__name__)


async def nap(wake: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``wake`` is set meanwhile; then clear it."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wake.wait()
    wake.clear()


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
        self.backoff = RetryPolicy(
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
                await nap(self._wake, self._settings.tick_s)

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

"""The message source interface, and an in-memory source that behaves like a QoS 1 broker."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)  # not frozen: built per message on the hot path (see Reading)
class Delivery:
    """A message handed to the worker; ``token`` is None when nothing is to be acknowledged."""

    topic: str
    payload: bytes
    token: int | None


class MessageSource(Protocol):
    """Where messages come from. The MQTT subscriber and :class:`MemorySource` implement it."""

    async def run(self) -> None:
        """Keep the source connected until cancelled."""
        ...

    async def next_chunk(self, timeout_s: float | None) -> list[Delivery]:
        """The next messages, or ``[]`` when ``timeout_s`` passes first."""
        ...

    def ack(self, tokens: list[int]) -> int:
        """Acknowledge messages whose readings are durable; returns how many were sent."""
        ...

    def stop_reading(self) -> None:
        """Stop taking new messages (graceful shutdown)."""
        ...

    def drain_buffered(self) -> list[Delivery]:
        """Messages received but not yet handed out."""
        ...

    async def disconnect(self) -> None:
        """Leave cleanly; unacknowledged messages stay with the source."""
        ...


class MemorySource:
    """An in-memory QoS 1 source: every message stays unacknowledged until :meth:`ack`.

    :meth:`crash` forgets what was handed out without acknowledgement and offers it again, as a
    broker does when a subscriber's connection drops.
    """

    def __init__(self) -> None:
        self._next_token = 1
        self._waiting: collections.deque[Delivery] = collections.deque()
        self.unacked: dict[int, Delivery] = {}
        self.acked: list[int] = []
        self._ready = asyncio.Event()
        self._stopped = False

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """Offer a message."""
        token = None
        if qos:
            token = self._next_token
            self._next_token += 1
        delivery = Delivery(topic, payload, token)
        if token is not None:
            self.unacked[token] = delivery
        self._waiting.append(delivery)
        self._ready.set()

    def crash(self) -> None:
        """Redeliver every unacknowledged message (after a lost connection)."""
        handed_out = [d for d in self.unacked.values() if d not in self._waiting]
        self._waiting.extend(handed_out)
        self._ready.set()

    async def run(self) -> None:
        """Nothing to keep alive."""
        await asyncio.Event().wait()

    async def next_chunk(self, timeout_s: float | None) -> list[Delivery]:
        """Up to 1000 waiting messages."""
        if self._stopped:
            await asyncio.sleep(timeout_s or 0)
            return []
        if not self._waiting:
            self._ready.clear()
            try:
                async with asyncio.timeout(timeout_s):
                    await self._ready.wait()
            except TimeoutError:
                return []
        count = min(1000, len(self._waiting))
        return [self._waiting.popleft() for _ in range(count)]

    def ack(self, tokens: list[int]) -> int:
        """Acknowledge; unknown tokens are ignored like a broker ignores stale packet ids."""
        sent = 0
        for token in tokens:
            if self.unacked.pop(token, None) is not None:
                self.acked.append(token)
                sent += 1
        return sent

    def stop_reading(self) -> None:
        """Hand out nothing more."""
        self._stopped = True

    def drain_buffered(self) -> list[Delivery]:
        """Nothing is buffered beyond the waiting queue, which stays with the 'broker'."""
        return []

    async def disconnect(self) -> None:
        """Nothing to close."""

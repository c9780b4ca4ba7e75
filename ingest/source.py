"""The message source interface, and an in-memory source that behaves like a QoS 1 broker."""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Protocol


async def wait_set(event: asyncio.Event, timeout_s: float | None) -> bool:
    """Clear ``event``, then wait for it to be set again; False when ``timeout_s`` passes first.

    Every source's ``next_chunk`` waits this way for its next messages.
    """
    event.clear()
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        return False
    return True


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

    Args:
        max_in_flight: Hand out at most this many unacknowledged messages (like a broker that
            keeps one QoS 1 message in flight, whatever Receive Maximum says); None: no cap.
    """

    def __init__(self, max_in_flight: int | None = None) -> None:
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._next_token = 1
        self._waiting: collections.deque[Delivery] = collections.deque()
        self.unacked: dict[int, Delivery] = {}
        self.acked: list[int] = []
        self._ready = asyncio.Event()
        self._stopped = False
        self._running = False
        self._closed = asyncio.Event()
        self.disconnected_while_running: bool | None = None
        """Whether :meth:`disconnect` found :meth:`run` still serving (a graceful goodbye)."""

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
        self._in_flight = 0
        self._ready.set()

    async def run(self) -> None:
        """Nothing to keep alive; returns after :meth:`disconnect`, like the MQTT subscriber."""
        self._running = True
        try:
            await self._closed.wait()
        finally:
            self._running = False

    async def next_chunk(self, timeout_s: float | None) -> list[Delivery]:
        """Up to 1000 waiting messages (fewer when ``max_in_flight`` caps them)."""
        if self._stopped:
            await asyncio.sleep(timeout_s or 0)
            return []
        while not self._waiting or self._allowed() == 0:
            if not await wait_set(self._ready, timeout_s):
                return []
        chunk = [self._waiting.popleft() for _ in range(min(1000, self._allowed()))]
        self._in_flight += sum(1 for d in chunk if d.token is not None)
        return chunk

    def _allowed(self) -> int:
        if self._max_in_flight is None:
            return len(self._waiting)
        return min(len(self._waiting), max(0, self._max_in_flight - self._in_flight))

    def ack(self, tokens: list[int]) -> int:
        """Acknowledge; unknown tokens are ignored like a broker ignores stale packet ids."""
        sent = 0
        for token in tokens:
            if self.unacked.pop(token, None) is not None:
                self.acked.append(token)
                sent += 1
        self._in_flight = max(0, self._in_flight - sent)
        if sent:
            self._ready.set()
        return sent

    def stop_reading(self) -> None:
        """Hand out nothing more."""
        self._stopped = True

    def drain_buffered(self) -> list[Delivery]:
        """Nothing is buffered beyond the waiting queue, which stays with the 'broker'."""
        return []

    async def disconnect(self) -> None:
        """Record whether the connection was still served, and end :meth:`run`."""
        self.disconnected_while_running = self._running
        if self._running:
            self._closed.set()

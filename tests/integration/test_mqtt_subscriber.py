"""Siaga's MQTT 5 subscriber against a real Mosquitto."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from ingest.mqtt.client import ConnectOptions, MqttSubscriber
from ingest.retry import RetryPolicy
from ingest.source import Delivery
from ops.servers import MosquittoServer
from tests.helpers import eventually
from tests.integration.drivers import paho_publish

pytestmark = pytest.mark.integration


def options(broker: MosquittoServer, client_id: str, **overrides: object) -> ConnectOptions:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": broker.port,
        "client_id": client_id,
        "topic_filters": (f"t/{client_id}/+",),
        "reconnect": RetryPolicy(initial_s=0.05, max_s=0.2, deadline_s=None),
    }
    values.update(overrides)
    return ConnectOptions(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def running(subscriber: MqttSubscriber) -> AsyncIterator[MqttSubscriber]:
    task = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.connected.wait(), 10)
        yield subscriber
    finally:
        # As the worker stops it: DISCONNECT while run() still serves, and run() then ends
        # by itself (cancelling it first would close the socket without a goodbye).
        await subscriber.disconnect()
        await asyncio.wait_for(task, 10)


async def collect(subscriber: MqttSubscriber, count: int, timeout_s: float = 20) -> list[Delivery]:
    received: list[Delivery] = []

    async def more() -> bool:
        received.extend(await subscriber.next_chunk(0.05))
        return len(received) >= count

    await eventually(more, timeout_s, f"{count} messages")
    return received


def messages(client_id: str, count: int) -> list[tuple[str, bytes]]:
    return [(f"t/{client_id}/x", str(i).encode()) for i in range(count)]


async def test_bounded_buffer_pauses_reading_and_loses_nothing(broker: MosquittoServer) -> None:
    subscriber = MqttSubscriber(options(broker, "bounded", max_buffered_messages=50))
    async with running(subscriber):
        await asyncio.to_thread(paho_publish, broker.port, messages("bounded", 5000), "p1")
        received = await collect(subscriber, 5000)
        assert [int(d.payload) for d in received] == list(range(5000))
        assert subscriber.ack([d.token for d in received if d.token is not None]) == 5000


async def test_unacknowledged_messages_come_back_to_the_same_client_id(
    broker: MosquittoServer,
) -> None:
    first = MqttSubscriber(options(broker, "session"))
    async with running(first):
        await asyncio.to_thread(paho_publish, broker.port, messages("session", 100), "p2")
        received = await collect(first, 100)
        acked = [d.token for d in received[:40] if d.token is not None]
        assert first.ack(acked) == 40
        await asyncio.sleep(0)  # let the PUBACK write go out before the disconnect
    second = MqttSubscriber(options(broker, "session"))
    async with running(second):
        again = await collect(second, 60)
        assert sorted(int(d.payload) for d in again) == list(range(40, 100))


async def test_tokens_from_a_lost_connection_acknowledge_nothing(
    broker: MosquittoServer,
) -> None:
    subscriber = MqttSubscriber(options(broker, "stale"))
    async with running(subscriber):
        await asyncio.to_thread(paho_publish, broker.port, messages("stale", 10), "p3")
        old = await collect(subscriber, 10)
        subscriber.connected.clear()
        broker.stop()
        broker.start()
        await asyncio.wait_for(subscriber.connected.wait(), 20)
        redelivered = await collect(subscriber, 10)
        assert subscriber.ack([d.token for d in old if d.token is not None]) == 0
        assert sorted(int(d.payload) for d in redelivered) == list(range(10))
        assert subscriber.ack([d.token for d in redelivered if d.token is not None]) == 10
        assert subscriber.reconnects >= 1


async def test_the_broker_drops_messages_above_our_maximum_packet_size(
    broker: MosquittoServer,
) -> None:
    subscriber = MqttSubscriber(options(broker, "big", maximum_packet_size=2000))
    async with running(subscriber):
        big = [("t/big/x", b"a"), ("t/big/x", b"x" * 5000), ("t/big/x", b"b")]
        await asyncio.to_thread(paho_publish, broker.port, big, "p-big")
        received = await collect(subscriber, 2)
        log = broker.directory / "mosquitto.log"
        # Mosquitto reports each drop in its log (its $SYS drop counter does not count these).
        await eventually(lambda: "Dropping too large" in log.read_text(), what="the drop")
    assert [d.payload for d in received] == [b"a", b"b"]
    drops = [line for line in log.read_text().splitlines() if "Dropping too large" in line]
    assert len(drops) == 1
    assert "for big (5012 bytes)" in drops[0]

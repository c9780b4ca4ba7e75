"""The subscriber against a broker that says chosen things (MQTT 5 conformance, issue 12)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from ingest.errors import BrokerUnsuitableError, ConfigError
from ingest.mqtt.client import ConnectOptions, MqttSubscriber
from ingest.mqtt.codec import (
    MAXIMUM_PACKET_SIZE,
    MAXIMUM_QOS,
    SERVER_KEEP_ALIVE,
    SHARED_SUBSCRIPTION_AVAILABLE,
    PacketType,
)
from ingest.retry import RetryPolicy
from ingest.runtime import connect_options, run_ingest
from ingest.settings import (
    PACKET_HEADROOM_BYTES,
    InfluxSettings,
    MetricsSettings,
    MqttSettings,
    Settings,
    SpoolSettings,
    StationsSettings,
    ValidationSettings,
)
from ops.servers import free_port
from tests.conformance.scripted_broker import Script, ScriptedBroker
from tests.conformance.worker import build_worker, run_worker
from tests.conftest import STATIONS_FILE
from tests.helpers import eventually, reading_payload

pytestmark = pytest.mark.conformance

FAST_RECONNECT = RetryPolicy(initial_s=0.02, max_s=0.05, deadline_s=None)


def options(port: int, **overrides: object) -> ConnectOptions:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "client_id": "conformance",
        "topic_filters": ("siaga/+/telemetry",),
        "reconnect": FAST_RECONNECT,
        "connect_timeout_s": 5.0,
    }
    values.update(overrides)
    return ConnectOptions(**values)  # type: ignore[arg-type]


@asynccontextmanager
async def subscribed(subscriber: MqttSubscriber) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(subscriber.run())
    try:
        await asyncio.wait_for(subscriber.connected.wait(), 10)
        yield task
    finally:
        await subscriber.disconnect()
        await asyncio.wait_for(task, 10)


async def refusal(script: Script, **overrides: object) -> tuple[str, ScriptedBroker]:
    async with ScriptedBroker(script) as broker:
        subscriber = MqttSubscriber(options(broker.port, **overrides))
        with pytest.raises(BrokerUnsuitableError) as caught:
            await asyncio.wait_for(subscriber.run(), 10)
        return str(caught.value), broker


async def test_the_brokers_server_keep_alive_is_used() -> None:
    # MQTT 5 section 3.2.2.3.14: the client MUST use the Server Keep Alive. This broker asks
    # for 1 s and drops a client silent for 1.5 s; ours would ping every 15 s.
    script = Script(connack_properties={SERVER_KEEP_ALIVE: 1}, close_after_silence_s=1.5)
    async with ScriptedBroker(script) as broker:
        subscriber = MqttSubscriber(options(broker.port, keepalive_s=30))
        async with subscribed(subscriber):
            assert subscriber.keepalive_s == 1
            await eventually(
                lambda: broker.connections[0].packets.count(PacketType.PINGREQ) >= 3,
                timeout_s=15,
                what="three pings on the first connection",
            )
        assert len(broker.connections) == 1
        assert subscriber.reconnects == 0


async def test_a_broker_whose_maximum_qos_is_0_is_refused() -> None:
    message, broker = await refusal(Script(connack_properties={MAXIMUM_QOS: 0}))
    assert "Maximum QoS is 0" in message
    assert len(broker.connections) == 1  # no retry: retrying cannot help


async def test_a_shared_group_without_shared_subscriptions_is_refused() -> None:
    message, broker = await refusal(
        Script(connack_properties={SHARED_SUBSCRIPTION_AVAILABLE: 0}),
        topic_filters=("$share/siaga-ingest/siaga/+/telemetry",),
    )
    assert "does not support shared subscriptions" in message
    assert "mqtt.shared_group" in message
    assert broker.connections[0].packets == [PacketType.CONNECT]  # refused before SUBSCRIBE


async def test_shared_subscriptions_unavailable_do_not_matter_without_a_group() -> None:
    script = Script(connack_properties={SHARED_SUBSCRIPTION_AVAILABLE: 0})
    async with ScriptedBroker(script) as broker:
        subscriber = MqttSubscriber(options(broker.port))
        async with subscribed(subscriber):
            assert subscriber.connected.is_set()


async def test_a_subscription_granted_at_qos_0_is_refused() -> None:
    message, _ = await refusal(Script(suback_codes=[0]))
    assert "granted QoS 0 where 1 was asked" in message


async def test_the_brokers_disconnect_reason_is_shown_and_not_retried() -> None:
    script = Script(disconnect_on_subscribe=(0x9E, "no $share on this listener"))
    message, broker = await refusal(script, topic_filters=("$share/g/siaga/+/telemetry",))
    assert "0x9e (shared subscriptions not supported: no $share on this listener)" in message
    assert len(broker.connections) == 1


async def test_a_retryable_disconnect_reason_is_logged_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    script = Script(disconnect_on_subscribe=(0x89, "busy"))
    async with ScriptedBroker(script) as broker:
        subscriber = MqttSubscriber(options(broker.port))
        task = asyncio.create_task(subscriber.run())
        await eventually(lambda: len(broker.connections) >= 2, what="a retry")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    lost = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
    assert lost
    assert "broker disconnected us: reason 0x89 (server busy: busy)" in lost[0]


async def test_a_server_that_is_not_a_broker_leaks_no_futures(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attempts = 0

    async def not_mqtt(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(not_mqtt, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        subscriber = MqttSubscriber(options(port))
        task = asyncio.create_task(subscriber.run())
        await eventually(lambda: attempts >= 3, what="three handshakes")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    del subscriber, task
    gc.collect()
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_a_connect_timeout_is_named_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers CONNECT; returns when the client gives up
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        subscriber = MqttSubscriber(options(port, connect_timeout_s=0.1))
        task = asyncio.create_task(subscriber.run())
        await eventually(lambda: subscriber.reconnects >= 1, what="a timeout")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.05)  # the server's handlers see the client go
    gc.collect()
    lost = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
    assert lost[0].endswith("lost: TimeoutError")


def test_connect_carries_a_maximum_packet_size_above_the_payload_limit() -> None:
    settings = Settings(
        mqtt=MqttSettings(client_id="c"), validation=ValidationSettings(max_payload_bytes=1000)
    )
    assert connect_options(settings).maximum_packet_size == 1000 + PACKET_HEADROOM_BYTES


async def test_the_maximum_packet_size_reaches_the_broker() -> None:
    async with ScriptedBroker(Script()) as broker:
        subscriber = MqttSubscriber(options(broker.port, maximum_packet_size=73_728))
        async with subscribed(subscriber):
            pass
    assert broker.connections[0].connect_properties[MAXIMUM_PACKET_SIZE] == 73_728


async def test_stopping_the_worker_says_goodbye_with_disconnect(tmp_path: Path) -> None:
    ts_ms = time.time_ns() // 1_000_000 - 60_000
    messages = [
        ("siaga/tb-menggala/telemetry", reading_payload(ts_ms + i, seq=i, water_level_cm=150.0))
        for i in range(5)
    ]
    async with ScriptedBroker(Script(messages=messages)) as broker:
        async with run_worker(tmp_path, broker.port) as (storage, _):
            await eventually(
                lambda: bool(broker.connections) and len(broker.connections[0].acked) == 5,
                what="acks",
            )
        connection = broker.connections[0]
        await eventually(lambda: connection.closed_by != "", what="closed")
    assert connection.packets[-1] == PacketType.DISCONNECT
    assert connection.closed_by == "client"
    assert [r.rejection for r in storage.stored_rejections] == []
    assert len(storage.points) == 5


async def test_a_one_in_flight_broker_is_served_faster_than_the_flush_interval(
    tmp_path: Path,
) -> None:
    # 40 messages one at a time at a 10 s flush interval: only idle flushes finish this.
    ts_ms = time.time_ns() // 1_000_000 - 60_000
    messages = [
        ("siaga/tb-menggala/telemetry", reading_payload(ts_ms + i, seq=i, water_level_cm=150.0))
        for i in range(40)
    ]
    script = Script(messages=messages, max_in_flight=1)
    async with (
        ScriptedBroker(script) as broker,
        run_worker(tmp_path, broker.port, flush_interval_s=10.0) as (storage, _),
    ):
        await eventually(
            lambda: bool(broker.connections) and len(broker.connections[0].acked) == 40,
            timeout_s=8,
            what="acks",
        )
    assert len(storage.points) == 40


async def test_the_worker_refuses_an_unsuitable_broker_with_one_clear_error(
    tmp_path: Path,
) -> None:
    async with ScriptedBroker(Script(suback_codes=[0])) as broker:
        _, worker = build_worker(tmp_path, broker.port)
        with pytest.raises(BrokerUnsuitableError, match="granted QoS 0"):
            await asyncio.wait_for(worker.run(asyncio.Event()), 10)


async def test_a_broker_that_speaks_only_mqtt_3_is_refused_once() -> None:
    message, broker = await refusal(Script(connack_reason=0x01))
    assert "needs an MQTT 5 broker" in message
    assert len(broker.connections) == 1


async def test_bad_credentials_are_retried_for_an_operator_to_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with ScriptedBroker(Script(connack_reason=0x86)) as broker:
        subscriber = MqttSubscriber(options(broker.port))
        task = asyncio.create_task(subscriber.run())
        await eventually(lambda: len(broker.connections) >= 2, what="a retry")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert "0x86 (bad user name or password)" in refused[0]


async def test_siaga_ingest_stops_with_a_config_error_naming_the_broker(tmp_path: Path) -> None:
    async with ScriptedBroker(Script(connack_properties={MAXIMUM_QOS: 0})) as broker:
        settings = Settings(
            mqtt=MqttSettings(url=f"mqtt://127.0.0.1:{broker.port}", client_id="c"),
            influx=InfluxSettings(url=f"http://127.0.0.1:{free_port()}"),
            spool=SpoolSettings(dir=tmp_path / "spool"),
            stations=StationsSettings(file=STATIONS_FILE, devices_file=tmp_path / "none.yaml"),
            metrics=MetricsSettings(enabled=False),
        )
        with pytest.raises(ConfigError) as caught:
            await asyncio.wait_for(run_ingest(settings), 20)
    assert str(caught.value) == (
        f"the MQTT broker at mqtt://127.0.0.1:{broker.port} cannot serve this worker: the "
        "broker's Maximum QoS is 0, and Siaga subscribes at QoS 1 so that no message is "
        "acknowledged before it is stored"
    )

"""An asyncio MQTT 5 subscriber that acknowledges a message only when told to.

Why not paho-mqtt or aiomqtt: both can defer acknowledgement (paho 2.x ``manual_ack``), but paho
spends about 40-50 µs of every QoS 1 message in its own loop (single-byte header reads, one
PUBACK send per message, one packet per pass), which caps a worker near 14,000 messages/s here.
This client reads the socket in large chunks, parses every packet in a chunk at once (see
:mod:`ingest.mqtt.codec`) and sends the PUBACKs of a stored batch in one write.

Acknowledgement tokens carry the connection they came from: after a reconnect, the broker
redelivers what was unacknowledged, and a stale token must never acknowledge a new message that
happens to reuse its packet id.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import (
    BrokerUnsuitableError,
    ConnectionLostError,
    ConnectRefusedError,
    SourceError,
)
from ingest.mqtt.codec import (
    DISCONNECT_NORMAL,
    MAXIMUM_QOS,
    PERMANENT_REASONS,
    PINGREQ,
    REASON_STRING,
    SERVER_KEEP_ALIVE,
    SHARED_SUBSCRIPTION_AVAILABLE,
    ConnAck,
    Disconnect,
    PacketReader,
    PingResp,
    ProtocolError,
    SubAck,
    describe_reason,
    encode_connect,
    encode_pubacks,
    encode_subscribe,
)
from ingest.retry import RetryPolicy
from ingest.settings import MqttSettings
from ingest.source import Delivery, wait_set

log = logging.getLogger(__name__)

AckToken = int
"""``generation << 16 | packet_id``: which connection a message came on, and its id."""


_MQTT = MqttSettings.model_fields  # the settings tree is the one source of every default


def _default(name: str) -> Any:
    return _MQTT[name].default


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """How to reach and talk to the broker (defaults: those of :class:`MqttSettings`).

    Attributes:
        maximum_packet_size: Sent in CONNECT: the broker drops larger messages for us instead
            of sending them; larger packets that arrive anyway are a protocol error.
    """

    host: str
    port: int
    client_id: str
    topic_filters: tuple[str, ...]
    username: str | None = None
    password: bytes | None = None
    qos: int = 1
    keepalive_s: int = _default("keepalive_s")
    session_expiry_s: int = _default("session_expiry_s")
    receive_maximum: int = _default("receive_maximum")
    connect_timeout_s: float = _default("connect_timeout_s")
    tls: ssl.SSLContext | None = None
    reconnect: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(
            initial_s=_default("reconnect_initial_s"),
            max_s=_default("reconnect_max_s"),
            deadline_s=None,
        )
    )
    max_buffered_messages: int = 100_000
    maximum_packet_size: int | None = None

    @property
    def shared(self) -> bool:
        """Whether any filter is a shared subscription (``$share/group/...``)."""
        return any(f.startswith("$share/") for f in self.topic_filters)


class _Protocol(asyncio.Protocol):
    def __init__(self, owner: MqttSubscriber, generation: int) -> None:
        self._owner = owner
        self._generation = generation
        limit = owner._options.maximum_packet_size
        self._reader = PacketReader() if limit is None else PacketReader(limit)
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()
        self.connack: asyncio.Future[ConnAck] = asyncio.get_running_loop().create_future()
        self.suback: asyncio.Future[SubAck] = asyncio.get_running_loop().create_future()
        self.last_received = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        try:
            deliveries, packets = self._reader.feed_deliveries(data, self._generation << 16)
        except ProtocolError as exc:
            self._fail(exc)
            return
        for packet in packets:  # the rest: handshake answers, ping responses, a DISCONNECT
            if isinstance(packet, ConnAck):
                if not self.connack.done():
                    self.connack.set_result(packet)
            elif isinstance(packet, SubAck):
                if not self.suback.done():
                    self.suback.set_result(packet)
            elif isinstance(packet, Disconnect):
                error = (
                    BrokerUnsuitableError
                    if packet.reason_code in PERMANENT_REASONS
                    else ConnectionLostError
                )
                self._fail(
                    error(
                        "broker disconnected us: reason "
                        + describe_reason(packet.reason_code, packet.reason)
                    )
                )
            elif isinstance(packet, PingResp):
                pass
        if deliveries and not self._owner._stopping:
            self._owner._deliver(deliveries)

    def _fail(self, exc: Exception) -> None:
        if not self.lost.done():
            self.lost.set_result(exc)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        # The handshake futures are left pending, never failed: a failed future nobody awaits
        # is logged by asyncio as "Future exception was never retrieved".
        if not self.lost.done():
            self.lost.set_result(exc)

    def failure(self, during: str) -> SourceError:
        """Why the connection ended (the broker's DISCONNECT reason, when it gave one)."""
        reason = self.lost.result() if self.lost.done() else None
        if isinstance(reason, SourceError):
            return reason
        detail = (str(reason) or type(reason).__name__) if reason is not None else ""
        text = "connection closed" + (f" {during}" if during else "")
        return ConnectionLostError(text + (f": {detail}" if detail else ""))


class MqttSubscriber:
    """Subscribes to one topic filter and yields messages in chunks; reconnects by itself.

    Run :meth:`run` as a task; read with :meth:`next_chunk`; acknowledge with :meth:`ack`.

    Args:
        options: Broker address, credentials, session and flow-control settings.
        on_state: Called with True when subscribed and False when the connection is lost.
    """

    def __init__(
        self, options: ConnectOptions, on_state: Callable[[bool], None] | None = None
    ) -> None:
        if options.qos not in (0, 1):
            raise ValueError("qos must be 0 or 1: the worker acknowledges QoS 1 itself")
        self._options = options
        self._on_state = on_state or (lambda _connected: None)
        self._queue: collections.deque[list[Delivery]] = collections.deque()
        self._buffered = 0
        self._ready = asyncio.Event()
        self._protocol: _Protocol | None = None
        self._generation = 0
        self._paused = False
        self._stopping = False
        self._closing = False
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.keepalive_s = options.keepalive_s
        """The keep-alive in use: ours, or the broker's Server Keep Alive when it set one."""

    # -- consumer side ----------------------------------------------------------------------

    def _deliver(self, deliveries: list[Delivery]) -> None:
        self._queue.append(deliveries)
        self._buffered += len(deliveries)
        self._ready.set()
        if self._buffered >= self._options.max_buffered_messages and not self._paused:
            # Bounded buffer: stop reading the socket; TCP and the broker hold the rest.
            self._set_reading(paused=True)

    def _set_reading(self, *, paused: bool) -> None:
        self._paused = paused
        protocol = self._protocol
        if protocol is not None and protocol.transport is not None:
            if paused:
                protocol.transport.pause_reading()
            elif not self._stopping:
                protocol.transport.resume_reading()

    async def next_chunk(self, timeout_s: float | None) -> list[Delivery]:
        """The next chunk of messages, or an empty list when ``timeout_s`` passes first."""
        if not self._queue and not await wait_set(self._ready, timeout_s):
            return []
        chunk = self._queue.popleft()
        self._buffered -= len(chunk)
        if self._paused and self._buffered < self._options.max_buffered_messages // 2:
            self._set_reading(paused=False)
        return chunk

    def drain_buffered(self) -> list[Delivery]:
        """Take every message received but not yet consumed (at shutdown)."""
        chunks = list(self._queue)
        self._queue.clear()
        self._buffered = 0
        return [delivery for chunk in chunks for delivery in chunk]

    def ack(self, tokens: list[AckToken]) -> int:
        """Acknowledge messages of the current connection; returns how many were sent.

        Tokens of an earlier connection are skipped: the broker redelivers those messages, and
        storing them again overwrites the same points.
        """
        protocol = self._protocol
        if not tokens or protocol is None or protocol.transport is None:
            return 0
        if protocol.transport.is_closing():
            return 0
        generation = self._generation
        ids = [t & 0xFFFF for t in tokens if t >> 16 == generation]
        if ids:
            protocol.transport.write(encode_pubacks(ids))
        return len(ids)

    def stop_reading(self) -> None:
        """Take no more messages from the socket (graceful shutdown)."""
        self._stopping = True
        self._set_reading(paused=True)

    # -- connection side --------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, subscribe and keep the connection alive; reconnect with backoff.

        Returns after :meth:`disconnect`.

        Raises:
            BrokerUnsuitableError: The broker cannot serve this subscriber as configured
                (QoS, shared subscriptions): retrying cannot help.
        """
        delays = self._options.reconnect.delays()
        where = f"{self._options.host}:{self._options.port}"
        while True:
            try:
                await self._serve_one_connection()
                delays = self._options.reconnect.delays()
            except BrokerUnsuitableError as exc:
                log.error("MQTT broker at %s cannot serve this worker: %s", where, exc)
                raise
            except ConnectRefusedError as exc:
                log.error("MQTT broker at %s refused the connection: %s", where, exc)
            except (OSError, SourceError, TimeoutError) as exc:
                if not self._closing:
                    log.warning(
                        "MQTT connection to %s lost: %s", where, str(exc) or type(exc).__name__
                    )
            finally:
                if self.connected.is_set():
                    self.connected.clear()
                    self._on_state(False)
                self._protocol = None
            if self._closing:
                return
            delay = next(delays)
            self.reconnects += 1
            await asyncio.sleep(delay)

    async def _serve_one_connection(self) -> None:
        options = self._options
        loop = asyncio.get_running_loop()
        self._generation = (self._generation + 1) & 0xFFFF
        generation = self._generation
        async with asyncio.timeout(options.connect_timeout_s):
            _, protocol = await loop.create_connection(
                lambda: _Protocol(self, generation), options.host, options.port, ssl=options.tls
            )
        self._protocol = protocol
        assert protocol.transport is not None
        transport = protocol.transport
        try:
            transport.write(
                encode_connect(
                    options.client_id,
                    keepalive_s=options.keepalive_s,
                    clean_start=False,
                    session_expiry_s=options.session_expiry_s,
                    receive_maximum=options.receive_maximum,
                    username=options.username,
                    password=options.password,
                    maximum_packet_size=options.maximum_packet_size,
                )
            )
            connack = await self._answer(protocol, protocol.connack, "before CONNACK")
            if 0 < connack.reason_code < 0x80:
                # MQTT 5 refuses with codes from 0x80; 0x01 is MQTT 3.1.1's "unacceptable
                # protocol version", the answer of a broker that does not speak MQTT 5.
                raise BrokerUnsuitableError(
                    f"the broker answered with MQTT 3.1.1 return code {connack.reason_code} "
                    "(unacceptable protocol version): Siaga needs an MQTT 5 broker"
                )
            if connack.reason_code != 0:
                refused = (
                    BrokerUnsuitableError
                    if connack.reason_code in PERMANENT_REASONS
                    else ConnectRefusedError
                )
                raise refused(
                    describe_reason(connack.reason_code, connack.properties.get(REASON_STRING))
                )
            self._check_capabilities(connack)
            transport.write(encode_subscribe(1, options.topic_filters, options.qos))
            suback = await self._answer(protocol, protocol.suback, "before SUBACK")
            self._check_grants(suback)
            log.info(
                "MQTT subscribed to %s on %s:%d as %s (session %s)",
                ", ".join(options.topic_filters),
                options.host,
                options.port,
                options.client_id,
                "resumed" if connack.session_present else "new",
            )
            self.connected.set()
            self._on_state(True)
            if self._paused:
                self._set_reading(paused=True)
            await self._keep_alive(protocol)
        finally:
            transport.close()

    async def _answer(self, protocol: _Protocol, answer: asyncio.Future[Any], during: str) -> Any:
        """The broker's answer in the handshake, or why the connection ended before it."""
        async with asyncio.timeout(self._options.connect_timeout_s):
            await asyncio.wait((answer, protocol.lost), return_when=asyncio.FIRST_COMPLETED)
        if answer.done():
            return answer.result()
        raise protocol.failure(during)

    def _check_capabilities(self, connack: ConnAck) -> None:
        """Refuse a broker that cannot keep Siaga's promise; adopt its Server Keep Alive."""
        options = self._options
        maximum_qos = connack.properties.get(MAXIMUM_QOS, 2)
        if maximum_qos < options.qos:
            raise BrokerUnsuitableError(
                f"the broker's Maximum QoS is {maximum_qos}, and Siaga subscribes at QoS "
                f"{options.qos} so that no message is acknowledged before it is stored"
            )
        if options.shared and connack.properties.get(SHARED_SUBSCRIPTION_AVAILABLE, 1) == 0:
            raise BrokerUnsuitableError(
                "the broker does not support shared subscriptions (Shared Subscription "
                "Available = 0); set mqtt.shared_group to null to run a single worker"
            )
        server_keepalive = connack.properties.get(SERVER_KEEP_ALIVE)
        if server_keepalive is not None and server_keepalive != options.keepalive_s:
            log.info(
                "MQTT broker sets the keep-alive to %d s (we asked for %d s)",
                server_keepalive,
                options.keepalive_s,
            )
        self.keepalive_s = options.keepalive_s if server_keepalive is None else server_keepalive

    def _check_grants(self, suback: SubAck) -> None:
        options = self._options
        if len(suback.reason_codes) != len(options.topic_filters):
            raise ConnectRefusedError(
                f"SUBACK carries {len(suback.reason_codes)} reason codes for "
                f"{len(options.topic_filters)} topic filters"
            )
        refused: list[str] = []
        unsuitable: list[str] = []
        for topic_filter, code in zip(options.topic_filters, suback.reason_codes, strict=True):
            if code in PERMANENT_REASONS:
                unsuitable.append(f"{topic_filter}: {describe_reason(code, suback.reason)}")
            elif code >= 0x80:
                refused.append(f"{topic_filter}: {describe_reason(code, suback.reason)}")
            elif code < options.qos:
                unsuitable.append(
                    f"{topic_filter}: granted QoS {code} where {options.qos} was asked; "
                    "messages would be lost without a word"
                )
        if unsuitable:
            raise BrokerUnsuitableError(f"subscription unusable: {'; '.join(unsuitable)}")
        if refused:
            raise ConnectRefusedError(f"subscription refused: {'; '.join(refused)}")

    async def _keep_alive(self, protocol: _Protocol) -> None:
        keepalive_s = self.keepalive_s
        if keepalive_s == 0:  # the broker turned keep-alive off
            await asyncio.shield(protocol.lost)
            raise protocol.failure("")
        interval_s = keepalive_s / 2
        while True:
            try:
                async with asyncio.timeout(interval_s):
                    reason = await asyncio.shield(protocol.lost)
            except TimeoutError:
                silent_s = time.monotonic() - protocol.last_received
                if silent_s > keepalive_s * 1.5 and not self._paused:
                    raise ConnectionLostError(
                        f"no data from the broker for {silent_s:.0f} s"
                    ) from None
                assert protocol.transport is not None
                protocol.transport.write(PINGREQ)
                continue
            if isinstance(reason, SourceError):
                raise reason
            raise ConnectionLostError(
                (str(reason) or type(reason).__name__) if reason else "connection closed"
            )

    async def disconnect(self, timeout_s: float = 5.0) -> None:
        """Say goodbye (normal disconnect: the broker keeps the session and queued messages).

        Waits for the broker to close the connection: it does so only after processing what
        was sent before the DISCONNECT, so the last acknowledgements are not cut off.
        """
        self._closing = True
        self._stopping = True
        protocol = self._protocol
        transport = protocol.transport if protocol is not None else None
        if protocol is None or transport is None or transport.is_closing():
            return
        transport.write(DISCONNECT_NORMAL)
        transport.resume_reading()  # to see the broker's close; late messages are not handed out
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(protocol.lost)
        except TimeoutError:
            log.warning("broker did not close the connection within %.0f s", timeout_s)
        finally:
            transport.close()

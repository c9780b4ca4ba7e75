"""A broker that speaks just enough MQTT 5 to say chosen things: CONNACK and SUBACK properties,
a DISCONNECT with a reason, one message in flight, a Server Keep Alive it enforces.

It is a test instrument, not a broker: one subscriber at a time, QoS 1 deliveries from a list.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from dataclasses import dataclass, field

from ingest.mqtt.codec import PacketType, decode_properties, encode_properties, encode_publish


@dataclass
class Script:
    """What the broker answers.

    Attributes:
        connack_reason: CONNACK reason code.
        connack_properties: CONNACK properties (identifier → value).
        suback_codes: SUBACK reason codes; None grants each filter the QoS it asked for.
        disconnect_on_subscribe: Answer SUBSCRIBE with DISCONNECT (reason code, reason string).
        messages: (topic, payload) delivered at QoS 1 after SUBACK.
        max_in_flight: Unacknowledged deliveries allowed (1: wait for each PUBACK).
        close_after_silence_s: Drop a client silent for this long (1.5 times Server Keep Alive).
    """

    connack_reason: int = 0
    connack_properties: dict[int, int | str] = field(default_factory=dict)
    suback_codes: list[int] | None = None
    disconnect_on_subscribe: tuple[int, str | None] | None = None
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    max_in_flight: int = 65535
    close_after_silence_s: float | None = None


@dataclass
class Connection:
    """What one client connection did."""

    connect_properties: dict[int, object] = field(default_factory=dict)
    keepalive_s: int = 0
    packets: list[int] = field(default_factory=list)  # packet types received, in order
    acked: list[int] = field(default_factory=list)  # packet ids acknowledged
    closed_by: str = ""  # "client", "broker" or "silence"


class ScriptedBroker:
    """Listens on a free port of 127.0.0.1 and follows a :class:`Script`."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections: list[Connection] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> ScriptedBroker:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        # Python 3.11's server does not wait for its handlers: end them here, not at loop close.
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = Connection()
        self.connections.append(connection)
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._converse(connection, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            connection.closed_by = connection.closed_by or "client"
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _read(
        self, connection: Connection, reader: asyncio.StreamReader
    ) -> tuple[int, bytes]:
        timeout_s = self.script.close_after_silence_s
        async with asyncio.timeout(timeout_s):
            first = (await reader.readexactly(1))[0]
            length = shift = 0
            while True:
                byte = (await reader.readexactly(1))[0]
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            body = await reader.readexactly(length)
        connection.packets.append(first >> 4)
        return first >> 4, body

    async def _converse(
        self, connection: Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        script = self.script
        kind, body = await self._read(connection, reader)
        assert kind == PacketType.CONNECT
        (connection.keepalive_s,) = struct.unpack_from(">H", body, 8)
        connection.connect_properties, _ = decode_properties(body, 10)
        connack = bytes([0, script.connack_reason]) + encode_properties(script.connack_properties)
        writer.write(bytes([0x20, len(connack)]) + connack)
        if script.connack_reason:
            connection.closed_by = "broker"
            return
        pending = list(script.messages)
        in_flight: set[int] = set()
        next_id = 1
        while True:
            try:
                kind, body = await self._read(connection, reader)
            except TimeoutError:
                connection.closed_by = "silence"
                return
            if kind == PacketType.SUBSCRIBE:
                if script.disconnect_on_subscribe is not None:
                    code, text = script.disconnect_on_subscribe
                    properties = encode_properties({0x1F: text} if text else {})
                    disconnect = bytes([code]) + properties
                    writer.write(bytes([0xE0, len(disconnect)]) + disconnect)
                    connection.closed_by = "broker"
                    return
                packet_id = body[:2]
                _, offset = decode_properties(body, 2)
                asked = []
                while offset < len(body):
                    (size,) = struct.unpack_from(">H", body, offset)
                    asked.append(body[offset + 2 + size] & 0x03)
                    offset += 3 + size
                codes = script.suback_codes if script.suback_codes is not None else asked
                suback = packet_id + b"\x00" + bytes(codes)
                writer.write(bytes([0x90, len(suback)]) + suback)
            elif kind == PacketType.PUBACK:
                (packet_id,) = struct.unpack_from(">H", body, 0)
                in_flight.discard(packet_id)
                connection.acked.append(packet_id)
            elif kind == PacketType.PINGREQ:
                writer.write(b"\xd0\x00")
            elif kind == PacketType.DISCONNECT:
                connection.closed_by = "client"
                return
            while pending and len(in_flight) < script.max_in_flight:
                topic, payload = pending.pop(0)
                writer.write(encode_publish(topic, payload, next_id))
                in_flight.add(next_id)
                next_id = next_id % 65535 + 1
            await writer.drain()

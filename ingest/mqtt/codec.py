"""MQTT 5 packets for a subscribing client: encoders and an incremental parser. No I/O.

Only what a subscriber needs: CONNECT, SUBSCRIBE, PUBACK, PINGREQ and DISCONNECT out; CONNACK,
SUBACK, PUBLISH, PINGRESP and DISCONNECT in. :class:`PacketReader` takes bytes as the socket gives
them and returns every complete packet, so one read of 64 KiB yields hundreds of PUBLISHes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from ingest.errors import SourceError
from ingest.source import Delivery

PROTOCOL_NAME = b"\x00\x04MQTT"
PROTOCOL_LEVEL = 5
PINGREQ = b"\xc0\x00"
DISCONNECT_NORMAL = b"\xe0\x00"
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class ProtocolError(SourceError, ValueError):
    """The peer sent bytes that are not valid MQTT 5."""


class PacketType(IntEnum):
    """Control packet types (the high nibble of the first byte)."""

    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    SUBSCRIBE = 8
    SUBACK = 9
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


CONNACK_REASONS = {
    0x00: "success",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8C: "bad authentication method",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9F: "connection rate exceeded",
}

REASONS = {
    **CONNACK_REASONS,
    0x01: "granted QoS 1",
    0x02: "granted QoS 2",
    0x04: "disconnect with will message",
    0x8B: "server shutting down",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x90: "topic name invalid",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x96: "message rate too high",
    0x98: "administrative action",
    0x99: "payload format invalid",
    0x9A: "retain not supported",
    0x9B: "QoS not supported",
    0x9E: "shared subscriptions not supported",
    0xA0: "maximum connect time",
    0xA1: "subscription identifiers not supported",
    0xA2: "wildcard subscriptions not supported",
}
"""Reason codes of CONNACK, SUBACK and DISCONNECT (MQTT 5 section 2.4), for messages."""

PERMANENT_REASONS = frozenset({0x84, 0x8F, 0x9B, 0x9E, 0xA1, 0xA2})
"""Reasons that say the broker cannot serve this client as configured: retrying cannot help.

Credentials (0x86, 0x87) are not among them: an operator fixes those on the broker, and the
worker should then get in without a restart. Nor are malformed packet and protocol error
(0x81, 0x82): they would be a bug of one connection, not a property of the broker.
"""


def describe_reason(code: int, reason_string: str | None = None) -> str:
    """``0x9e (shared subscriptions not supported: <the broker's own words>)``."""
    name = REASONS.get(code, "unknown reason")
    return f"0x{code:02x} ({name}{f': {reason_string}' if reason_string else ''})"


@dataclass(slots=True)  # not frozen: built per message on the hot path
class Publish:
    """An application message from the broker.

    Attributes:
        topic: Its topic name.
        payload: Its body.
        qos: 0 or 1 (a subscriber at QoS 1 is never sent QoS 2).
        packet_id: The id to acknowledge, for QoS 1 and 2.
        dup: Whether the broker says this may be a redelivery.
    """

    topic: str
    payload: bytes
    qos: int
    packet_id: int | None
    dup: bool = False


@dataclass(frozen=True, slots=True)
class ConnAck:
    """The broker's answer to CONNECT."""

    session_present: bool
    reason_code: int
    properties: dict[int, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubAck:
    """The broker's answer to SUBSCRIBE: one reason code (or granted QoS) per topic filter."""

    packet_id: int
    reason_codes: tuple[int, ...]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class PingResp:
    """The answer to PINGREQ."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """The broker is closing the connection, and why."""

    reason_code: int
    reason: str | None = None


Packet = Publish | ConnAck | SubAck | PingResp | Disconnect


def encode_varint(value: int) -> bytes:
    """MQTT's variable byte integer (1 to 4 bytes, up to 268,435,455)."""
    if not 0 <= value <= 268_435_455:
        raise ValueError(f"{value} does not fit a variable byte integer")
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("string longer than 65535 bytes")
    return _U16.pack(len(raw)) + raw


def _binary(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("binary data longer than 65535 bytes")
    return _U16.pack(len(data)) + data


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + encode_varint(len(body)) + body


def encode_connect(
    client_id: str,
    *,
    keepalive_s: int,
    clean_start: bool,
    session_expiry_s: int,
    receive_maximum: int,
    username: str | None = None,
    password: bytes | None = None,
    maximum_packet_size: int | None = None,
) -> bytes:
    """A CONNECT packet.

    Args:
        client_id: Stable per worker: the broker keys the session (and queued messages) on it.
        keepalive_s: Longest silence before the broker drops the connection.
        clean_start: False to resume the session the broker kept.
        session_expiry_s: How long the broker keeps the session after a disconnect.
        receive_maximum: QoS 1 messages the broker may have unacknowledged with this client.
        username: Optional user name.
        password: Optional password.
        maximum_packet_size: The largest packet the broker may send us (it drops larger
            messages for this client instead); None for the protocol's limit.
    """
    flags = 0x00 if not clean_start else 0x02
    if username is not None:
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    wanted: dict[int, int | str] = {
        SESSION_EXPIRY_INTERVAL: session_expiry_s,
        RECEIVE_MAXIMUM: receive_maximum,
    }
    if maximum_packet_size is not None:
        wanted[MAXIMUM_PACKET_SIZE] = maximum_packet_size
    body = (
        PROTOCOL_NAME
        + bytes([PROTOCOL_LEVEL, flags])
        + _U16.pack(keepalive_s)
        + encode_properties(wanted)
        + _string(client_id)
    )
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _binary(password)
    return _packet(PacketType.CONNECT << 4, body)


def encode_subscribe(packet_id: int, topic_filters: str | Sequence[str], qos: int) -> bytes:
    """A SUBSCRIBE packet for one or more filters, each at ``qos``."""
    if isinstance(topic_filters, str):
        topic_filters = [topic_filters]
    if not topic_filters:
        raise ValueError("SUBSCRIBE needs at least one topic filter")
    options = bytes([qos & 0x03])
    body = _U16.pack(packet_id) + b"\x00" + b"".join(_string(f) + options for f in topic_filters)
    return _packet((PacketType.SUBSCRIBE << 4) | 0x02, body)


def encode_publish(
    topic: str | bytes, payload: bytes, packet_id: int | None = None, *, dup: bool = False
) -> bytes:
    """A PUBLISH packet without properties: QoS 1 when ``packet_id`` is given, else QoS 0."""
    raw_topic = topic.encode("utf-8") if isinstance(topic, str) else topic
    first = (PacketType.PUBLISH << 4) | (0x08 if dup else 0)
    header = _U16.pack(len(raw_topic)) + raw_topic
    if packet_id is not None:
        first |= 0x02
        header += _U16.pack(packet_id)
    return _packet(first, header + b"\x00" + payload)


def encode_pubacks(packet_ids: list[int]) -> bytes:
    """PUBACKs (success, no properties: the 2-byte short form) for many messages at once."""
    return b"".join(b"\x40\x02" + _U16.pack(packet_id) for packet_id in packet_ids)


# Property identifier → value kind, MQTT 5 section 2.2.2.2.
_BYTE, _TWO, _FOUR, _VARINT, _STRING, _BINARY, _PAIR = range(7)
_PROPERTY_KINDS = {
    0x01: _BYTE, 0x02: _FOUR, 0x03: _STRING, 0x08: _STRING, 0x09: _BINARY, 0x0B: _VARINT,
    0x11: _FOUR, 0x12: _STRING, 0x13: _TWO, 0x15: _STRING, 0x16: _BINARY, 0x17: _BYTE,
    0x18: _FOUR, 0x19: _BYTE, 0x1A: _STRING, 0x1C: _STRING, 0x1F: _STRING, 0x21: _TWO,
    0x22: _TWO, 0x23: _TWO, 0x24: _BYTE, 0x25: _BYTE, 0x26: _PAIR, 0x27: _FOUR, 0x28: _BYTE,
    0x29: _BYTE, 0x2A: _BYTE,
}  # fmt: skip
SESSION_EXPIRY_INTERVAL = 0x11
SERVER_KEEP_ALIVE = 0x13
RECEIVE_MAXIMUM = 0x21
MAXIMUM_QOS = 0x24
MAXIMUM_PACKET_SIZE = 0x27
SHARED_SUBSCRIPTION_AVAILABLE = 0x2A
REASON_STRING = 0x1F


def encode_properties(properties: dict[int, int | str]) -> bytes:
    """Properties (length first) for the byte, two- and four-byte integer and string kinds."""
    out = bytearray()
    for identifier, value in properties.items():
        kind = _PROPERTY_KINDS.get(identifier)
        out.append(identifier)
        if kind == _BYTE and isinstance(value, int):
            out.append(value)
        elif kind == _TWO and isinstance(value, int):
            out += _U16.pack(value)
        elif kind == _FOUR and isinstance(value, int):
            out += _U32.pack(value)
        elif kind == _VARINT and isinstance(value, int):
            out += encode_varint(value)
        elif kind == _STRING and isinstance(value, str):
            out += _string(value)
        else:
            raise ValueError(f"cannot encode property 0x{identifier:02x} = {value!r}")
    return encode_varint(len(out)) + bytes(out)


def _read_varint(data: bytes | bytearray | memoryview, offset: int) -> tuple[int, int]:
    value = shift = 0
    for index in range(offset, min(offset + 4, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    if len(data) - offset >= 4:
        raise ProtocolError("variable byte integer longer than 4 bytes")
    raise IndexError("incomplete variable byte integer")


def decode_properties(data: bytes, offset: int) -> tuple[dict[int, Any], int]:
    """Properties at ``offset``: (identifier → value, offset after them)."""
    length, offset = _read_varint(data, offset)
    end = offset + length
    if end > len(data):
        raise ProtocolError("properties run past the packet")
    properties: dict[int, Any] = {}
    while offset < end:
        identifier = data[offset]
        kind = _PROPERTY_KINDS.get(identifier)
        offset += 1
        value: Any
        if kind == _BYTE:
            value, offset = data[offset], offset + 1
        elif kind == _TWO:
            (value,), offset = _U16.unpack_from(data, offset), offset + 2
        elif kind == _FOUR:
            (value,), offset = _U32.unpack_from(data, offset), offset + 4
        elif kind == _VARINT:
            value, offset = _read_varint(data, offset)
        elif kind in {_STRING, _BINARY}:
            (size,) = _U16.unpack_from(data, offset)
            raw, offset = data[offset + 2 : offset + 2 + size], offset + 2 + size
            value = raw.decode("utf-8", errors="replace") if kind == _STRING else raw
        elif kind == _PAIR:
            (size,) = _U16.unpack_from(data, offset)
            key = data[offset + 2 : offset + 2 + size].decode("utf-8", errors="replace")
            offset += 2 + size
            (size,) = _U16.unpack_from(data, offset)
            text = data[offset + 2 : offset + 2 + size].decode("utf-8", errors="replace")
            offset += 2 + size
            value = (*properties.get(identifier, ()), (key, text))
        else:
            raise ProtocolError(f"unknown property identifier 0x{identifier:02x}")
        properties[identifier] = value
    if offset != end:
        raise ProtocolError("properties overrun their length")
    return properties, end


class PacketReader:
    """Turns a byte stream into packets; keeps incomplete bytes for the next feed.

    Args:
        max_packet_bytes: Larger packets are a protocol error (the broker ignored our limit).
    """

    def __init__(self, max_packet_bytes: int = 256 << 20) -> None:
        self._buffer = bytearray()
        self._max = max_packet_bytes
        self._topics: dict[bytes, str] = {}

    def feed(self, data: bytes) -> list[Packet]:
        """Add bytes; return the packets they complete, in order.

        Raises:
            ProtocolError: The stream is not valid MQTT 5; the connection must be closed.
        """
        return self._feed(data, None)[1]

    def feed_deliveries(self, data: bytes, token_base: int) -> tuple[list[Delivery], list[Packet]]:
        """As :meth:`feed`, with each PUBLISH as a :class:`~ingest.source.Delivery` whose token
        is ``token_base | packet_id`` (None at QoS 0): the subscriber's hot path, one object
        per message.

        Returns:
            The deliveries, in order, and the other packets, in order.

        Raises:
            ProtocolError: The stream is not valid MQTT 5; the connection must be closed.
        """
        return self._feed(data, token_base)

    def _feed(self, data: bytes, token_base: int | None) -> tuple[list[Delivery], list[Packet]]:
        buffer = self._buffer
        buffer += data
        # Slices of a view copy once; bytearray slices copy twice. The view must be released
        # before the buffer is resized, whatever happens in between.
        with memoryview(buffer) as view:
            deliveries, packets, offset = self._parse(buffer, view, token_base)
        if offset:
            del buffer[:offset]
        return deliveries, packets

    def _parse(
        self, buffer: bytearray, view: memoryview, token_base: int | None
    ) -> tuple[list[Delivery], list[Packet], int]:
        deliveries: list[Delivery] = []
        packets: list[Packet] = []
        offset = 0
        size = len(buffer)
        topics = self._topics
        while size - offset >= 2:
            first = buffer[offset]
            # Remaining length, inlined for the common one- and two-byte cases.
            byte = buffer[offset + 1]
            if byte < 0x80:
                length, start = byte, offset + 2
            else:
                try:
                    length, start = _read_varint(buffer, offset + 1)
                except IndexError:
                    break
                if length > self._max:
                    raise ProtocolError(f"packet of {length} bytes exceeds the limit")
            end = start + length
            if end > size:
                break
            if first >> 4 == _PUBLISH:
                if token_base is not None and first & 0x06 == 0x02 and length >= 5:
                    # QoS 1 to a subscriber, inlined: topic, packet id, short properties.
                    cursor = start + 2 + ((buffer[start] << 8) | buffer[start + 1])
                    if cursor + 3 <= end and cursor + 3 + buffer[cursor + 2] <= end:
                        properties = buffer[cursor + 2]
                        if properties < 0x80:
                            raw_topic = bytes(view[start + 2 : cursor])
                            topic = topics.get(raw_topic)
                            if topic is None:
                                topic = _new_topic(raw_topic, topics)
                            deliveries.append(
                                Delivery(
                                    topic,
                                    bytes(view[cursor + 3 + properties : end]),
                                    token_base | (buffer[cursor] << 8) | buffer[cursor + 1],
                                )
                            )
                            offset = end
                            continue
                try:
                    publish = _publish(view, first, start, end, topics)
                except IndexError:
                    raise ProtocolError("truncated PUBLISH packet") from None
                if token_base is None:
                    packets.append(publish)
                else:
                    packet_id = publish.packet_id
                    token = None if packet_id is None else token_base | packet_id
                    deliveries.append(Delivery(publish.topic, publish.payload, token))
            else:
                packets.append(_control(bytes(view[start:end]), first))
            offset = end
        return deliveries, packets, offset


_PUBLISH = int(PacketType.PUBLISH)  # a plain int compares several times faster than an IntEnum


def _new_topic(raw_topic: bytes, topics: dict[bytes, str]) -> str:
    """A topic not seen before: decoded, and remembered (up to a bound)."""
    topic = raw_topic.decode("utf-8", errors="replace")
    if len(topics) < 100_000:
        topics[raw_topic] = topic
    return topic


def _publish(
    buffer: memoryview, first: int, start: int, end: int, topics: dict[bytes, str]
) -> Publish:
    qos = (first >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")
    topic_length = (buffer[start] << 8) | buffer[start + 1]
    cursor = start + 2 + topic_length
    raw_topic = bytes(buffer[start + 2 : cursor])
    topic = topics.get(raw_topic)
    if topic is None:
        topic = _new_topic(raw_topic, topics)
    packet_id = None
    if qos:
        packet_id = (buffer[cursor] << 8) | buffer[cursor + 1]
        cursor += 2
    # Properties: skip them (a subscriber needs none of them).
    byte = buffer[cursor]
    if byte < 0x80:
        cursor += 1 + byte
    else:
        prop_length, cursor = _read_varint(buffer, cursor)
        cursor += prop_length
    if cursor > end:
        raise ProtocolError("PUBLISH header runs past the packet")
    return Publish(topic, bytes(buffer[cursor:end]), qos, packet_id, bool(first & 0x08))


def _control(body: bytes, first: int) -> Packet:
    kind = first >> 4
    try:
        if kind == PacketType.CONNACK:
            properties, _ = decode_properties(body, 2) if len(body) > 2 else ({}, 2)
            return ConnAck(bool(body[0] & 0x01), body[1], properties)
        if kind == PacketType.SUBACK:
            (packet_id,) = _U16.unpack_from(body, 0)
            properties, offset = decode_properties(body, 2)
            return SubAck(packet_id, tuple(body[offset:]), properties.get(REASON_STRING))
        if kind == PacketType.PINGRESP:
            return PingResp()
        if kind == PacketType.DISCONNECT:
            code = body[0] if body else 0
            properties, _ = decode_properties(body, 1) if len(body) > 1 else ({}, 1)
            return Disconnect(code, properties.get(REASON_STRING))
    except (IndexError, struct.error) as exc:
        raise ProtocolError(f"truncated {PacketType(kind).name} packet") from exc
    raise ProtocolError(f"unexpected packet type {kind} from the broker")

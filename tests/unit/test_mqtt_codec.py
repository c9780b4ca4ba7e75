"""MQTT 5 codec: exact bytes out, exact packets in, however the stream is split."""

from __future__ import annotations

import contextlib
import struct
from itertools import pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ingest.mqtt.codec import (
    DISCONNECT_NORMAL,
    MAXIMUM_PACKET_SIZE,
    PINGREQ,
    RECEIVE_MAXIMUM,
    ConnAck,
    Disconnect,
    Packet,
    PacketReader,
    PingResp,
    ProtocolError,
    Publish,
    SubAck,
    decode_properties,
    describe_reason,
    encode_connect,
    encode_properties,
    encode_pubacks,
    encode_publish,
    encode_subscribe,
    encode_varint,
)
from ingest.source import Delivery


def u16(value: int) -> bytes:
    return struct.pack(">H", value)


def mqtt_string(text: str) -> bytes:
    raw = text.encode()
    return u16(len(raw)) + raw


def frame(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + encode_varint(len(body)) + body


def publish_bytes(
    topic: str,
    payload: bytes,
    qos: int = 0,
    packet_id: int | None = None,
    properties: bytes = b"",
    *,
    dup: bool = False,
    retain: bool = False,
) -> bytes:
    first = 0x30 | (qos << 1) | (0x08 if dup else 0) | (0x01 if retain else 0)
    header = mqtt_string(topic) + (u16(packet_id) if packet_id is not None else b"")
    return frame(first, header + encode_varint(len(properties)) + properties + payload)


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (321, b"\xc1\x02"),  # the MQTT specification's example
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_encode_varint(value: int, encoded: bytes) -> None:
    assert encode_varint(value) == encoded


@pytest.mark.parametrize("value", [-1, 268_435_456, 2**40])
def test_encode_varint_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="does not fit a variable byte integer"):
        encode_varint(value)


def test_encode_connect_minimal() -> None:
    packet = encode_connect(
        "c1", keepalive_s=30, clean_start=False, session_expiry_s=3600, receive_maximum=100
    )
    assert packet == (
        b"\x10\x17"  # CONNECT, remaining length 23
        b"\x00\x04MQTT\x05"  # protocol name and level 5
        b"\x00"  # flags: no clean start, no user name, no password
        b"\x00\x1e"  # keepalive 30 s
        b"\x08"  # properties: 8 bytes
        b"\x11\x00\x00\x0e\x10"  # session expiry interval 3600
        b"\x21\x00\x64"  # receive maximum 100
        b"\x00\x02c1"  # client id
    )


def test_encode_connect_with_credentials_and_clean_start() -> None:
    packet = encode_connect(
        "w",
        keepalive_s=65535,
        clean_start=True,
        session_expiry_s=0,
        receive_maximum=65535,
        username="siaga",
        password=b"p\x00ss",
    )
    assert packet == (
        b"\x10\x23"
        b"\x00\x04MQTT\x05"
        b"\xc2"  # user name 0x80 | password 0x40 | clean start 0x02
        b"\xff\xff"
        b"\x08\x11\x00\x00\x00\x00\x21\xff\xff"
        b"\x00\x01w"
        b"\x00\x05siaga"
        b"\x00\x04p\x00ss"
    )


@pytest.mark.parametrize(
    ("username", "password", "flags"),
    [("u", None, 0x80), (None, b"p", 0x40), (None, None, 0x00)],
)
def test_encode_connect_flag_bits(username: str | None, password: bytes | None, flags: int) -> None:
    packet = encode_connect(
        "c",
        keepalive_s=5,
        clean_start=False,
        session_expiry_s=1,
        receive_maximum=1,
        username=username,
        password=password,
    )
    assert packet[9] == flags


def test_encode_connect_utf8_client_id_and_long_remaining_length() -> None:
    client_id = "siaga-ingest-é" + "x" * 200
    packet = encode_connect(
        client_id, keepalive_s=30, clean_start=False, session_expiry_s=0, receive_maximum=10
    )
    body_length = 10 + 1 + 8 + 2 + len(client_id.encode())
    assert packet[:3] == b"\x10" + encode_varint(body_length)
    assert len(encode_varint(body_length)) == 2
    assert packet.endswith(mqtt_string(client_id))


def test_encode_connect_refuses_strings_over_65535_bytes() -> None:
    with pytest.raises(ValueError, match="string longer than 65535 bytes"):
        encode_connect(
            "x" * 65536, keepalive_s=30, clean_start=False, session_expiry_s=0, receive_maximum=1
        )
    with pytest.raises(ValueError, match="binary data longer than 65535 bytes"):
        encode_connect(
            "c",
            keepalive_s=30,
            clean_start=False,
            session_expiry_s=0,
            receive_maximum=1,
            password=bytes(65536),
        )


def test_encode_subscribe() -> None:
    topic_filter = "$share/siaga-ingest/siaga/+/telemetry"
    packet = encode_subscribe(7, topic_filter, 1)
    body = b"\x00\x07" + b"\x00" + mqtt_string(topic_filter) + b"\x01"
    assert packet == b"\x82" + bytes([len(body)]) + body
    assert encode_subscribe(65535, "a", 0) == b"\x82\x07\xff\xff\x00\x00\x01a\x00"
    assert encode_subscribe(1, "a", 2)[-1] == 0x02


def test_encode_subscribe_many_filters() -> None:
    filters = ["$share/g/siaga/+/telemetry", "v3/+/devices/+/up"]
    body = b"\x00\x02\x00" + mqtt_string(filters[0]) + b"\x01" + mqtt_string(filters[1]) + b"\x01"
    assert encode_subscribe(2, filters, 1) == b"\x82" + bytes([len(body)]) + body
    assert encode_subscribe(2, ("a",), 0) == encode_subscribe(2, "a", 0)


def test_encode_subscribe_needs_a_filter() -> None:
    with pytest.raises(ValueError, match="at least one topic filter"):
        encode_subscribe(1, [], 1)


def test_encode_pubacks() -> None:
    assert encode_pubacks([1]) == b"\x40\x02\x00\x01"
    assert encode_pubacks([1, 258, 65535]) == (b"\x40\x02\x00\x01\x40\x02\x01\x02\x40\x02\xff\xff")
    assert encode_pubacks([]) == b""


def test_fixed_packets() -> None:
    assert PINGREQ == b"\xc0\x00"
    assert DISCONNECT_NORMAL == b"\xe0\x00"


# -- reading packets ------------------------------------------------------------------------------


def read(data: bytes) -> list[Packet]:
    reader = PacketReader()
    packets = reader.feed(data)
    assert reader.feed(b"") == []  # nothing left over
    return packets


def test_publish_qos0() -> None:
    data = publish_bytes("siaga/tb-menggala/telemetry", b'{"ts": 1}')
    assert read(data) == [Publish("siaga/tb-menggala/telemetry", b'{"ts": 1}', 0, None, False)]


def test_publish_qos1_with_packet_id() -> None:
    data = publish_bytes("t", b"\x00\xff", qos=1, packet_id=513)
    assert read(data) == [Publish("t", b"\x00\xff", 1, 513, False)]


def test_publish_dup_and_retain_flags() -> None:
    data = publish_bytes("t", b"x", qos=1, packet_id=1, dup=True, retain=True)
    assert data[0] == 0x3B
    assert read(data) == [Publish("t", b"x", 1, 1, True)]


def test_publish_qos2_is_read_too() -> None:
    assert read(publish_bytes("t", b"x", qos=2, packet_id=9)) == [Publish("t", b"x", 2, 9)]


def test_publish_with_properties_skips_them() -> None:
    properties = (
        b"\x01\x01"  # payload format indicator: UTF-8
        b"\x02\x00\x00\x00\x3c"  # message expiry 60 s
        b"\x26" + mqtt_string("k") + mqtt_string("v")  # user property
    )
    data = publish_bytes("t/x", b"payload", qos=1, packet_id=2, properties=properties)
    assert read(data) == [Publish("t/x", b"payload", 1, 2)]


def test_publish_with_properties_longer_than_127_bytes() -> None:
    properties = b"\x26" + mqtt_string("k" * 100) + mqtt_string("v" * 100)
    assert len(properties) > 127
    data = publish_bytes("t", b"body", qos=0, properties=properties)
    assert read(data) == [Publish("t", b"body", 0, None)]


def test_publish_empty_payload_and_unicode_topic() -> None:
    assert read(publish_bytes("siaga/é/telemetry", b"")) == [
        Publish("siaga/é/telemetry", b"", 0, None)
    ]


def test_publish_topic_with_invalid_utf8_is_replaced_not_raised() -> None:
    body = u16(2) + b"\xff\xfe" + b"\x00" + b"p"
    assert read(frame(0x30, body)) == [Publish("\ufffd\ufffd", b"p", 0, None)]


def test_large_publish_with_a_three_byte_remaining_length() -> None:
    payload = bytes(range(256)) * 100
    data = publish_bytes("t", payload, qos=1, packet_id=3)
    assert data[1] & 0x80
    assert data[2] & 0x80
    assert read(data) == [Publish("t", payload, 1, 3)]


def test_connack_without_properties() -> None:
    assert read(b"\x20\x02\x00\x00") == [ConnAck(False, 0, {})]
    assert read(b"\x20\x02\x01\x86") == [ConnAck(True, 0x86, {})]


def test_connack_with_properties() -> None:
    properties = (
        b"\x1f"
        + mqtt_string("welcome, Jember")  # reason string
        + b"\x21\x00\x0a"  # receive maximum 10
        + b"\x27\x00\x01\x00\x00"  # maximum packet size 65536
        + b"\x24\x01"  # maximum QoS 1
        + b"\x12"
        + mqtt_string("auto-1")  # assigned client identifier
        + b"\x26"
        + mqtt_string("a")
        + mqtt_string("1")  # user properties accumulate
        + b"\x26"
        + mqtt_string("b")
        + mqtt_string("2")
    )
    data = frame(0x20, b"\x01\x00" + encode_varint(len(properties)) + properties)
    assert read(data) == [
        ConnAck(
            True,
            0,
            {
                0x1F: "welcome, Jember",
                0x21: 10,
                0x27: 65536,
                0x24: 1,
                0x12: "auto-1",
                0x26: (("a", "1"), ("b", "2")),
            },
        )
    ]


def test_suback() -> None:
    data = frame(0x90, u16(7) + b"\x00" + b"\x01\x80")
    assert read(data) == [SubAck(7, (0x01, 0x80))]
    reason = b"\x1f" + mqtt_string("quota")
    with_properties = frame(0x90, u16(8) + bytes([len(reason)]) + reason + b"\x97")
    assert read(with_properties) == [SubAck(8, (0x97,), "quota")]


def test_pingresp() -> None:
    assert read(b"\xd0\x00") == [PingResp()]


def test_disconnect_with_reason_string() -> None:
    properties = b"\x1f" + mqtt_string("server shutting down")
    data = frame(0xE0, b"\x8b" + encode_varint(len(properties)) + properties)
    assert read(data) == [Disconnect(0x8B, "server shutting down")]


@pytest.mark.parametrize(
    ("data", "packet"),
    [
        (b"\xe0\x00", Disconnect(0, None)),
        (b"\xe0\x01\x8e", Disconnect(0x8E, None)),  # session taken over, no properties
        (b"\xe0\x02\x00\x00", Disconnect(0, None)),
    ],
)
def test_disconnect_short_forms(data: bytes, packet: Disconnect) -> None:
    assert read(data) == [packet]


def test_decode_properties_binary_and_varint() -> None:
    properties = b"\x09" + u16(3) + b"\x00\x01\x02" + b"\x0b\x80\x01"  # correlation, sub id 128
    data = b"\xaa" + encode_varint(len(properties)) + properties + b"rest"
    assert decode_properties(data, 1) == ({0x09: b"\x00\x01\x02", 0x0B: 128}, len(data) - 4)


STREAM_PACKETS: list[tuple[bytes, Packet]] = [
    (b"\x20\x03\x00\x00\x00", ConnAck(False, 0, {})),
    (frame(0x90, u16(1) + b"\x00\x01"), SubAck(1, (1,))),
    (publish_bytes("siaga/a/telemetry", b"one"), Publish("siaga/a/telemetry", b"one", 0, None)),
    (
        publish_bytes("siaga/b/telemetry", b"x" * 300, qos=1, packet_id=70),
        Publish("siaga/b/telemetry", b"x" * 300, 1, 70),
    ),
    (b"\xd0\x00", PingResp()),
    (
        publish_bytes(
            "siaga/a/telemetry", b"", qos=1, packet_id=71, dup=True, properties=b"\x01\x01"
        ),
        Publish("siaga/a/telemetry", b"", 1, 71, True),
    ),
    (
        publish_bytes("s/é", b"\xff" * 130, qos=1, packet_id=65535),
        Publish("s/é", b"\xff" * 130, 1, 65535),
    ),
    (frame(0xE0, b"\x8b\x05\x1f\x00\x02ok"), Disconnect(0x8B, "ok")),
]
STREAM = b"".join(data for data, _ in STREAM_PACKETS)
EXPECTED = [packet for _, packet in STREAM_PACKETS]


def test_stream_in_one_feed() -> None:
    assert read(STREAM) == EXPECTED


def test_stream_split_at_every_byte_boundary() -> None:
    for cut in range(len(STREAM) + 1):
        reader = PacketReader()
        packets = reader.feed(STREAM[:cut]) + reader.feed(STREAM[cut:])
        assert packets == EXPECTED, f"split at byte {cut}"


def test_stream_fed_one_byte_at_a_time() -> None:
    reader = PacketReader()
    packets: list[Packet] = []
    for index in range(len(STREAM)):
        packets += reader.feed(STREAM[index : index + 1])
    assert packets == EXPECTED


def test_packets_are_returned_as_soon_as_complete() -> None:
    reader = PacketReader()
    first, _ = STREAM_PACKETS[0]
    second, _ = STREAM_PACKETS[2]
    assert reader.feed(first + second[:3]) == [EXPECTED[0]]
    assert reader.feed(second[3:]) == [EXPECTED[2]]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_stream_under_random_chunking(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(STREAM)]
    reader = PacketReader()
    packets: list[Packet] = []
    for start, end in pairwise(points):
        packets += reader.feed(STREAM[start:end])
    assert packets == EXPECTED


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=30),
            st.binary(max_size=300),
            st.sampled_from([0, 1]),
            st.integers(min_value=1, max_value=65535),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    ),
    st.data(),
)
def test_random_publishes_under_random_chunking(
    messages: list[tuple[str, bytes, int, int, bool]], data: st.DataObject
) -> None:
    stream = b""
    expected = []
    for topic, payload, qos, packet_id, dup in messages:
        pid = packet_id if qos else None
        stream += publish_bytes(topic, payload, qos=qos, packet_id=pid, dup=dup)
        expected.append(Publish(topic, payload, qos, pid, dup))
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=10))
    points = [0, *sorted(cuts), len(stream)]
    reader = PacketReader()
    packets: list[Packet] = []
    for start, end in pairwise(points):
        packets += reader.feed(stream[start:end])
    assert packets == expected


# -- malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x36\x05\x00\x01t\x00\x01", "PUBLISH with QoS 3"),
        (b"\x10\x00", "unexpected packet type 1"),  # CONNECT, from a broker
        (b"\x40\x02\x00\x01", "unexpected packet type 4"),  # PUBACK: we never publish QoS 1
        (b"\x80\x00", "unexpected packet type 8"),  # SUBSCRIBE
        (b"\xf0\x00", "unexpected packet type 15"),  # AUTH is not supported
        (b"\x00\x00", "unexpected packet type 0"),  # reserved
        (b"\x30\xff\xff\xff\xff\x01", "variable byte integer longer than 4 bytes"),
        (b"\x20\x01\x00", "truncated CONNACK"),
        (b"\x20\x00", "truncated CONNACK"),
        (b"\x90\x01\x00", "truncated SUBACK"),
        (b"\x20\x04\x00\x00\x05\x1f", "properties run past the packet"),
        (b"\x20\x05\x00\x00\x02\x7f\x00", "unknown property identifier 0x7f"),
        (b"\x20\x04\x00\x00\x01\x21", "truncated CONNACK"),  # value cut by the packet end
        (b"\x20\x06\x00\x00\x01\x21\x00\x0a", "properties overrun their length"),
        (b"\xe0\x03\x00\x01\x1f", "truncated DISCONNECT"),
        (b"\xe0\x03\x00\x02\x1f", "properties run past the packet"),
        # The topic runs past this PUBLISH into the next packet's bytes:
        (b"\x30\x04\x00\x05abc" + b"\xd0\x00\x00\x00", "PUBLISH header runs past the packet"),
    ],
)
def test_malformed_input_raises_protocol_error(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        PacketReader().feed(data)


def test_packet_over_the_limit_is_refused_before_its_body_arrives() -> None:
    reader = PacketReader(max_packet_bytes=1000)
    assert reader.feed(publish_bytes("t", b"x" * 900)) == [Publish("t", b"x" * 900, 0, None)]
    with pytest.raises(ProtocolError, match="packet of 2000 bytes exceeds the limit"):
        reader.feed(b"\x30" + encode_varint(2000))


def test_incomplete_remaining_length_waits_for_more() -> None:
    reader = PacketReader()
    assert reader.feed(b"\x30\x80") == []
    assert reader.feed(b"\x80") == []
    assert reader.feed(b"\x80") == []  # four continuation bytes could still be valid...
    with pytest.raises(ProtocolError, match="longer than 4 bytes"):
        reader.feed(b"\x80")  # ...a fifth cannot


PUBLISH_FRAMING_BUGS = [
    b"\x30\x00",  # no room for the topic length
    b"\x30\x01\x00",
    b"\x32\x02\x00\x00",  # QoS 1 with no room for the packet id
    b"\x30\x02\x00\x05",  # topic length beyond the packet, nothing after it
    b"\x30\x03\x00\x00\x80",  # property length varint cut by the end of the stream
    b"\x30\x04\x00\x05abc",  # topic runs past the packet, at the end of the stream
]


@pytest.mark.parametrize("data", PUBLISH_FRAMING_BUGS)
def test_short_publish_raises_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        PacketReader().feed(data)


CONTROL_FIRST_BYTES = st.integers(min_value=0, max_value=255).filter(lambda b: b >> 4 != 3)


@settings(max_examples=300)
@given(st.lists(st.tuples(CONTROL_FIRST_BYTES, st.binary(max_size=40)), min_size=1, max_size=5))
def test_framed_control_packets_with_arbitrary_bodies_raise_only_protocol_error(
    packets: list[tuple[int, bytes]],
) -> None:
    stream = b"".join(frame(first, body) for first, body in packets)
    with contextlib.suppress(ProtocolError):
        PacketReader().feed(stream)


@settings(max_examples=300, derandomize=True)
@given(st.binary(max_size=200))
@example(b"\x30\x00")
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        PacketReader().feed(data)


def test_encoded_publishes_read_back() -> None:

    data = encode_publish("siaga/a/telemetry", b"x" * 300, 7) + encode_publish("t", b"q")
    assert PacketReader().feed(data) == [
        Publish("siaga/a/telemetry", b"x" * 300, 1, 7),
        Publish("t", b"q", 0, None),
    ]


def test_connect_carries_the_maximum_packet_size_property() -> None:
    packet = encode_connect(
        "c", keepalive_s=30, clean_start=False, session_expiry_s=60, receive_maximum=100,
        maximum_packet_size=73_728,
    )  # fmt: skip
    properties, _ = decode_properties(packet, 2 + 10)  # fixed header, then 10 bytes to them
    assert properties[MAXIMUM_PACKET_SIZE] == 73_728
    assert properties[RECEIVE_MAXIMUM] == 100


def test_property_encoding_round_trips() -> None:

    wanted: dict[int, int | str] = {0x13: 5, 0x24: 0, 0x27: 1 << 20, 0x1F: "because"}
    assert decode_properties(encode_properties(wanted), 0)[0] == wanted
    with pytest.raises(ValueError, match="cannot encode property 0x24"):
        encode_properties({0x24: "one"})


def test_reasons_are_described_with_the_brokers_words() -> None:

    assert describe_reason(0x9E, "no") == "0x9e (shared subscriptions not supported: no)"
    assert describe_reason(0x42) == "0x42 (unknown reason)"


# -- the subscriber's path: deliveries straight from the parser --------------------------------


def _as_read_by_feed(data: bytes, token_base: int) -> tuple[list[Delivery], list[Packet]] | str:
    """What feed_deliveries must give: feed's packets, each PUBLISH as a delivery."""
    try:
        packets = PacketReader().feed(data)
    except ProtocolError as exc:
        return str(exc)
    deliveries = [
        Delivery(p.topic, p.payload, None if p.packet_id is None else token_base | p.packet_id)
        for p in packets
        if isinstance(p, Publish)
    ]
    return deliveries, [p for p in packets if not isinstance(p, Publish)]


def _as_read_by_feed_deliveries(
    data: bytes, token_base: int
) -> tuple[list[Delivery], list[Packet]] | str:
    try:
        return PacketReader().feed_deliveries(data, token_base)
    except ProtocolError as exc:
        return str(exc)


def test_deliveries_carry_the_generation_in_their_tokens() -> None:
    deliveries, others = PacketReader().feed_deliveries(STREAM, 7 << 16)
    assert deliveries == [
        Delivery("siaga/a/telemetry", b"one", None),
        Delivery("siaga/b/telemetry", b"x" * 300, 7 << 16 | 70),
        Delivery("siaga/a/telemetry", b"", 7 << 16 | 71),
        Delivery("s/é", b"\xff" * 130, 7 << 16 | 65535),
    ]
    assert others == [p for p in EXPECTED if not isinstance(p, Publish)]


@settings(max_examples=500, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.text(max_size=10),
            st.binary(max_size=40),
            st.sampled_from([0, 1]),
            st.binary(max_size=200).map(lambda b: b"\x01\x01" * (len(b) // 2)),
        ),
        max_size=4,
    ),
    st.binary(max_size=12),
)
@example([("t", b"p", 1, b"\x01\x01" * 70)], b"")  # a property length of two bytes
def test_deliveries_are_what_feed_reads(
    messages: list[tuple[str, bytes, int, bytes]], tail: bytes
) -> None:
    stream = b"".join(
        publish_bytes(topic, payload, qos=qos, packet_id=9 if qos else None, properties=props)
        for topic, payload, qos, props in messages
    )
    stream += tail  # and whatever follows: a fragment, garbage, a QoS 1 header cut short
    assert _as_read_by_feed_deliveries(stream, 3 << 16) == _as_read_by_feed(stream, 3 << 16)


@settings(max_examples=500, derandomize=True)
@given(st.binary(max_size=60).map(lambda b: b"\x32" + b))
@example(b"\x32\x05\x00\x05abcde")  # the topic leaves no room for the packet id
@example(b"\x32\x06\x00\x01t\x00\x01\x05")  # the property length runs past the packet
def test_deliveries_from_arbitrary_qos1_bytes_are_what_feed_reads(data: bytes) -> None:
    assert _as_read_by_feed_deliveries(data, 1 << 16) == _as_read_by_feed(data, 1 << 16)

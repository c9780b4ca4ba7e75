"""The fleet's cheap MQTT encoder: packets as the MQTT 3.1.1 and 5 standards spell them."""

from __future__ import annotations

import pytest

from ingest.mqtt.codec import PacketReader, Publish, encode_publish
from simulators.wire import connect_packet, encoded_topic, publish_packet, remaining_length


@pytest.mark.parametrize(
    ("length", "encoded"),
    [(0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"), (16_383, b"\xff\x7f"),
     (16_384, b"\x80\x80\x01"), (268_435_455, b"\xff\xff\xff\x7f")],
)  # fmt: skip
def test_remaining_length_is_the_standard_variable_integer(length: int, encoded: bytes) -> None:
    assert remaining_length(length) == encoded


def test_a_qos1_publish_packet() -> None:
    packet = publish_packet(encoded_topic("siaga/a/telemetry"), 258, b'{"ts":1}')
    assert packet == b"\x32\x1d\x00\x11siaga/a/telemetry\x01\x02" + b'{"ts":1}'
    long_payload = b"x" * 200
    packet = publish_packet(encoded_topic("t"), 1, long_payload)
    assert packet[:3] == b"\x32" + remaining_length(3 + 2 + 200)
    assert packet.endswith(long_payload)


def test_connect_with_and_without_a_login() -> None:
    assert connect_packet("c", None, None) == b"\x10\x0d\x00\x04MQTT\x04\x02\x00\x00\x00\x01c"
    with_login = connect_packet("c", "u", "pw")
    assert with_login[9] == 0xC2  # user name, password, clean session
    assert with_login.endswith(b"\x00\x01c\x00\x01u\x00\x02pw")
    assert with_login[1] == len(with_login) - 2


def test_mqtt5_packets_are_the_subscribers_own() -> None:
    topic, payload = "siaga/a/telemetry", b'{"ts":1}'
    packet = publish_packet(encoded_topic(topic), 258, payload, properties=b"\x00")
    assert packet == encode_publish(topic.encode(), payload, 258)
    (decoded,) = PacketReader().feed(packet)
    assert isinstance(decoded, Publish)
    assert (decoded.topic, decoded.payload, decoded.packet_id) == (topic, payload, 258)
    assert (
        connect_packet("c", None, None, 5) == b"\x10\x0e\x00\x04MQTT\x05\x02\x00\x00\x00\x00\x01c"
    )

"""A cheap MQTT 3.1.1 QoS 1 publisher for load: a raw socket, packets encoded in bulk.

paho keeps per-message bookkeeping (a message object, a lock, a dict entry per in-flight
message) that costs hundreds of microseconds a message once thousands are in flight. Load
generation needs none of it: packets are encoded a chunk at a time into one buffer and sent
with one ``sendall``, and a reader thread only counts PUBACKs. At most ``window`` messages are
unacknowledged (packet ids are reused round-robin, so the window stays below 65,535).

It lives in ``simulators/`` because simulators import only ``devices/``; the benchmarks
publish through it too (``benchmarks/ingest.py``'s ``FleetPublisher``).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import uuid
from collections.abc import Sequence
from typing import Literal

from devices.errors import SiagaError

PUBACK_BYTES = 4
"""A PUBACK is four bytes (MQTT 5's success takes the short form); with keep-alive off nothing
else arrives from the broker."""

Protocol = Literal[4, 5]
"""MQTT 3.1.1 (4) or MQTT 5 (5). A broker may take one faster than the other: mosquitto 2
acknowledged MQTT 5 publishes about 15 % faster here, which the ingest benchmark relies on."""


class WireError(SiagaError):
    """The broker refused or dropped the fleet publisher's connection."""


def remaining_length(length: int) -> bytes:
    """MQTT's variable-length integer."""
    encoded = bytearray()
    while True:
        byte, length = length & 0x7F, length >> 7
        encoded.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(encoded)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def connect_packet(
    client_id: str, username: str | None, password: str | None, protocol: Protocol = 4
) -> bytes:
    """CONNECT, clean session, keep-alive off; MQTT 3.1.1 (``protocol`` 4) or 5 (no properties:
    the session ends with the connection, and the broker may send up to 65,535 in flight)."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    properties = b"\x00" if protocol == 5 else b""
    body = (
        b"\x00\x04MQTT" + bytes([protocol, flags]) + b"\x00\x00" + properties + _string(client_id)
    )
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)
    return b"\x10" + remaining_length(len(body)) + body


def encoded_topic(topic: str) -> bytes:
    """A topic as it appears in PUBLISH: a two-byte length, then UTF-8."""
    return _string(topic)


def publish_packet(topic: bytes, packet_id: int, payload: bytes, properties: bytes = b"") -> bytes:
    """PUBLISH at QoS 1 (``topic`` from :func:`encoded_topic`; ``packet_id`` 1..65535;
    ``properties``: :attr:`WirePublisher.properties`, empty for MQTT 3.1.1)."""
    length = len(topic) + 2 + len(properties) + len(payload)
    return (
        b"\x32"
        + remaining_length(length)
        + topic
        + packet_id.to_bytes(2, "big")
        + properties
        + payload
    )


class WirePublisher:
    """One connection publishing QoS 1 messages with a bounded in-flight window.

    Args:
        host: The broker.
        port: Its port.
        username: MQTT user name, or None.
        password: MQTT password, or None.
        window: Messages allowed unacknowledged (1 to 65,534).
        client_id: MQTT client id (default: a random one).
        protocol: MQTT 3.1.1 (4) or 5; encode packets with :attr:`properties`.

    Raises:
        WireError: The broker refused the connection.
        OSError: The broker cannot be reached.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        *,
        window: int = 2000,
        client_id: str | None = None,
        protocol: Protocol = 4,
    ) -> None:
        if not 0 < window < 65535:
            raise ValueError("window must be between 1 and 65534 messages")
        self.window = window
        self.properties = b"\x00" if protocol == 5 else b""
        """What goes between a PUBLISH's packet id and its payload (:func:`publish_packet`)."""
        self.sent = 0
        self._acked_bytes = 0
        self._closed = False
        self._progress = threading.Condition()
        self._socket = socket.create_connection((host, port), timeout=30)
        try:
            self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = client_id or f"siaga-fleet-{uuid.uuid4().hex[:8]}"
            self._socket.sendall(connect_packet(client, username, password, protocol))
            self._check_connack(self._receive_connack())
            self._socket.settimeout(None)
        except BaseException:
            self._socket.close()
            raise
        self._reader = threading.Thread(target=self._read_acks, name="fleet.puback-reader")
        self._reader.daemon = True
        self._reader.start()

    def _receive_connack(self) -> bytes:
        """The whole CONNACK (MQTT 5's carries properties after the four bytes of 3.1.1's)."""
        packet = self._receive_exactly(2)
        length, shift = packet[1] & 0x7F, 7
        while packet[-1] & 0x80:
            packet += self._receive_exactly(1)
            length |= (packet[-1] & 0x7F) << shift
            shift += 7
        return packet + self._receive_exactly(length)

    @staticmethod
    def _check_connack(connack: bytes) -> None:
        if connack[0] != 0x20 or connack[3] != 0:
            raise WireError(f"the broker refused the connection (CONNACK {connack.hex()})")

    def _receive_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._socket.recv(size - len(data))
            if not chunk:
                raise WireError("the broker closed the connection")
            data += chunk
        return data

    def _read_acks(self) -> None:
        while True:
            try:
                data = self._socket.recv(1 << 16)
            except OSError:
                data = b""
            with self._progress:
                if not data:
                    self._closed = True
                    self._progress.notify_all()
                    return
                self._acked_bytes += len(data)
                self._progress.notify_all()

    @property
    def acknowledged(self) -> int:
        """Messages the broker acknowledged so far."""
        return self._acked_bytes // PUBACK_BYTES

    def next_packet_id(self, offset: int) -> int:
        """The packet id of the ``offset``-th message after those already sent."""
        return (self.sent + offset) % 65535 + 1

    def send(self, packets: Sequence[bytes], timeout_s: float = 30.0) -> None:
        """Send encoded PUBLISH packets, first waiting until the window has room for them.

        Raises:
            WireError: The connection closed, or no room came within ``timeout_s``.
        """
        self.wait_room(len(packets), timeout_s)
        self._socket.sendall(b"".join(packets))
        self.sent += len(packets)

    def wait_room(self, count: int, timeout_s: float = 30.0) -> None:
        """Wait until the window has room for ``count`` more messages.

        A caller that stamps its payloads with the time of sending waits here first, then
        encodes, then :meth:`send` s at once.

        Raises:
            WireError: The connection closed, or no room came within ``timeout_s``.
        """
        if count > self.window:
            raise ValueError("more packets than the window holds")
        with self._progress:
            room = self._progress.wait_for(
                lambda: self._closed or self.sent + count - self.acknowledged <= self.window,
                timeout_s,
            )
            if self._closed:
                raise WireError("the broker closed the connection")
            if not room:
                raise WireError(f"no acknowledgement for {timeout_s:g} s")

    def wait_acknowledged(self, timeout_s: float) -> bool:
        """Wait until every message sent is acknowledged; False when ``timeout_s`` passed."""
        with self._progress:
            return self._progress.wait_for(
                lambda: self._closed or self.acknowledged >= self.sent, timeout_s
            ) and (self.acknowledged >= self.sent)

    def close(self) -> None:
        """Disconnect."""
        with contextlib.suppress(OSError):
            self._socket.sendall(b"\xe0\x00")
            self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._reader.join(5)

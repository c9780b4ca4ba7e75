"""Is that an MQTT 5 broker, an InfluxDB, a Siaga? Probes that answer before anything trusts a port.

A port that accepts TCP connections proves nothing: Redis, a web server or an MQTT 3.1.1-only
broker all accept them. Each probe here speaks the first exchange of the protocol it expects and
says what it found.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass

from ingest.mqtt.codec import ConnAck, Disconnect, PacketReader, ProtocolError, encode_connect


@dataclass(frozen=True, slots=True)
class MqttProbe:
    """What answered an MQTT 5 CONNECT.

    Attributes:
        is_mqtt5: A CONNACK came back (whatever its reason code).
        accepted: The CONNACK's reason code was success.
        detail: For people: the reason code, or what answered instead.
        shared_subscriptions: The broker's Shared Subscription Available property (None: not
            said, which MQTT 5 defines as available).
        maximum_qos: The broker's Maximum QoS property (None: not said, i.e. 2).
    """

    is_mqtt5: bool
    accepted: bool
    detail: str
    shared_subscriptions: bool | None = None
    maximum_qos: int | None = None


_SHARED_SUBSCRIPTION_AVAILABLE = 0x2A
_MAXIMUM_QOS = 0x24


def probe_mqtt5(
    host: str,
    port: int,
    *,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = 3.0,
) -> MqttProbe:
    """Send an MQTT 5 CONNECT (clean start, no session kept) and read the answer."""
    packet = encode_connect(
        "siaga-probe",
        keepalive_s=10,
        clean_start=True,
        session_expiry_s=0,
        receive_maximum=10,
        username=username,
        password=None if password is None else password.encode(),
    )
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as connection:
            connection.settimeout(timeout_s)
            connection.sendall(packet)
            reader = PacketReader(max_packet_bytes=1 << 16)
            received = b""
            while True:
                try:
                    data = connection.recv(4096)
                except TimeoutError:
                    return MqttProbe(False, False, _silence(received))
                if not data:
                    return MqttProbe(False, False, _closed(received))
                received += data
                try:
                    packets = reader.feed(data)
                except ProtocolError:
                    return MqttProbe(False, False, f"it answered {_show(received)}, not MQTT 5")
                for answer in packets:
                    if isinstance(answer, ConnAck):
                        with contextlib.suppress(OSError):
                            connection.sendall(b"\xe0\x00")  # DISCONNECT, normal
                        return _from_connack(answer)
                    if isinstance(answer, Disconnect):
                        return MqttProbe(
                            True, False, f"it closed the connection: reason {answer.reason_code}"
                        )
                    return MqttProbe(False, False, f"it answered {_show(received)}, not CONNACK")
    except OSError as exc:
        return MqttProbe(False, False, f"cannot connect: {exc.strerror or exc}")


def _from_connack(connack: ConnAck) -> MqttProbe:
    shared = connack.properties.get(_SHARED_SUBSCRIPTION_AVAILABLE)
    maximum_qos = connack.properties.get(_MAXIMUM_QOS)
    if connack.reason_code == 0:
        detail = "an MQTT 5 broker accepted the connection"
    else:
        detail = (
            f"an MQTT 5 broker refused the connection (reason code 0x{connack.reason_code:02x})"
        )
    return MqttProbe(
        True,
        connack.reason_code == 0,
        detail,
        None if shared is None else bool(shared),
        maximum_qos,
    )


def _show(data: bytes) -> str:
    return repr(data[:40])


def _silence(received: bytes) -> str:
    if received:
        return f"it answered {_show(received)} and then nothing: not an MQTT 5 broker"
    # An MQTT 3.1.1-only broker never answers a version-5 CONNECT; neither do most non-MQTT
    # servers that wait for their own protocol's first line.
    return "it never answered an MQTT 5 CONNECT: not an MQTT 5 broker (MQTT 3.1.1 only?)"


def _closed(received: bytes) -> str:
    if received:
        return f"it answered {_show(received)} and closed: not an MQTT 5 broker"
    return "it closed the connection without answering: not an MQTT 5 broker"


def influx_answers(url: str, timeout_s: float = 2.0) -> bool:
    """Whether an InfluxDB answers ``/ping`` at ``url`` (1.x, and 2.x/3.x's v1 API, say 204)."""
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=timeout_s) as response:  # noqa: S310
            return bool(response.status == 204)
    except (urllib.error.URLError, OSError):
        return False


def http_ok(url: str, timeout_s: float = 2.0) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False

"""Oversized payloads on the real broker, as Siaga configures it: never dropped in silence.

A device's PUBLISH past the broker's ``max_packet_size`` is refused at once (MQTT 5: DISCONNECT
with reason 0x95; MQTT 3.1.1, which has no reason codes: the connection closes and no PUBACK
comes); a payload the broker accepts reaches the worker and is stored as ``payload_too_large``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.settings import ValidationSettings
from ops.servers import InfluxServer, MosquittoServer
from tests.conftest import REPO_ROOT
from tests.helpers import influx_query, wait_for
from tests.integration.drivers import WorkerProcess

pytestmark = pytest.mark.integration

PACKET_TOO_LARGE = 0x95
UNSPECIFIED = 0x80  # paho's reason when the connection drops without a DISCONNECT read


def shipped_max_packet_size() -> int:
    """``max_packet_size`` of config/mosquitto/mosquitto.conf, the broker a deployment runs."""
    text = (REPO_ROOT / "config/mosquitto/mosquitto.conf").read_text()
    found = re.search(r"^max_packet_size (\d+)$", text, re.MULTILINE)
    assert found is not None
    return int(found.group(1))


@dataclass
class Outcome:
    """What a device saw of one QoS 1 publish."""

    puback: int | None = None
    disconnect: int | None = None


def publish_once(
    port: int, topic: str, payload: bytes, protocol: paho.MQTTProtocolVersion
) -> Outcome:
    """Publish at QoS 1 as a device would, and say what came back (PUBACK or DISCONNECT)."""
    outcome = Outcome()
    done = threading.Event()
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"dev-{len(payload)}-{protocol}", protocol=protocol
    )

    def on_publish(
        _c: paho.Client, _u: object, _mid: int, code: ReasonCode, _p: Properties
    ) -> None:
        outcome.puback = code.value
        done.set()

    def on_disconnect(
        _c: paho.Client, _u: object, _f: object, code: ReasonCode, _p: Properties | None
    ) -> None:
        outcome.disconnect = code.value
        done.set()

    client.on_publish = on_publish
    client.on_disconnect = on_disconnect
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        assert done.wait(15), "neither a PUBACK nor a disconnect"
    finally:
        client.disconnect()
        client.loop_stop()
    return outcome


def test_a_payload_too_large_is_refused_at_publish_or_stored_never_dropped(
    tmp_path: Path, influx_session: InfluxServer, database: str
) -> None:
    limits = ValidationSettings()
    assert shipped_max_packet_size() == limits.broker_max_packet_bytes
    with (
        MosquittoServer(tmp_path / "broker", max_packet_bytes=shipped_max_packet_size()) as broker,
        WorkerProcess(
            tmp_path / "worker", broker.url, influx_session.url, database, client_id="w-big"
        ) as worker,
    ):
        topic = f"{worker.topic_prefix}/tb-menggala/telemetry"
        for size in (100_000, 2_000_000):
            payload = b"{" + b" " * (size - 2) + b"}"
            said = publish_once(broker.port, topic, payload, paho.MQTTv5)
            if size > 1_000_000:
                # The broker answers DISCONNECT 0x95 and closes while a device may still be
                # sending megabytes: its TCP stack can then see the reset before the answer
                # (paho: 0x80, the connection lost). Refused either way, never acknowledged.
                assert said.puback is None, (size, said)
                assert said.disconnect in {PACKET_TOO_LARGE, UNSPECIFIED}, (size, said)
            else:
                assert said == Outcome(disconnect=PACKET_TOO_LARGE), (size, said)
            legacy = publish_once(broker.port, topic, payload, paho.MQTTv311)
            assert legacy.puback is None, f"a {size} B publish acknowledged: {legacy}"
            assert legacy.disconnect is not None
        # Over the payload limit, under the broker's: delivered, and stored with its reason.
        payload = b"{" + b" " * (limits.max_payload_bytes + 1000) + b"}"
        assert publish_once(broker.port, topic, payload, paho.MQTTv5).puback in {0, 0x10}

        def stored() -> list[str]:
            series = influx_query(
                influx_session.url, database, "SELECT detail FROM rejected GROUP BY reason"
            )
            return [s["tags"]["reason"] for s in series for _ in s["values"]]

        wait_for(lambda: stored() == ["payload_too_large"], 30, "the rejection stored")
        assert worker.metric('siaga_rejections_total{reason="payload_too_large"}') == 1
        assert worker.metric("siaga_messages_received_total") == 1

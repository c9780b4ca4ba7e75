"""The worker on a second real MQTT 5 broker: rumqttd (from the ``iotcore`` package)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from ingest.worker import IngestWorker
from tests.conformance.rumqttd import rumqttd
from tests.conformance.worker import run_worker
from tests.helpers import eventually, reading_payload
from tests.integration.drivers import paho_publish

pytestmark = pytest.mark.conformance


def telemetry(count: int) -> list[tuple[str, bytes]]:
    ts_ms = time.time_ns() // 1_000_000 - 60_000
    return [
        ("siaga/tb-menggala/telemetry", reading_payload(ts_ms + i, seq=i, water_level_cm=150.0))
        for i in range(count)
    ]


def subscribed(worker: IngestWorker) -> bool:
    return worker.metrics.registry.get_sample_value("siaga_mqtt_connected") == 1


@pytest.mark.parametrize(
    "topic_filter", ["siaga/+/telemetry", "$share/siaga-ingest/siaga/+/telemetry"]
)
async def test_the_worker_stores_everything_from_rumqttd(tmp_path: Path, topic_filter: str) -> None:
    with rumqttd(tmp_path / "broker") as port:
        async with run_worker(tmp_path, port, topic_filters=(topic_filter,)) as (storage, worker):
            await eventually(lambda: subscribed(worker), what="subscribed")
            await asyncio.to_thread(paho_publish, port, telemetry(300), "pub", paho.MQTTv5)
            await eventually(lambda: len(storage.points) == 300, what="stored")
    assert {values["seq"] for values in storage.points.values()} == set(map(float, range(300)))

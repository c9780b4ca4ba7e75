"""An ingest worker on in-memory storage, subscribed to a broker on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from devices import TopicScheme, load_stations
from ingest.batch import BatchPolicy
from ingest.metrics import IngestMetrics
from ingest.mqtt.client import ConnectOptions, MqttSubscriber
from ingest.retry import RetryPolicy
from ingest.spool import Spool
from ingest.storage.memory import MemoryStorage
from ingest.validation import Limits, Validator
from ingest.worker import IngestWorker
from tests.conftest import STATIONS_FILE


def build_worker(
    tmp_path: Path,
    port: int,
    *,
    flush_interval_s: float = 0.05,
    idle_flush_s: float | None = 0.002,
    topic_filters: tuple[str, ...] = ("siaga/+/telemetry",),
    client_id: str = "conformance-worker",
) -> tuple[MemoryStorage, IngestWorker]:
    """A worker subscribed to ``127.0.0.1:port``, storing in memory."""
    storage = MemoryStorage()
    metrics = IngestMetrics()
    subscriber = MqttSubscriber(
        ConnectOptions(
            host="127.0.0.1",
            port=port,
            client_id=client_id,
            topic_filters=topic_filters,
            reconnect=RetryPolicy(initial_s=0.05, max_s=0.2, deadline_s=None),
        ),
        on_state=metrics.set_mqtt_connected,
    )
    worker = IngestWorker(
        subscriber,
        storage,
        Spool(tmp_path / "spool", 10 << 20),
        Validator(load_stations(STATIONS_FILE), TopicScheme(), Limits()),
        metrics,
        batch_policy=BatchPolicy(flush_interval_s=flush_interval_s),
        write_retry=RetryPolicy(initial_s=0.01, max_s=0.05, deadline_s=0.2),
        drain_retry=RetryPolicy(initial_s=0.01, max_s=0.05, deadline_s=None),
        loop_restart=RetryPolicy(initial_s=0.01, max_s=0.05, deadline_s=None),
        max_batches_in_flight=4,
        spool_warn_fraction=0.8,
        idle_flush_s=idle_flush_s,
    )
    return storage, worker


@asynccontextmanager
async def run_worker(
    tmp_path: Path, port: int, **options: Any
) -> AsyncIterator[tuple[MemoryStorage, IngestWorker]]:
    """Run a worker (see :func:`build_worker`) until the block ends, then stop it gracefully."""
    storage, worker = build_worker(tmp_path, port, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield storage, worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)

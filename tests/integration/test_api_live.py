"""Live: a reading published over MQTT reaches an SSE client of `siaga serve`'s app within 2 s.

Real mosquitto, the ingest worker as its own process, real InfluxDB, the app under uvicorn.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from alerts.incidents.memory import MemoryIncidentStore
from alerts.model import Incident
from dashboards.api import create_app
from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import sql_engine
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage, registry_tags
from ops.servers import InfluxServer, MosquittoServer, free_port
from tests.apitools import FAST_HASHER, NOW_NS, incident, registry, settings, sse_events
from tests.integration.drivers import WorkerProcess, paho_publish

pytestmark = pytest.mark.integration


async def test_a_reading_reaches_the_event_stream_within_two_seconds(
    tmp_path: Path,
    worker: WorkerProcess,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stations = registry()
    url = f"sqlite:///{tmp_path}/siaga.db"
    accounts = Accounts(sql_engine(url), hasher=FAST_HASHER)
    accounts.create_tables()
    _, key = accounts.add_key("viewer", Role.VIEWER, "test", NOW_NS)
    incidents = MemoryIncidentStore()
    incidents.put(incident(1, updated_ns=time.time_ns()))
    # The poller reads the latest readings, then the incidents: once it asks for incidents,
    # the baseline of readings is taken and a reading published now is news.
    polled = asyncio.Event()
    list_incidents = incidents.list

    async def listing(*args: Any, **kwargs: Any) -> list[Incident]:
        polled.set()
        return await list_incidents(*args, **kwargs)

    monkeypatch.setattr(incidents, "list", listing)
    port = free_port()
    async with InfluxStorage(
        InfluxSettings(url=influx_session.url, database=database), registry_tags(stations)
    ) as storage:
        app = create_app(
            settings(url, tmp_path),
            storage=storage,
            registry=stations,
            incidents_store=incidents,
            accounts=accounts,
        )
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_config=None, lifespan="on"))
        serving = asyncio.create_task(server.serve())
        try:
            deadline = time.monotonic() + 30
            while not server.started:
                assert time.monotonic() < deadline, "uvicorn did not start"
                await asyncio.sleep(0.05)
            async with (
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=30,
                ) as client,
                client.stream("GET", "/api/v1/events") as response,
            ):
                assert response.headers["content-type"].startswith("text/event-stream")
                stream = sse_events(response)
                # Nobody listened before this stream, so the poller's first poll is its
                # silent baseline: publish only once it has been taken.
                async with asyncio.timeout(10):
                    await polled.wait()
                ts_ms = int(time.time() * 1000)
                topic = f"{worker.topic_prefix}/tb-menggala/telemetry"
                payload = json.dumps({"ts": ts_ms, "water_level_cm": 371.5}).encode()
                published = time.monotonic()
                await asyncio.to_thread(
                    paho_publish, broker_session.port, [(topic, payload)], f"pub-{database}"
                )
                found = None
                async with asyncio.timeout(10):
                    async for kind, data in stream:
                        if kind == "reading" and data["station"] == "tb-menggala":
                            found = data
                            break
                latency_s = time.monotonic() - published
                assert found is not None
                assert found["value_cm"] == 371.5
                assert found["level_label"] == "Siaga"
                assert latency_s < 2.0, f"reading reached the stream after {latency_s:.2f} s"
                await incidents.acknowledge(1, by="siti", comment="", at_ns=time.time_ns())
                async with asyncio.timeout(10):
                    async for kind, data in stream:
                        if kind == "alert":
                            assert data["acknowledged"]["by"] == "siti"  # type: ignore[index]
                            break
        finally:
            server.should_exit = True
            await serving

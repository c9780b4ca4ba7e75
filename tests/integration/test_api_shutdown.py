"""`siaga serve` stops at once with pages open: the live streams end when shutdown begins.

uvicorn waits for every open response before it stops; an open page's event stream never ends
by itself. The server here waits up to 30 s for open responses, as uvicorn does by default:
only the streams ending at shutdown make it stop within the 5 s that `siaga up` allows.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from dashboards.api.accounts import Role
from dashboards.api.service import ApiServer
from ingest.storage.memory import MemoryStorage
from ops.servers import free_port
from tests.apitools import build

pytestmark = pytest.mark.integration


async def test_the_server_stops_within_five_seconds_with_an_event_stream_open(
    tmp_path: Path,
) -> None:
    harness = build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path, live=True)
    port = free_port()
    config = uvicorn.Config(
        harness.app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=30
    )
    server = ApiServer(config)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        assert not serving.done(), serving
        await asyncio.sleep(0.05)
    headers = {"Authorization": f"Bearer {harness.keys[Role.VIEWER]}"}
    async with (
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as client,
        client.stream("GET", "/api/v1/events", timeout=60) as response,
    ):
        assert response.status_code == 200
        lines = response.aiter_lines()
        assert await anext(lines) == ": connected"
        assert harness.ctx.hub is not None
        assert harness.ctx.hub.clients == 1

        stopping = time.monotonic()
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        stopped_s = time.monotonic() - stopping
        # The stream ended cleanly (the client reads its end, not a reset connection).
        rest = [line async for line in lines]
    assert stopped_s < 5, f"the server took {stopped_s:.1f} s to stop"
    assert ": keepalive" not in rest
    assert harness.ctx.hub.clients == 0
    print(f"stopped {stopped_s:.2f} s after the shutdown began, with one stream open")

"""Schemathesis over the whole API, authenticated, on a real InfluxDB: no server error.

The component tier fuzzes the API on in-memory storage; only a real InfluxDB parses the InfluxQL
that query values reach (``/rejections?station=a%0Ab`` was a 500 here and nowhere else). Every
operation as an admin (every real answer) and as a viewer, examples bounded to stay under two
minutes on a shared machine.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from dashboards.api.accounts import Role
from devices import Reading, Reason, Rejection
from ingest.batch import Batch, StoredRejection
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage, registry_tags
from ops.servers import InfluxServer
from tests.apifuzz import examples, fuzz
from tests.apitools import NOW_NS, NS, ApiHarness, build, incident, registry

pytestmark = pytest.mark.integration


@pytest.fixture
def harness(tmp_path: Path, influx_session: InfluxServer, database: str) -> ApiHarness:
    settings = InfluxSettings(url=influx_session.url, database=database)
    tags = registry_tags(registry())

    async def seed() -> None:
        async with InfluxStorage(settings, tags) as storage:
            await storage.prepare()
            batch = Batch(
                readings=[
                    Reading("tb-menggala", NOW_NS - i * 600 * NS, {"water_level_cm": 300.0 + i})
                    for i in range(30)
                ],
                rejections=[
                    StoredRejection(
                        Rejection(Reason.OUT_OF_RANGE, "too high", "tb-menggala"),
                        "siaga/tb-menggala/telemetry",
                        "{}",
                        NOW_NS - 60 * NS,
                    )
                ],
            )
            await storage.write(batch)

    asyncio.run(seed())
    # A fresh client for the app: its connections belong to the test client's event loop.
    api = build(f"sqlite:///{tmp_path}/siaga.db", InfluxStorage(settings, tags), tmp_path)
    api.incidents.put(incident(1))
    return api


@pytest.mark.parametrize("role", [Role.ADMIN, Role.VIEWER], ids=["admin", "viewer"])
def test_no_server_error_on_any_operation(harness: ApiHarness, role: Role) -> None:
    started = time.monotonic()
    assert fuzz(harness, role, examples(15), close=harness.ctx.storage.aclose) > 20
    assert time.monotonic() - started < 120

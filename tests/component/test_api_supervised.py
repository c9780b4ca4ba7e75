"""The API's background tasks run supervised in its lifespan: one that raises is restarted,
counted in ``/healthz``, and the API keeps serving."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from alerts.incidents.memory import MemoryIncidentStore
from alerts.notify.memory import MemoryNotifyStore
from dashboards.api import create_app
from dashboards.api.accounts import Accounts
from dashboards.api.app import sql_engine
from dashboards.api.context import ApiContext
from devices import Reading
from ingest.batch import Batch
from ingest.settings import HealthSettings
from ingest.storage.base import LatestReading
from ingest.storage.memory import MemoryStorage
from tests.apitools import FAST_HASHER, NOW_NS, NS, Clock, registry, settings
from tests.helpers import eventually


class BuggyStorage(MemoryStorage):
    """Memory storage whose ``latest`` raises a bug (not a storage error) when armed."""

    def __init__(self) -> None:
        super().__init__()
        self.bugs = 0

    async def latest(self, station_ids: Sequence[str] | None = None) -> dict[str, LatestReading]:
        if self.bugs:
            self.bugs -= 1
            raise RuntimeError("a bug in reading the latest values")
        return await super().latest(station_ids)


def _app(tmp_path: Path, storage: MemoryStorage, clock: Clock) -> FastAPI:
    url = f"sqlite:///{tmp_path}/siaga.db"
    accounts = Accounts(sql_engine(url), hasher=FAST_HASHER)
    accounts.create_tables()
    fast_restarts = settings(url, tmp_path, live_poll_s=0.02).model_copy(
        update={"health": HealthSettings(restart_initial_s=0.01, restart_max_s=0.02)}
    )
    return create_app(
        fast_restarts,
        storage=storage,
        registry=registry(),
        incidents_store=MemoryIncidentStore(),
        notify=MemoryNotifyStore(),
        accounts=accounts,
        clock_ns=clock,
        live=True,
    )


@asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[ApiContext]:
    async with app.router.lifespan_context(app):
        ctx: ApiContext = app.state.siaga
        yield ctx


async def _reading(storage: MemoryStorage, ts_ns: int, value: float) -> None:
    await storage.write(Batch([Reading("tb-menggala", ts_ns, {"water_level_cm": value})]))


@pytest.mark.logged_exceptions
async def test_a_live_poller_that_raises_is_restarted_counted_and_streams_again(
    tmp_path: Path,
) -> None:
    storage = BuggyStorage()
    app = _app(tmp_path, storage, Clock())
    async with _running(app) as ctx:
        hub = ctx.hub
        assert hub is not None
        storage.bugs = 1
        subscription = hub.subscribe()
        await eventually(lambda: ctx.loop_restarts["live-poll"] == 1 and hub.polls >= 1)
        await _reading(storage, NOW_NS, 250.0)
        async with asyncio.timeout(10):
            event = await subscription.queue.get()
        assert event.kind == "reading"
        assert '"value_cm":250.0' in event.data
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            health = (await client.get("/healthz")).json()
        assert health["loop_restarts"] == {"live-poll": 1}


@pytest.mark.logged_exceptions
async def test_a_fleet_refresh_that_raises_is_restarted_counted_and_refreshes(
    tmp_path: Path,
) -> None:
    storage = BuggyStorage()
    clock = Clock()
    app = _app(tmp_path, storage, clock)
    await _reading(storage, NOW_NS - 60 * NS, 300.0)
    async with _running(app) as ctx:
        first = await ctx.fleet()
        await _reading(storage, NOW_NS - 30 * NS, 310.0)
        clock.now_ns += 2 * NS  # older than overview_max_age_s: refreshed behind
        storage.bugs = 1
        assert await ctx.fleet() is first
        refreshing = ctx._refreshing
        assert refreshing is not None
        await asyncio.wait_for(refreshing, 10)
        assert ctx.loop_restarts["fleet-refresh"] == 1
        assert (await ctx.fleet()).latest["tb-menggala"].values["water_level_cm"] == 310.0

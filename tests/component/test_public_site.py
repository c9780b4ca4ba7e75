"""The residents' site on in-memory stores: what is published, caching headers, gzip, 304,
the page budget, and pages that go on (marked stale) when the stores fail."""

from __future__ import annotations

import asyncio
import gzip
from pathlib import Path
from typing import Any

import httpx
import pytest

from alerts.incidents.memory import MemoryIncidentStore
from dashboards.public.site import PublicSite
from devices.readings import Reading
from devices.stations import StationRegistry
from ingest.batch import Batch
from ingest.errors import StorageError
from ingest.retry import RetryPolicy
from ingest.storage.memory import MemoryStorage
from tests.alerting import HOUR_NS, MINUTE_NS, T0, registry, station
from tests.helpers import eventually

NOW = T0 + 10 * HOUR_NS
REGISTRY = registry(
    station("tb-menggala", regency="Tulang Bawang", river="Way Tulang Bawang", interval_s=900),
    station("jakarta", regency="Jakarta Selatan"),
)
CONFIG = """
regencies:
  - {slug: tulang-bawang, regency: Tulang Bawang, public: true, title: Kabupaten Tulang Bawang}
  - {slug: jakarta-selatan, regency: Jakarta Selatan, public: false, title: Jakarta Selatan}
"""


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


class FailingStorage(MemoryStorage):
    failing = False

    async def latest(self, station_ids: object = None) -> dict:  # type: ignore[override,type-arg]
        if self.failing:
            raise StorageError("InfluxDB is down")
        return await super().latest()


@pytest.fixture
async def site(tmp_path: Path) -> PublicSite:
    config = tmp_path / "public.yaml"
    config.write_text(CONFIG)
    storage = FailingStorage()
    batch = Batch()
    for minutes, value in ((-50, 280), (-10, 310)):
        batch.readings.append(
            Reading("tb-menggala", NOW + minutes * MINUTE_NS, {"water_level_cm": value})
        )
        batch.readings.append(Reading("jakarta", NOW + minutes * MINUTE_NS, {"water_level_cm": 9}))
    await storage.write(batch)
    made = PublicSite(
        config,
        lambda: REGISTRY,
        storage,
        MemoryIncidentStore(),
        cap_url="https://siaga.example.go.id/api/v1/cap.atom",
        clock=Clock(),
    )
    await made.refresh()
    return made


def client(site: PublicSite) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=site), base_url="http://public")


async def test_only_public_regencies_are_served_with_cache_headers_and_gzip(
    site: PublicSite,
) -> None:
    async with client(site) as http:
        page = await http.get("/tulang-bawang/", headers={"Accept-Encoding": "gzip"})
        hidden = await http.get("/jakarta-selatan/")
        index = await http.get("/")
        moved = await http.get("/tulang-bawang")
        post = await http.post("/tulang-bawang/")
    assert page.status_code == 200
    assert page.headers["content-encoding"] == "gzip"
    assert page.headers["cache-control"] == "public, max-age=30, stale-while-revalidate=600"
    assert "script-src 'sha256-" in page.headers["content-security-policy"]
    text = page.text
    assert "Awas" in text
    assert "Kabupaten Tulang Bawang" in text
    assert "https://siaga.example.go.id/api/v1/cap.atom" in text
    assert "Jakarta" not in text
    assert hidden.status_code == 404
    assert "jakarta" not in index.text.lower()
    assert (moved.status_code, moved.headers["location"]) == (308, "/tulang-bawang/")
    assert post.status_code == 405


async def test_a_revalidation_costs_a_304_and_the_page_fits_the_budget(site: PublicSite) -> None:
    async with client(site) as http:
        first = await http.get("/tulang-bawang/", headers={"Accept-Encoding": "gzip"})
        again = await http.get("/tulang-bawang/", headers={"If-None-Match": first.headers["etag"]})
        state = (await http.get("/tulang-bawang/state.json")).json()
        manifest = (await http.get("/tulang-bawang/manifest.webmanifest")).json()
        worker = await http.get("/tulang-bawang/sw.js")
        icon = await http.get("/icon-192.png")
    assert again.status_code == 304
    assert again.content == b""
    body = site.built.bodies["/tulang-bawang/"]
    assert len(body.gzipped) < 100_000
    assert len(body.raw) < 100_000
    assert gzip.decompress(body.gzipped) == body.raw
    assert state["rivers"][0]["word"] == "Awas"
    assert state["rivers"][0]["stale"] is False
    assert manifest["start_url"] == "/tulang-bawang/"
    assert {i["sizes"] for i in manifest["icons"]} == {"192x192", "512x512"}
    assert worker.headers["cache-control"] == "no-cache"
    assert "caches.open" in worker.text
    assert icon.content.startswith(b"\x89PNG")


async def test_pages_go_on_from_the_last_data_and_turn_stale_when_the_stores_fail(
    site: PublicSite,
) -> None:
    storage = site._readings
    assert isinstance(storage, FailingStorage)
    storage.failing = True
    clock = site._clock
    assert isinstance(clock, Clock)
    clock.now = NOW + 5 * MINUTE_NS
    await site.refresh()
    async with client(site) as http:
        state = (await http.get("/tulang-bawang/state.json")).json()
    assert state["rivers"][0]["word"] == "Awas"
    assert site.counts["read_failed"] == 1
    clock.now = NOW + 2 * HOUR_NS
    await site.refresh()
    async with client(site) as http:
        page = await http.get("/tulang-bawang/")
        state = (await http.get("/tulang-bawang/state.json")).json()
    assert state["rivers"][0]["stale"] is True
    assert state["rivers"][0]["word"] == "Tidak diketahui"
    assert "DATA LAMA" in page.text


@pytest.mark.logged_exceptions
async def test_a_rebuild_that_raises_is_restarted_counted_and_the_pages_go_on(
    tmp_path: Path,
) -> None:
    config = tmp_path / "public.yaml"
    config.write_text(CONFIG)
    calls: list[int] = []

    def buggy_registry() -> StationRegistry:
        calls.append(len(calls))
        if len(calls) == 2:  # the first rebuild of the loop, after the one at start-up
            raise RuntimeError("a bug in reading the registry")
        return REGISTRY

    site = PublicSite(
        config,
        buggy_registry,
        FailingStorage(),
        MemoryIncidentStore(),
        refresh_s=0.01,
        clock=Clock(),
        restart=RetryPolicy(initial_s=0.01, max_s=0.02, deadline_s=None),
    )
    messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await messages.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(site({"type": "lifespan"}, messages.get, send))
    await eventually(lambda: site.counts["refresh_restarts"] == 1 and site.counts["refreshed"] >= 3)
    async with client(site) as http:
        assert (await http.get("/tulang-bawang/")).status_code == 200
    await messages.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(lifespan, 5)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

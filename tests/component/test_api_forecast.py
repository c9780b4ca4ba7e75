"""``/api/v1/stations/{id}/forecast``: the current model run on the stored history of its inputs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from alerts.forecasting import fit_models
from dashboards.api.accounts import Role
from dashboards.api.forecasts import ModelCache
from devices.readings import Reading
from devices.scopes import Scope
from forecast import store
from forecast.models import ModelSpec
from ingest.batch import Batch
from ingest.storage.memory import MemoryStorage
from tests.apitools import NOW_NS, ApiHarness, build, registry
from tests.forecasting import HISTORY_CRESTS, waves

NAMES = {"hulu": "tl-muara-uya", "hilir": "tl-tanjung"}
H = 3600 * 10**9


def _river() -> list[Reading]:
    """The synthetic river on Sungai Tabalong's two gauges, ending just before NOW_NS."""
    readings = waves(20 * 24, HISTORY_CRESTS[:20], seed=6)
    shift = NOW_NS - 10 * 60 * 10**9 - readings[-1].ts_ns
    return [Reading(NAMES[r.station_id], r.ts_ns + shift, r.values) for r in readings]


@pytest.fixture
def harness(tmp_path: Path) -> ApiHarness:
    return build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)


async def _fitted(harness: ApiHarness, tmp_path: Path, back_ns: int = 0) -> None:
    """Models fitted on the synthetic river, and its readings stored (``back_ns`` earlier)."""
    readings = [Reading(r.station_id, r.ts_ns - back_ns, r.values) for r in _river()]
    models = fit_models(readings, registry(), ModelSpec(horizon_h=12))
    store.save(tmp_path / "models", models.values())
    harness.ctx.models = ModelCache(tmp_path / "models")
    batch = Batch()
    batch.readings.extend(readings)
    await harness.ctx.storage.write(batch)


async def test_the_forecast_is_served_with_its_interval_and_skill(
    harness: ApiHarness, tmp_path: Path
) -> None:
    await _fitted(harness, tmp_path)
    async with harness.client(Role.VIEWER) as client:
        response = await client.get("/api/v1/stations/tl-tanjung/forecast")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "arx"
    assert body["model_version"] == 1
    assert [p["lead_h"] for p in body["points"]] == list(range(1, 13))
    assert all(p["low_cm"] <= p["value_cm"] <= p["high_cm"] for p in body["points"])
    assert body["issued_at"].startswith("2026-05-28T20:16:40")
    assert len(body["skill"]) == 12
    assert body["skill"][2]["skill"] > 0.5
    assert body["coverage"] == 0.8


async def test_a_station_without_a_model_says_how_to_get_one(
    harness: ApiHarness, tmp_path: Path
) -> None:
    harness.ctx.models = ModelCache(tmp_path / "none")
    async with harness.client(Role.VIEWER) as client:
        response = await client.get("/api/v1/stations/tl-tanjung/forecast")
    async with harness.client() as nobody:
        anonymous = await nobody.get("/api/v1/stations/tl-tanjung/forecast")
    assert response.status_code == 404
    assert "siaga forecast fit" in response.json()["detail"]
    assert "Pos Duga Air Tanjung" in response.json()["detail"]
    assert anonymous.status_code == 401


async def test_outside_the_callers_scope_the_forecast_is_not_found(
    harness: ApiHarness, tmp_path: Path
) -> None:
    await _fitted(harness, tmp_path)
    accounts = harness.ctx.accounts
    _, inside = accounts.add_key("tabalong", Role.VIEWER, "test", NOW_NS, Scope.of(["Tabalong"]))
    _, outside = accounts.add_key("jember", Role.VIEWER, "test", NOW_NS, Scope.of(["Jember"]))
    answers = {}
    for name, key in (("inside", inside), ("outside", outside)):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=harness.app),
            base_url="http://test",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            answers[name] = await client.get("/api/v1/stations/tl-tanjung/forecast")
    assert answers["inside"].status_code == 200, answers["inside"].text
    # The same answer as for a station that does not exist: not even its name.
    assert answers["outside"].status_code == 404
    assert "Tanjung" not in answers["outside"].json()["detail"].replace("tl-tanjung", "")


async def test_a_station_whose_data_stopped_days_ago_is_forecast_from_its_newest_reading(
    harness: ApiHarness, tmp_path: Path
) -> None:
    # As its chart ends at its newest reading: a replay or back-dated data still shows a band.
    await _fitted(harness, tmp_path, back_ns=3 * 24 * H)
    async with harness.client(Role.VIEWER) as client:
        response = await client.get("/api/v1/stations/tl-tanjung/forecast")
    assert response.status_code == 200, response.text
    assert response.json()["issued_at"].startswith("2026-05-25T20:16:40")

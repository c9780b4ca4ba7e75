"""The station page draws the forecast beyond "now" as a band, with the model's skill, in a real
browser (Debian's chromium, headless, driven by Playwright)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from alerts.forecasting import fit_models
from alerts.incidents.memory import MemoryIncidentStore
from alerts.model import AlertEvent, EventKind, Incident, IncidentState, Transition
from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import create_app, sql_engine
from dashboards.settings import Settings
from devices.levels import Level
from devices.readings import Reading
from devices.stations import load_stations
from forecast import store
from forecast.models import ModelSpec
from ingest.batch import Batch
from ingest.storage.memory import MemoryStorage
from tests.conftest import STATIONS_FILE
from tests.forecasting import HISTORY_CRESTS, waves
from tests.integration.test_web_browser import (
    OPERATOR,
    WebServer,
    chromium_page,
    screenshot,
    serving,
    sign_in,
    until,
)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.integration

NAMES = {"hulu": "tl-muara-uya", "hilir": "tl-tanjung"}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[WebServer]:
    history = waves(20 * 24, HISTORY_CRESTS[:20], seed=6)
    shift = time.time_ns() - 5 * 60 * 10**9 - history[-1].ts_ns
    readings = [Reading(NAMES[r.station_id], r.ts_ns + shift, r.values) for r in history]
    registry = load_stations(STATIONS_FILE)
    models = fit_models(readings, registry, ModelSpec(horizon_h=12))
    store.save(tmp_path / "models", models.values())
    storage = MemoryStorage()
    batch = Batch()
    batch.readings.extend(readings)
    asyncio.run(storage.write(batch))
    settings = Settings.model_validate(
        {
            "stations": {"file": str(STATIONS_FILE)},
            "database": {"url": f"sqlite:///{tmp_path / 'siaga.db'}"},
            "api": {"secret_key": "k" * 48, "live_poll_s": 0.1},
            "forecast": {"models_dir": str(tmp_path / "models")},
        }
    )
    accounts = Accounts(sql_engine(settings.database.url))
    accounts.create_tables()
    accounts.add_user(OPERATOR[0], Role.OPERATOR, OPERATOR[1], time.time_ns())
    incidents = MemoryIncidentStore()
    app = create_app(settings, storage=storage, incidents_store=incidents, accounts=accounts)
    with serving(app, incidents) as served:
        yield served


@pytest.fixture
def page(web: WebServer) -> Iterator[Any]:
    with chromium_page(360, 780) as opened:
        yield opened


def test_the_station_page_draws_the_forecast_band_and_its_skill(page: Any, web: WebServer) -> None:
    sign_in(page, web, "/stations/tl-tanjung")
    until(page, "document.getElementById('forecast-note').hidden === false")
    note = page.locator("#forecast-note").inner_text()
    assert "Prakiraan 12 jam" in note
    assert "keandalan dibanding persistensi" in note
    until(page, "window.SiagaCharts?.water?.series.some((s) => s.label === 'Prakiraan')")
    # The band (between the interval's bounds) and the chart reaching 12 h beyond now.
    assert page.evaluate("window.SiagaCharts.water.bands.length") == 1
    now_s = time.time()
    end_s = page.evaluate("window.SiagaCharts.water.scales.x.max")
    assert end_s > now_s + 11 * 3600
    screenshot(page, "station-forecast-360px")


def test_a_forecast_incident_is_a_reason_on_its_card_with_its_time(
    page: Any, web: WebServer
) -> None:
    now_ns = time.time_ns()
    expected_ns = now_ns + 5 * 3600 * 10**9
    event = AlertEvent(
        at_ns=now_ns,
        subject="tl-tanjung",
        kind=EventKind.FORECAST,
        rule="forecast",
        firing=True,
        severity=Level.SIAGA,
        previous=Level.WASPADA,
        value=410.0,
        expected_at_ns=expected_ns,
    )
    web.incidents.put(
        Incident(
            id=21,
            subject="tl-tanjung",
            rule="forecast",
            kind=EventKind.FORECAST,
            state=IncidentState.FIRING,
            severity=Level.SIAGA,
            opened_ns=now_ns,
            updated_ns=now_ns,
            labels={"station": "tl-tanjung", "regency": "Tabalong", "kind": "forecast"},
            last_event=event,
            transitions=(Transition("tl-tanjung", "forecast", None, IncidentState.FIRING, event),),
        )
    )
    sign_in(page, web, "/")
    reason = page.locator("#active-incidents #station-card-tl-tanjung li[data-kind='forecast']")
    reason.wait_for(state="attached", timeout=10_000)
    text = reason.text_content() or ""
    assert "Prakiraan: Siaga" in text
    # The expected time in the station's zone (WITA, UTC+8), as the card writes times.
    at = datetime.fromtimestamp(expected_ns / 1e9, tz=timezone(timedelta(hours=8)))
    assert f"diperkirakan tercapai {at.day} " in text, text
    assert f"{at:%H.%M} WITA" in text, text  # id-ID writes 14.30

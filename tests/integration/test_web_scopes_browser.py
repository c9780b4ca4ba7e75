"""A regency operator in a real browser (Debian's chromium, headless, Playwright): the overview's
map, list, active incidents and live updates show their regency only.

The API and pages run under uvicorn on the in-memory time-series store, with readings of every
station of the seed registry; the live updates are the real poller and event stream.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from alerts.incidents.memory import MemoryIncidentStore
from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import create_app, sql_engine
from dashboards.api.service import ApiServer
from dashboards.settings import Settings
from devices import Reading
from devices.scopes import Scope
from devices.stations import load_stations
from ingest.batch import Batch
from ingest.storage.memory import MemoryStorage
from ops.servers import free_port
from tests.apitools import incident
from tests.conftest import STATIONS_FILE
from tests.helpers import wait_for
from tests.integration.test_web_browser import (
    chromium_page,
    screenshot,
    until,
)

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.integration

OPERATOR = ("jember-op", "jember-password-1")
ADMIN = ("jember-admin", "jember-password-2")
MINUTE_NS = 60 * 1_000_000_000


@dataclass
class ScopedWeb:
    url: str
    storage: MemoryStorage
    incidents: MemoryIncidentStore
    loop: asyncio.AbstractEventLoop

    def write(self, readings: list[Reading]) -> None:
        """Store readings on the server's own loop (the poller reads the store there)."""
        asyncio.run_coroutine_threadsafe(self.storage.write(Batch(readings)), self.loop).result(10)


def _level(station_id: str, ts_ns: int, value: float) -> Reading:
    return Reading(station_id, ts_ns, {"water_level_cm": value})


@pytest.fixture
def web(tmp_path: Path) -> Iterator[ScopedWeb]:
    settings = Settings.model_validate(
        {
            "stations": {"file": str(STATIONS_FILE)},
            "database": {"url": f"sqlite:///{tmp_path / 'siaga.db'}"},
            "api": {"secret_key": "k" * 48, "live_poll_s": 0.1, "overview_max_age_s": 0},
        }
    )
    accounts = Accounts(sql_engine(settings.database.url))
    accounts.create_tables()
    accounts.add_user(OPERATOR[0], Role.OPERATOR, OPERATOR[1], time.time_ns(), Scope.of(["Jember"]))
    accounts.add_user(ADMIN[0], Role.ADMIN, ADMIN[1], time.time_ns(), Scope.of(["Jember"]))
    registry = load_stations(STATIONS_FILE)
    now_ns = time.time_ns()
    storage = MemoryStorage()
    readings = []
    for station in registry.stations():
        metric, spec = next(iter(station.metrics.items()))
        readings.append(Reading(station.id, now_ns - 5 * MINUTE_NS, {metric: spec.min + 100}))
    incidents = MemoryIncidentStore()
    incidents.put(incident(1, "jr-bedadung-kota", regency="Jember", updated_ns=now_ns))
    incidents.put(incident(2, "rb-lasem", regency="Rembang", updated_ns=now_ns))
    incidents.put(incident(3, "tb-menggala", regency="Tulang Bawang", updated_ns=now_ns))
    app = create_app(
        settings, storage=storage, registry=registry, incidents_store=incidents, accounts=accounts
    )
    port = free_port()
    # ApiServer ends the page's event stream at shutdown (plain uvicorn would wait for it).
    server = ApiServer(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                       timeout_graceful_shutdown=2)
    )  # fmt: skip
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(server.serve(),), name="web-scopes", daemon=True
    )
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn started")
    scoped = ScopedWeb(f"http://127.0.0.1:{port}", storage, incidents, loop)
    scoped.write(readings)
    try:
        yield scoped
    finally:
        server.should_exit = True
        thread.join(15)
        loop.close()


@pytest.fixture
def page() -> Iterator[Any]:
    with chromium_page() as opened:
        yield opened


def _shown(page: Any, selector: str, attribute: str) -> set[str]:
    found: list[str] = page.eval_on_selector_all(
        selector, f"(nodes) => nodes.map((n) => n.getAttribute('{attribute}'))"
    )
    return set(found)


def test_a_regency_operator_sees_only_their_regency(page: Any, web: ScopedWeb) -> None:
    registry = load_stations(STATIONS_FILE)
    jember = {s.id for s in registry.stations() if s.regency == "Jember"}
    page.goto(f"{web.url}/")
    page.wait_for_url("**/login?next=*")
    page.fill("input[name=username]", OPERATOR[0])
    page.fill("input[name=password]", OPERATOR[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{web.url}/")

    # The list, the map and the active incidents: Jember's alone.
    page.locator("#station-rows tr[data-station='jr-bedadung-kota']").wait_for()
    until(page, f"document.querySelectorAll('path.station-marker').length === {len(jember)}")
    assert _shown(page, "#station-rows tr", "data-station") == jember
    assert _shown(page, "path.station-marker", "data-station") == jember
    # One card per station; its incidents are folded inside it (attached, not shown).
    page.locator("#active-incidents li[data-incident='1']").wait_for(state="attached")
    assert _shown(page, "#active-incidents li[data-incident]", "data-incident") == {"1"}
    assert _shown(page, "#active-incidents .station-card", "data-station") == {"jr-bedadung-kota"}
    assert page.locator("#station-count").inner_text() == f"({len(jember)})"
    assert "Jember" in page.locator("#who").inner_text()
    until(page, "document.getElementById('live').dataset.state === 'on'")
    screenshot(page, "overview-regency-jember")

    # Live: Rembang's and Tulang Bawang's new readings and incidents never arrive; Jember's do.
    page.evaluate("window.__sameDocument = true")
    now_ns = time.time_ns()
    web.incidents.put(incident(4, "rb-pamotan-rain", regency="Rembang", updated_ns=now_ns))
    web.incidents.put(incident(5, "jr-arjasa-rain", regency="Jember", updated_ns=now_ns))
    web.write([_level("rb-lasem", now_ns, 333.0), _level("tb-menggala", now_ns, 444.0)])
    web.write([_level("jr-bedadung-kota", now_ns + 1, 222.0)])
    value = page.locator("tr[data-station='jr-bedadung-kota'] td[data-field=value]")
    sync_api.expect(value).to_have_text("222", timeout=5000)
    page.locator("#active-incidents li[data-incident='5']").wait_for(state="attached", timeout=5000)
    assert page.evaluate("window.__sameDocument") is True
    assert _shown(page, "#station-rows tr", "data-station") == jember
    assert _shown(page, "path.station-marker", "data-station") == jember
    assert _shown(page, "#active-incidents li[data-incident]", "data-incident") == {"1", "5"}
    text = page.locator("body").inner_text()
    assert "Lasem" not in text
    assert "Menggala" not in text
    screenshot(page, "overview-regency-jember-live")

    # The incidents page: Jember's alone, with their forms.
    page.click("nav a[href='/incidents']")
    page.wait_for_url(f"{web.url}/incidents")
    page.locator("#incident-5").wait_for(state="attached")
    assert _shown(page, "#incident-list li[data-incident]", "id") == {"incident-1", "incident-5"}

    # A station of another regency is not there at all.
    page.goto(f"{web.url}/stations/rb-lasem")
    until(page, "document.body.innerText.includes('Pos tidak ditemukan')")


POLICY = """{
  "recipients": [{"name": "piket", "channels": [{"name": "mail", "url": "mailto://piket@jember.go.id"}]}],
  "groups": [{"name": "piket", "members": ["piket"]}],
  "default_groups": ["piket"]
}"""


def test_a_regency_admin_edits_its_policy_and_reads_the_audit_log(
    page: Any, web: ScopedWeb
) -> None:
    page.goto(f"{web.url}/policy")
    page.wait_for_url("**/login?next=*")
    page.fill("input[name=username]", ADMIN[0])
    page.fill("input[name=password]", ADMIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{web.url}/policy")
    until(page, "document.getElementById('policy-regency').value === 'Jember'")
    until(page, "document.getElementById('policy-version').textContent.includes('berkas')")
    # A broken edit is refused with its reason; the policy in force stays.
    page.fill("#policy-document", POLICY.replace('["piket"]}', '["tim-sar"]}', 1))
    page.click("#policy-form button[type=submit]")
    until(page, "document.getElementById('policy-error').textContent.includes('tim-sar')")
    page.fill("#policy-document", POLICY)
    page.click("#policy-form button[type=submit]")
    until(page, "document.getElementById('policy-version').textContent.includes('Versi 1')")
    assert page.locator("#policy-error").is_hidden()
    screenshot(page, "policy-jember")
    # Another regency's policy is not there for this admin.
    page.fill("#policy-regency", "Rembang")
    page.click("#policy-load")
    until(page, "document.getElementById('policy-error').textContent.includes('wilayah')")
    # The audit log has the change, with who and from where.
    page.click("#nav-audit")
    page.wait_for_url(f"{web.url}/audit")
    entry = page.locator("#audit-list li[data-action='policy.update']")
    entry.wait_for()
    assert "jember-admin" in entry.inner_text()
    assert "127.0.0.1" in entry.inner_text()
    screenshot(page, "audit-jember")

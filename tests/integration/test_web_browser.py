"""The web UI in a real browser (Debian's chromium, headless, driven by Playwright).

Readings go the whole way: MQTT (mosquitto) → ``siaga ingest`` → InfluxDB → the API under
uvicorn → Server-Sent Events → the page. Screenshots of every page are kept under
``tests/artifacts/web/`` (ignored by git) for people to look at.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from alerts.model import AlertEvent, EventKind, Incident, IncidentState
from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import create_app, sql_engine
from dashboards.settings import Settings
from devices.levels import Level
from devices.registry import load_registry
from ops.servers import InfluxServer, MosquittoServer, free_port
from tests.conftest import REPO_ROOT, STATIONS_FILE
from tests.fake_incidents import MemoryIncidents
from tests.helpers import wait_for
from tests.integration.drivers import WorkerProcess, paho_publish

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "web"
OPERATOR = ("sari", "operator-password-1")
VIEWER = ("wati", "viewer-password-1")
MINUTE_NS = 60 * 1_000_000_000


@dataclass
class WebServer:
    """The API and UI under uvicorn in a thread, with an operator account and one incident."""

    url: str
    incidents: MemoryIncidents
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture
def web(
    tmp_path: Path, worker: WorkerProcess, influx_session: InfluxServer, database: str
) -> Iterator[WebServer]:
    settings = Settings.model_validate(
        {
            "influx": {"url": influx_session.url, "database": database},
            "stations": {"file": str(STATIONS_FILE)},
            "database": {"url": f"sqlite:///{tmp_path / 'siaga.db'}"},
            "api": {"secret_key": "k" * 48, "live_poll_s": 0.1},
        }
    )
    accounts = Accounts(sql_engine(settings.database.url))
    accounts.create_tables()
    accounts.add_user(OPERATOR[0], Role.OPERATOR, OPERATOR[1], time.time_ns())
    accounts.add_user(VIEWER[0], Role.VIEWER, VIEWER[1], time.time_ns())
    now_ns = time.time_ns()
    incidents = MemoryIncidents()
    incidents.put(
        Incident(
            id=7,
            subject="ciliwung-depok",
            rule="level",
            kind=EventKind.LEVEL,
            state=IncidentState.FIRING,
            severity=Level.SIAGA,
            opened_ns=now_ns - 40 * MINUTE_NS,
            updated_ns=now_ns - 40 * MINUTE_NS,
            labels={"station": "ciliwung-depok", "regency": "Kota Depok"},
            last_event=AlertEvent(
                at_ns=now_ns - 40 * MINUTE_NS,
                subject="ciliwung-depok",
                kind=EventKind.LEVEL,
                rule="level",
                firing=True,
                severity=Level.SIAGA,
                value=285.0,
                detail="Depok 285 cm: Siaga 2",
            ),
        )
    )
    incidents.put(
        Incident(
            id=8,
            subject="ciliwung-depok",
            rule="upstream:ciliwung-katulampa",
            kind=EventKind.UPSTREAM,
            state=IncidentState.FIRING,
            severity=Level.AWAS,
            opened_ns=now_ns - 20 * MINUTE_NS,
            updated_ns=now_ns - 20 * MINUTE_NS,
            labels={"station": "ciliwung-depok", "regency": "Kota Depok"},
            last_event=AlertEvent(
                at_ns=now_ns - 20 * MINUTE_NS,
                subject="ciliwung-depok",
                kind=EventKind.UPSTREAM,
                rule="upstream:ciliwung-katulampa",
                firing=True,
                severity=Level.AWAS,
                value=210.0,
                source="ciliwung-katulampa",
                expected_at_ns=now_ns + 160 * MINUTE_NS,
                detail="Katulampa 210 cm (Siaga 1): wave expected at Depok",
            ),
        )
    )
    app = create_app(settings, incidents_store=incidents, accounts=accounts)
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="web-test-uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn started")
    try:
        yield WebServer(f"http://127.0.0.1:{port}", incidents, server, thread)
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def page(web: WebServer) -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="id-ID")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield page
        finally:
            browser.close()
        assert not errors, f"JavaScript errors: {errors}"


def screenshot(page: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def publish(broker: MosquittoServer, prefix: str, readings: list[tuple[str, int, float]]) -> None:
    messages = [
        (
            f"{prefix}/{station}/telemetry",
            json.dumps(
                {
                    "ts": ts_ns // 1_000_000,
                    "water_level_cm": level,
                    "rain_mm": round(max(0.0, (level - 150) / 40), 1),
                    "battery_v": round(3.95 - 0.002 * (i % 50), 3),
                }
            ).encode(),
        )
        for i, (station, ts_ns, level) in enumerate(readings)
    ]
    paho_publish(broker.port, messages, client_id=f"web-test-{time.monotonic_ns()}")


def history(now_ns: int) -> list[tuple[str, int, float]]:
    """Six hours of a wave coming down the Ciliwung: Katulampa first, Depok three hours later."""
    readings = []
    for step in range(0, 6 * 60 + 1, 10):
        ts_ns = now_ns - (6 * 60 - step) * MINUTE_NS
        hours = step / 60
        katulampa = 60 + 150 * max(0.0, min(1.0, (hours - 1.5) / 1.5))
        depok = 150 + 140 * max(0.0, min(1.0, (hours - 4.0) / 1.5))
        readings += [
            ("ciliwung-katulampa", ts_ns, round(katulampa, 1)),
            ("ciliwung-depok", ts_ns, round(depok, 1)),
            ("tl-tanjung", ts_ns, 120.0 + step / 30),
        ]
    return readings


def hue(rgba: list[int]) -> str:
    """Name the colour of a band pixel (the canvas keeps the level colour and its alpha)."""
    red, green, blue, alpha = rgba
    if alpha == 0:
        return "transparent"
    if green > red and green > blue:
        return "green"
    ratio = green / max(red, 1)
    if ratio > 0.6 and blue < 0.3 * green:
        return "yellow"
    if ratio > 0.3 and blue < 0.3 * green:
        return "orange"
    return "red" if ratio <= 0.3 else f"unclear {rgba}"


def until(page: Any, expression: str, timeout_s: float = 20) -> None:
    """Poll a JavaScript expression (page.wait_for_function would need 'unsafe-eval' in the CSP)."""

    def holds() -> bool:
        try:
            return bool(page.evaluate(f"() => ({expression})"))
        except sync_api.Error:  # the page is navigating; ask again
            return False

    wait_for(holds, timeout_s, expression)


def sign_in(page: Any, web: WebServer, next_path: str) -> None:
    page.goto(f"{web.url}{next_path}")
    page.wait_for_url("**/login?next=*")
    page.fill("input[name=username]", OPERATOR[0])
    page.fill("input[name=password]", OPERATOR[1])
    screenshot(page, "login")
    page.click("button[type=submit]")
    page.wait_for_url(f"{web.url}{next_path}")


def test_an_operator_watches_a_wave_acknowledges_it_and_switches_language(
    page: Any, web: WebServer, worker: WorkerProcess, broker_session: MosquittoServer
) -> None:
    now_ns = time.time_ns()
    publish(broker_session, worker.topic_prefix, history(now_ns - 2 * MINUTE_NS))
    sign_in(page, web, "/")

    # Overview: the stations with data are listed, coloured, and the rivers drawn.
    depok_value = page.locator("tr[data-station='ciliwung-depok'] td[data-field=value]")
    depok_value.wait_for()
    wait_for(lambda: depok_value.inner_text() == "290", 20, "Depok's stored level listed")
    registry = load_registry(STATIONS_FILE)
    links = sum(
        1 for s in registry.stations() for link in s.downstream if registry.get(link.station)
    )
    assert page.locator("path.river").count() == links
    depok_marker = page.locator("path.station-marker[data-station='ciliwung-depok']")
    assert depok_marker.get_attribute("fill") == "#ef6c00"  # SIAGA
    until(page, "document.getElementById('live').dataset.state === 'on'")
    screenshot(page, "overview")

    # A new reading over MQTT appears within 2 s, without a reload.
    page.evaluate("window.__sameDocument = true")
    published = time.monotonic()
    publish(broker_session, worker.topic_prefix, [("ciliwung-depok", time.time_ns(), 312.0)])
    sync_api.expect(depok_value).to_have_text("312", timeout=2000)
    elapsed_s = time.monotonic() - published
    assert page.evaluate("window.__sameDocument") is True
    print(f"reading on screen {elapsed_s:.2f} s after publishing")
    screenshot(page, "overview-live")

    # The list sorts by level (the default), rise rate and staleness.
    first_row = page.locator("#station-rows tr").first
    assert first_row.get_attribute("data-station") == "ciliwung-katulampa"  # AWAS
    page.select_option("#sort", "trend")
    assert first_row.get_attribute("data-station") == "ciliwung-depok"  # rising fastest
    page.select_option("#sort", "stale")
    assert first_row.locator("td[data-field=value]").inner_text() == "\N{EN DASH}"  # no data
    page.select_option("#sort", "level")

    # A new incident appears among the active ones, again without a reload.
    web.incidents.put(
        Incident(
            id=9,
            subject="tl-tanjung",
            rule="rate:rise",
            kind=EventKind.RATE,
            state=IncidentState.FIRING,
            severity=Level.WASPADA,
            opened_ns=time.time_ns(),
            updated_ns=time.time_ns(),
            labels={"station": "tl-tanjung", "regency": "Tabalong"},
        )
    )
    page.locator("#active-incidents li[data-incident='9']").wait_for(timeout=5000)
    assert page.evaluate("window.__sameDocument") is True

    # Station page: the chart with its threshold bands, the upstream wave and its arrival.
    page.click("tr[data-station='ciliwung-depok'] a")
    page.wait_for_url("**/stations/ciliwung-depok")
    until(page, "window.SiagaCharts && window.SiagaCharts.water")
    until(page, "Number(document.getElementById('chart-water').dataset.points) > 30")
    band_colours = page.evaluate(
        """() => {
          const u = window.SiagaCharts.water;
          const thr = window.SiagaStation.thresholds;
          const ctx = u.ctx;
          const x = Math.round(u.bbox.left + 4);
          const y = (cm) => Math.round(u.valToPos(cm, 'y', true));
          const at = (cm) => Array.from(ctx.getImageData(x, y(cm), 1, 1).data);
          return {
            normal: at(thr.waspada_cm * 0.8), waspada: at((thr.waspada_cm + thr.siaga_cm) / 2),
            siaga: at((thr.siaga_cm + thr.awas_cm) / 2), awas: at(thr.awas_cm * 1.07),
          };
        }"""
    )
    hues = {band: hue(rgba) for band, rgba in band_colours.items()}
    assert hues == {"normal": "green", "waspada": "yellow", "siaga": "orange", "awas": "red"}
    wave = page.locator("#wave-list li[data-upstream='ciliwung-katulampa']")
    assert "WIB" in wave.inner_text()
    screenshot(page, "station-depok")

    # The station page follows its own readings live.
    publish(broker_session, worker.topic_prefix, [("ciliwung-depok", time.time_ns(), 318.0)])
    sync_api.expect(page.locator("#latest")).to_contain_text("318 cm", timeout=3000)

    # Zoom out to 90 days: hourly windows, still drawn.
    with page.expect_response(lambda r: "window=1h" in r.url and "water_level_cm" in r.url):
        page.click(".range button[data-range='90d']")
    until(page, "Number(document.getElementById('chart-water').dataset.points) > 3")
    assert "range=90d" in page.url

    # Tabalong keeps WITA.
    page.goto(f"{web.url}/stations/tl-tanjung")
    until(page, "document.getElementById('station-meta').textContent.includes('WITA')")
    until(page, "document.getElementById('latest-at').textContent.includes('WITA')")
    until(page, "Number(document.getElementById('chart-water').dataset.points) > 30")
    screenshot(page, "station-tabalong")

    # Incidents: acknowledge with a comment.
    page.goto(f"{web.url}/incidents")
    card = page.locator("#incident-7")
    card.locator("form.ack input[name=comment]").fill("Tim BPBD menuju lokasi")
    card.locator("form.ack button").click()
    page.locator("#incident-7 .acked").wait_for()
    assert "sari" in page.locator("#incident-7 .acked").inner_text()
    assert "Tim BPBD menuju lokasi" in page.locator("#incident-7 .acked").inner_text()
    stored = page.request.get(f"{web.url}/api/v1/incidents/7").json()
    assert stored["acknowledged"]["by"] == "sari"
    assert "Perkiraan tiba" in page.locator("#incident-8").inner_text()

    # Assign and silence.
    card.locator("form.assign input[name=assignee]").fill("budi")
    card.locator("form.assign button").click()
    page.locator("#incident-7 .assigned").wait_for()
    assert "budi" in page.locator("#incident-7 .assigned").inner_text()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/silences")) as silenced:
        page.locator("#incident-8 form.silence input[name=duration_min]").fill("90")
        page.locator("#incident-8 form.silence input[name=comment]").fill("tanggul diperiksa")
        page.locator("#incident-8 form.silence button").click()
    assert silenced.value.status == 201
    silences = page.request.get(f"{web.url}/api/v1/silences").json()["data"]
    assert [(s["matchers"], s["comment"]) for s in silences] == [
        (
            [
                {"name": "station", "value": "ciliwung-depok", "op": "="},
                {"name": "rule", "value": "upstream:ciliwung-katulampa", "op": "="},
            ],
            "tanggul diperiksa",
        )
    ]
    screenshot(page, "incidents-acknowledged")

    # Language: Indonesian by default, English on request, remembered by a cookie.
    assert page.locator("nav a[href='/incidents']").inner_text() == "Insiden"
    page.click("#lang-switch")
    until(page, "document.documentElement.lang === 'en'")
    assert page.locator("nav a[href='/incidents']").inner_text() == "Incidents"
    page.goto(f"{web.url}/")
    assert page.locator("nav a[href='/incidents']").inner_text() == "Incidents"
    page.locator("tr[data-station='ciliwung-depok']").wait_for()
    screenshot(page, "overview-english")

    # A viewer reads incidents but gets no forms.
    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto(f"{web.url}/incidents")
    page.wait_for_url("**/login?next=*")
    page.fill("input[name=username]", VIEWER[0])
    page.fill("input[name=password]", VIEWER[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{web.url}/incidents")
    page.locator("#incident-7").wait_for()
    assert page.locator("#incident-7 form").count() == 0

    # A phone.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{web.url}/stations/ciliwung-depok?lang=id")
    until(page, "Number(document.getElementById('chart-water').dataset.points) > 30")
    screenshot(page, "station-phone")
    page.goto(f"{web.url}/")
    page.locator("tr[data-station='ciliwung-depok']").wait_for()
    screenshot(page, "overview-phone")

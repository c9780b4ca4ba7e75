"""The web UI in a real browser (Debian's chromium, headless, driven by Playwright).

Readings go the whole way: MQTT (mosquitto) → ``siaga ingest`` → InfluxDB → the API under
uvicorn → Server-Sent Events → the page. Screenshots of every page are kept under
``tests/artifacts/web/`` (ignored by git) for people to look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from alerts.incidents.memory import MemoryIncidentStore
from alerts.model import AlertEvent, EventKind, Incident, IncidentState
from alerts.notify.acklink import signed_ack_links
from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import create_app, sql_engine
from dashboards.api.service import ApiServer
from dashboards.settings import Settings
from devices.health import StationHealth
from devices.levels import Level
from devices.registry import load_registry
from ingest.settings import InfluxSettings
from ingest.storage.influx import InfluxStorage, registry_tags
from ops.servers import InfluxServer, MosquittoServer, free_port
from tests.conftest import REPO_ROOT, STATIONS_FILE
from tests.helpers import wait_for
from tests.integration.browsers import chromium
from tests.integration.drivers import WorkerProcess, paho_publish

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.integration

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
HOUR_NS = 60 * MINUTE_NS
# The demo's flood is replayed with readings this far in the past.
BACK_DATED_NS = 3 * 24 * HOUR_NS
LINK_KEY = "k" * 48  # api.secret_key: signs acknowledgement links
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1366, "height": 768}


@dataclass
class WebServer:
    """The API and UI under uvicorn in a thread, with an operator account and one incident."""

    url: str
    incidents: MemoryIncidentStore
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture
def web(
    tmp_path: Path, worker: WorkerProcess, influx_session: InfluxServer, database: str
) -> Iterator[WebServer]:
    port = free_port()
    settings = Settings.model_validate(
        {
            "influx": {"url": influx_session.url, "database": database},
            "stations": {"file": str(STATIONS_FILE)},
            "database": {"url": f"sqlite:///{tmp_path / 'siaga.db'}"},
            "api": {
                "secret_key": LINK_KEY,
                "public_url": f"http://127.0.0.1:{port}",
                "live_poll_s": 0.1,
            },
        }
    )
    accounts = Accounts(sql_engine(settings.database.url))
    accounts.create_tables()
    accounts.add_user(OPERATOR[0], Role.OPERATOR, OPERATOR[1], time.time_ns())
    accounts.add_user(VIEWER[0], Role.VIEWER, VIEWER[1], time.time_ns())
    now_ns = time.time_ns()
    incidents = MemoryIncidentStore()
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
    # Menggala, as in the demo: a flood replayed with back-dated readings, two incidents active
    # whose last events are days old.
    for incident_id, kind, rule, level in [
        (10, EventKind.LEVEL, "level", Level.AWAS),
        (11, EventKind.UPSTREAM, "upstream:tb-banjar-agung", Level.SIAGA),
        (12, EventKind.NO_DATA, "no_data", Level.WASPADA),
    ]:
        station = "tb-banjar-agung" if kind is EventKind.NO_DATA else "tb-menggala"
        at_ns = now_ns - BACK_DATED_NS - 3 * HOUR_NS
        incidents.put(
            Incident(
                id=incident_id,
                subject=station,
                rule=rule,
                kind=kind,
                state=IncidentState.FIRING,
                severity=level,
                opened_ns=at_ns,
                updated_ns=at_ns,
                labels={"station": station, "regency": "Tulang Bawang"},
                last_event=AlertEvent(
                    at_ns=at_ns,
                    subject=station,
                    kind=kind,
                    rule=rule,
                    firing=True,
                    severity=level,
                    value=431.0 if kind is EventKind.LEVEL else 388.0,
                    source="tb-banjar-agung" if kind is EventKind.UPSTREAM else None,
                    expected_at_ns=at_ns + 8 * HOUR_NS if kind is EventKind.UPSTREAM else None,
                ),
            )
        )
    app = create_app(settings, incidents_store=incidents, accounts=accounts)
    with serving(app, incidents, port) as served:
        yield served


@contextlib.contextmanager
def serving(
    app: Any, incidents: MemoryIncidentStore, port: int | None = None
) -> Iterator[WebServer]:
    """``app`` under uvicorn in a thread on loopback, until the block ends (its event streams
    end at shutdown: ApiServer)."""
    port = free_port() if port is None else port
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    server = ApiServer(config)
    thread = threading.Thread(target=server.run, name="web-test-uvicorn", daemon=True)
    thread.start()
    wait_for(lambda: server.started, 30, "uvicorn started")
    try:
        yield WebServer(f"http://127.0.0.1:{port}", incidents, server, thread)
    finally:
        server.should_exit = True
        thread.join(15)


@contextlib.contextmanager
def chromium_page(width: int = 1366, height: int = 860) -> Iterator[Any]:
    """A page of Debian's headless chromium in Indonesian; any JavaScript error fails the test."""
    with chromium(ARTIFACTS, CHROMIUM_ARGS) as browser:
        context = browser.new_context(viewport={"width": width, "height": height}, locale="id-ID")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def page(web: WebServer) -> Iterator[Any]:
    with chromium_page() as opened:
        yield opened


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
    # The list read again at once (its shared snapshot may predate the reading): the live
    # reading stays, it does not go back to the older one.
    after_reload = page.evaluate(
        """() => window.SiagaOverview.reload().then(() =>
             document.querySelector("tr[data-station='ciliwung-depok'] td[data-field=value]")
               .textContent)"""
    )
    assert after_reload == "312"
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
    page.locator("#active-incidents .station-card[data-station='tl-tanjung']").wait_for(
        timeout=5000
    )
    assert page.evaluate("window.__sameDocument") is True
    # One card per station: Depok's level and upstream incidents are one card, worst first.
    depok_card = page.locator("#active-incidents #station-card-ciliwung-depok")
    assert depok_card.get_attribute("data-level") == "AWAS"
    assert depok_card.locator(".reasons li").count() == 2
    assert page.locator("#active-incidents .station-card").count() == 4

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

    # Incidents: one card per station, grouped by regency.
    page.goto(f"{web.url}/incidents")
    card = page.locator("#station-card-ciliwung-depok")
    card.wait_for()
    assert page.locator(".station-card").count() == 4  # Depok, Tanjung, Menggala, Banjar Agung
    upstream = card.locator(".reasons li[data-kind=upstream]").text_content() or ""
    assert name_of("ciliwung-katulampa") in upstream
    assert "perkiraan tiba" in upstream

    def stored(incident_id: int) -> dict[str, Any]:
        found: dict[str, Any] = page.request.get(f"{web.url}/api/v1/incidents/{incident_id}").json()
        return found

    # The menu: acknowledge with a comment (all of Depok's incidents at once).
    card.locator("details.menu > summary").click()
    card.locator("form.comment input[name=comment]").fill("Tim BPBD menuju lokasi")
    card.locator("form.comment button").click()
    wait_for(lambda: stored(8)["acknowledged"] is not None, 10, "Depok acknowledged")
    for incident_id in (7, 8):
        assert stored(incident_id)["acknowledged"]["by"] == "sari"
        assert stored(incident_id)["acknowledged"]["comment"] == "Tim BPBD menuju lokasi"
    page.locator("#station-card-ciliwung-depok .card-actions .acked").wait_for()

    # Assign and silence (a duration with its unit).
    card.locator("details.menu > summary").click()
    card.locator("form.assign input[name=assignee]").fill("budi")
    card.locator("form.assign button").click()
    wait_for(lambda: stored(7)["assignee"] == stored(8)["assignee"] == "budi", 10, "assigned")
    card.locator("details.menu > summary").click()
    duration = card.locator("form.silence select[name=duration_min]")
    assert duration.locator("option:checked").inner_text() == "1 jam"
    duration.select_option(label="2 jam")
    with page.expect_response(lambda r: r.url.endswith("/api/v1/silences")) as silenced:
        card.locator("form.silence input[name=why]").fill("tanggul diperiksa")
        card.locator("form.silence button").click()
    assert silenced.value.status == 201
    silences = page.request.get(f"{web.url}/api/v1/silences").json()["data"]
    assert [(s["matchers"], s["comment"]) for s in silences] == [
        ([{"name": "station", "value": "ciliwung-depok", "op": "="}], "tanggul diperiksa")
    ]
    starts, ends = (datetime.fromisoformat(silences[0][k]) for k in ("starts", "ends"))
    assert ends - starts == timedelta(hours=2)

    # The primary action: Akui acknowledges all of Tanjung's; the regency's all at once.
    page.locator("#station-card-tl-tanjung button[data-action=ack]").click()
    wait_for(lambda: stored(9)["acknowledged"] is not None, 10, "Tanjung acknowledged")
    bulk = page.locator("button.bulk[data-regency='Tulang Bawang']")
    assert "2 pos" in bulk.inner_text()
    bulk.click()
    wait_for(lambda: all(stored(i)["acknowledged"] for i in (10, 11, 12)), 10, "the regency acked")
    page.locator("button.bulk").wait_for(state="detached")
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
    page.locator("#station-card-ciliwung-depok").wait_for()
    assert (
        page.locator(".station-card details.menu, .station-card button, button.bulk").count() == 0
    )
    # All incidents, resolved ones too: still one card per station.
    web.incidents.put(
        dataclasses.replace(
            web.incidents.incidents[9], id=13, state=IncidentState.RESOLVED, resolved_ns=now_ns
        )
    )
    page.click(".filter button[data-active=false]")
    wait_for(
        lambda: page.locator("#station-card-tl-tanjung .reasons li").count() == 2, 10, "history"
    )
    assert page.locator(".station-card").count() == 4


def name_of(station_id: str) -> str:
    """A station's name in the registry the tests run with."""
    station = load_registry(STATIONS_FILE).get(station_id)
    assert station is not None
    return station.name


def axe_violations(page: Any) -> list[str]:
    """Serious and critical accessibility violations axe-core (vendored) finds on the page."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(url="/static/vendor/axe/axe.min.js")
    found: list[str] = page.evaluate(
        """async () => {
          const result = await axe.run(document, { resultTypes: ["violations"] });
          return result.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => `${v.id} (${v.impact}): ${v.help}: ` +
              v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "));
        }"""
    )
    return found


def sideways(page: Any) -> list[str]:
    """What makes the page scroll sideways (elements past the right edge), if anything."""
    found: list[str] = page.evaluate(
        """() => {
          if (document.documentElement.scrollWidth <= window.innerWidth + 1) return [];
          return [...document.querySelectorAll("body *")]
            .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5)
            .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
        }"""
    )
    return found


def back_dated_flood(now_ns: int) -> list[tuple[str, int, float]]:
    """Menggala as the demo leaves it: rising 3 cm/h for a day, the newest reading 3 days old."""
    newest_ns = now_ns - BACK_DATED_NS
    return [
        ("tb-menggala", newest_ns - step * 15 * MINUTE_NS, round(431.0 - 0.75 * step, 2))
        for step in range(96)
    ]


def store_health(influx: InfluxServer, database: str, health: StationHealth) -> None:
    """A health snapshot as the alert engine stores it."""

    async def write() -> None:
        settings = InfluxSettings(url=influx.url, database=database)
        async with InfluxStorage(settings, registry_tags(load_registry(STATIONS_FILE))) as store:
            await store.write_health([health], time.time_ns())

    # Playwright's sync API keeps an event loop running on this thread.
    writer = threading.Thread(target=asyncio.run, args=(write(),), name="web-test-health")
    writer.start()
    writer.join(30)


def test_every_page_on_a_phone_and_a_desktop_opens_on_the_data_and_is_accessible(
    page: Any,
    web: WebServer,
    worker: WorkerProcess,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> None:
    now_ns = time.time_ns()
    publish(broker_session, worker.topic_prefix, history(now_ns - 2 * MINUTE_NS))
    publish(broker_session, worker.topic_prefix, back_dated_flood(now_ns))
    store_health(
        influx_session,
        database,
        StationHealth(
            station_id="tb-menggala",
            last_seen_ns=now_ns - BACK_DATED_NS,
            readings_24h=96,
            expected_24h=96,
            completeness_pct=100.0,
            missing_by_seq=0,
            clock_skew_s=BACK_DATED_NS / 1e9,
            battery_v=3.91,
        ),
    )
    ack_page = signed_ack_links(web.url, LINK_KEY.encode())(10).removeprefix(web.url)

    favicon = page.request.get(f"{web.url}/favicon.ico")
    assert (favicon.status, favicon.headers["content-type"]) == (200, "image/vnd.microsoft.icon")

    page.set_viewport_size(PHONE)
    page.goto(f"{web.url}/login")
    assert axe_violations(page) == []
    screenshot(page, "login-phone")
    page.set_viewport_size(DESKTOP)
    screenshot(page, "login-desktop")
    sign_in(page, web, "/")

    # (name, path, a condition that holds once the page shows its data)
    pages = [
        (
            "overview",
            "/",
            "document.querySelector('#map[data-fitted]') && "
            "document.querySelector('tr[data-station=tb-menggala] td[data-field=value]')"
            ".textContent === '431'",
        ),
        (
            "station-menggala",
            "/stations/tb-menggala",
            "document.querySelector('#station-now .station-card') && "
            "Number(document.getElementById('chart-water').dataset.points) > 30",
        ),
        (
            "station-depok",
            "/stations/ciliwung-depok",
            "Number(document.getElementById('chart-water').dataset.points) > 30",
        ),
        ("incidents", "/incidents", "document.querySelector('.station-card')"),
        ("ack-page", ack_page, "document.querySelector('form')"),
        ("not-found", "/stations/does-not-exist", "document.querySelector('.not-found')"),
    ]
    station_ids = [s.id for s in load_registry(STATIONS_FILE).stations() if s.name]
    for size, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(viewport)
        for name, path, ready in pages:
            response = page.goto(f"{web.url}{path}")
            assert response.status == (404 if name == "not-found" else 200), name
            until(page, ready)
            shown = page.locator("body").inner_text()
            assert [i for i in station_ids if i in shown] == [], f"{name} shows station ids"
            assert sideways(page) == [], f"{name} scrolls sideways at {viewport}"
            assert axe_violations(page) == [], f"{name} at {viewport}"
            screenshot(page, f"{name}-{size}")

    # The station page opens on Menggala's back-dated flood, not on an empty day.
    page.goto(f"{web.url}/stations/tb-menggala")
    until(page, "Number(document.getElementById('chart-water').dataset.points) > 30")
    assert page.locator("#chart-water").get_attribute("data-anchor") == "newest"
    assert page.locator("#chart-note").is_visible()
    # Both active incidents, on one card, however old their last events.
    card = page.locator("#station-now #station-card-tb-menggala")
    assert card.get_attribute("data-level") == "AWAS"
    assert card.locator(".reasons li").count() == 2
    assert "Tidak ada insiden" not in card.inner_text()
    # Units for people: the rate of its newest readings, its lateness in days, stale marked.
    until(page, "document.getElementById('trend').textContent === '+3 cm/jam'")
    assert "3 hari terlambat" in page.locator("#health").inner_text()
    assert page.locator("#latest-at .stale-tag").inner_text() == "usang"
    assert "tb-menggala" not in page.locator("main").inner_text()

    # The overview's map opens on the stations with active incidents (Lampung and West Java),
    # not on Tabalong in Kalimantan nor all of Indonesia.
    page.goto(f"{web.url}/")
    until(page, "document.querySelector('#map[data-fitted]')")
    assert page.locator("#map").get_attribute("data-fitted") == "3"
    bounds = page.evaluate(
        "() => { const b = window.SiagaOverview.map.getBounds();"
        " return [b.getWest(), b.getEast(), b.getSouth(), b.getNorth()]; }"
    )
    west, east, _, _ = bounds
    assert west < 105.2, bounds  # Menggala
    assert 106.8 < east < 112, bounds  # Depok; Tabalong (115.4 E) is off the map
    menggala = page.locator("tr[data-station='tb-menggala']")
    assert menggala.locator("td[data-field=trend]").inner_text() == "+3 cm/jam"
    assert menggala.locator(".stale-tag").count() == 1
    assert page.locator("#as-of").inner_text().startswith("Data dibaca")

    # A card's reasons, unfolded on a phone: each in words, the wave with its arrival.
    page.set_viewport_size(PHONE)
    page.goto(f"{web.url}/incidents")
    reasons = page.locator("#station-card-tb-menggala .reasons")
    reasons.locator("summary").click()
    level_reason = reasons.locator("li[data-kind=level]").inner_text()
    wave_reason = reasons.locator("li[data-kind=upstream]").inner_text()
    assert "Tinggi air 431 cm" in level_reason
    assert f"Gelombang dari {name_of('tb-banjar-agung')} (388 cm)" in wave_reason
    assert "perkiraan tiba" in wave_reason
    screenshot(page, "incidents-reasons-phone")
    page.set_viewport_size(DESKTOP)

    # Keyboard only: past the navigation, to a card's menu, open it, type in it.
    page.goto(f"{web.url}/incidents")
    page.locator(".station-card").first.wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    menu = page.locator("#station-card-tb-menggala details.menu")
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate(
            "document.activeElement.matches('#station-card-tb-menggala .menu > summary')"
        ):
            break
    else:
        pytest.fail("the menu cannot be reached with Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus is not visible"
    page.keyboard.press("Enter")
    assert menu.get_attribute("open") is not None
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.name") == "comment"
    page.keyboard.type("dicek lewat papan ketik")
    assert menu.locator("input[name=comment]").input_value() == "dicek lewat papan ketik"
    screenshot(page, "incidents-keyboard")

"""The residents' page and the Telegram message in a real browser (Debian's chromium, headless,
Playwright) at 360 x 740: screenshots, the page budget (bytes and requests, measured by the
browser), the installable PWA, and the last known state offline with its time."""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alerts.incidents.memory import MemoryIncidentStore
from alerts.model import Acknowledgement, AlertEvent, EventKind, Incident, IncidentState
from alerts.notify.chat import status_lines
from alerts.notify.chatstore import SqlChatStore
from alerts.notify.localtime import WIB, clock_time
from alerts.notify.message import render
from alerts.notify.telegram import fit, keyboard
from alerts.pipeline.model import Notice, labels_of
from dashboards.api.accounts import Accounts, Role
from dashboards.api.app import create_app, sql_engine
from dashboards.public.site import PublicSite
from dashboards.settings import Settings
from devices.levels import Level
from devices.readings import Reading
from devices.registry import load_registry
from ingest.batch import Batch
from ingest.storage.memory import MemoryStorage
from tests.conftest import REPO_ROOT, STATIONS_FILE
from tests.integration.browsers import chromium, uvicorn_thread

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.integration

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "reach"
PUBLIC_FILE = REPO_ROOT / "config" / "public.yaml"
MINUTE_NS = 60 * 1_000_000_000
PHONE = {"width": 360, "height": 740}


def incident(
    incident_id: int, subject: str, kind: EventKind, severity: Level, now_ns: int, **event: Any
) -> Incident:
    last = AlertEvent(
        at_ns=now_ns - 20 * MINUTE_NS,
        subject=subject,
        kind=kind,
        rule=kind.value,
        firing=True,
        severity=severity,
        previous=Level.WASPADA,
        value=event.pop("value", None),
        **event,
    )
    return Incident(
        id=incident_id,
        subject=subject,
        rule=kind.value,
        kind=kind,
        state=IncidentState.FIRING,
        severity=severity,
        opened_ns=now_ns - 40 * MINUTE_NS,
        updated_ns=now_ns - 20 * MINUTE_NS,
        labels={"regency": "Tulang Bawang", "station": subject},
        last_event=last,
    )


@pytest.fixture
def public_url() -> Iterator[str]:
    registry = load_registry(STATIONS_FILE, None)
    now = time.time_ns()
    storage = MemoryStorage()
    batch = Batch()
    levels = {
        "tb-banjar-agung": [(-70, 380), (-40, 401), (-8, 412)],
        "tb-menggala": [(-65, 150), (-35, 158), (-5, 171)],
        "tb-dente-teladas": [(-300, 130), (-290, 131)],  # silent for hours: stale
        "tb-rawajitu-timur": [(-60, 95), (-30, 93), (-3, 92)],
    }
    for station_id, points in levels.items():
        for minutes, value in points:
            batch.readings.append(
                Reading(station_id, now + minutes * MINUTE_NS, {"water_level_cm": value})
            )
    asyncio.run(storage.write(batch))
    incidents = MemoryIncidentStore()
    incidents.incidents[1] = incident(
        1, "tb-banjar-agung", EventKind.LEVEL, Level.SIAGA, now, value=401.0
    )
    incidents.incidents[2] = incident(
        2,
        "tb-menggala",
        EventKind.UPSTREAM,
        Level.SIAGA,
        now,
        source="tb-banjar-agung",
        expected_at_ns=now + 150 * MINUTE_NS,
    )
    site = PublicSite(
        PUBLIC_FILE,
        lambda: registry,
        storage,
        incidents,
        cap_url="https://siaga.bpbd.example.go.id/api/v1/cap.atom",
    )
    with uvicorn_thread(site, lifespan="on") as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium(ARTIFACTS, ARGS) as launched:
        yield launched


def test_the_public_page_at_360_px_fits_its_budget_and_works_offline(
    public_url: str, browser: Any
) -> None:
    context = browser.new_context(viewport=PHONE, locale="id-ID", device_scale_factor=2)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    transferred: dict[str, int] = {}
    urls: dict[str, str] = {}
    cdp.on(
        "Network.requestWillBeSent", lambda e: urls.__setitem__(e["requestId"], e["request"]["url"])
    )
    cdp.on(
        "Network.loadingFinished",
        lambda e: transferred.__setitem__(e["requestId"], int(e["encodedDataLength"])),
    )
    page.goto(f"{public_url}/tulang-bawang/", wait_until="load")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.wait_for_timeout(300)  # the worker's own fetches after load, if any
    first_load = {urls[r]: size for r, size in transferred.items() if r in urls}
    total = sum(first_load.values())
    (ARTIFACTS / "public-budget.json").write_text(
        json.dumps({"requests": len(first_load), "bytes": total, "each": first_load}, indent=2)
    )
    assert total < 100_000, first_load
    assert len(first_load) <= 4, first_load  # the page, its manifest, the worker, an icon
    assert not any("tile" in url for url in first_load)

    cards = page.locator("section.card")
    assert cards.count() == 4
    assert page.locator(".warn").count() == 2
    assert "Siaga" in page.locator(".warn").first.inner_text()
    menggala = page.locator("section.card", has_text="Menggala")
    assert "diperkirakan tiba sekitar" in menggala.inner_text()
    assert "naik" in menggala.inner_text()
    stale = page.locator("section.card", has_text="Dente Teladas")
    assert "DATA LAMA" in stale.inner_text()
    assert "Tidak diketahui" in stale.inner_text()
    assert page.locator("a", has_text="Umpan peringatan resmi (CAP)").count() == 1
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], "nothing wider than the phone"
    page.screenshot(path=str(ARTIFACTS / "public-360.png"), full_page=False)
    page.screenshot(path=str(ARTIFACTS / "public-360-full.png"), full_page=True)

    manifest = page.evaluate(
        "fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())"
    )
    assert manifest["display"] == "standalone"
    page.reload(wait_until="load")  # now controlled by the worker, which keeps a copy
    assert page.evaluate("navigator.serviceWorker.controller !== null")

    context.set_offline(True)
    page.reload(wait_until="load")
    assert page.locator("section.card").count() == 4
    assert page.locator("#old").is_visible()
    assert "belum diperbarui sejak" in page.locator("#old").inner_text()
    page.screenshot(path=str(ARTIFACTS / "public-360-offline.png"))
    assert errors == []
    context.close()


def test_the_telegram_message_at_360_px(browser: Any) -> None:
    registry = load_registry(STATIONS_FILE, None)
    now = time.time_ns()
    notice_incident = incident(42, "tb-menggala", EventKind.LEVEL, Level.AWAS, now, value=312.0)
    assert notice_incident.last_event is not None
    notice = Notice(
        id="t1",
        incident_id=42,
        labels=labels_of(
            notice_incident.last_event,
            IncidentState.FIRING,
            regency="Tulang Bawang",
            river="Way Tulang Bawang",
        ),
        event=notice_incident.last_event,
        state=IncidentState.FIRING,
    )
    text = fit(render([notice], "id", registry).body)  # what TelegramChannel posts
    buttons = keyboard([42])
    acked = Incident(
        **{
            **{f: getattr(notice_incident, f) for f in Incident.__dataclass_fields__},
            "acknowledged": Acknowledgement("budi", now),
        }
    )
    edited = text + "\n\n" + "\n".join(status_lines([acked], WIB, numbered=False))
    edited_buttons = keyboard([42], acknowledged=[42])

    def bubble(body: str, rows: list[list[tuple[str, str]]]) -> str:
        keys = "".join(
            "<div class=row>"
            + "".join(f"<div class=key>{html.escape(label)}</div>" for label, _ in row)
            + "</div>"
            for row in rows
        )
        sent = clock_time(now, WIB).removesuffix(" WIB")
        message = f"<div class=text>{html.escape(body)}</div><div class=time>{sent}</div>"
        return f"<div class=msg>{message}</div>{keys}"

    document = f"""<!doctype html><meta charset=utf-8><style>
body{{margin:0;background:#c9d9a8;font:15px/1.35 system-ui,sans-serif}}
.bar{{background:#517da2;color:#fff;padding:10px 12px;font-weight:600}}
.chat{{padding:8px}}
.msg{{background:#fff;border-radius:12px;padding:7px 10px;max-width:310px;white-space:pre-wrap;
word-wrap:break-word;box-shadow:0 1px 1px rgba(0,0,0,.15)}}
.time{{text-align:right;font-size:11px;color:#8a9}}
.row{{display:flex;gap:4px;max-width:330px;margin-top:4px}}
.key{{flex:1;background:rgba(80,110,60,.45);color:#fff;border-radius:8px;padding:8px 4px;
text-align:center;font-weight:600;font-size:14px}}
.sep{{text-align:center;color:#fff;font-size:12px;margin:10px 0}}</style>
<div class=bar>Piket BPBD Tulang Bawang</div><div class=chat>{bubble(text, buttons)}
<div class=sep>setelah budi menekan "Akui"</div>{bubble(edited, edited_buttons)}</div>"""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = context.new_page()
    page.set_content(document)
    page.screenshot(path=str(ARTIFACTS / "telegram-360.png"), full_page=True)
    (ARTIFACTS / "telegram-message.json").write_text(
        json.dumps(
            {"text": text, "buttons": buttons, "edited": edited}, ensure_ascii=False, indent=2
        )
    )
    keys = page.locator(".key")
    assert [k.inner_text() for k in keys.all()] == [
        "Akui",
        "Saya tangani",
        "Bisukan 1 jam",
        "Saya tangani",
        "Bisukan 1 jam",
    ]
    for key in keys.all():  # every label whole on a 360 px screen
        assert key.evaluate("e => e.scrollWidth <= e.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    context.close()


def test_a_user_makes_a_telegram_link_code_on_the_profile_page(
    tmp_path: Path, browser: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    settings = Settings.model_validate({"database": {"url": url}, "api": {"secret_key": "k" * 48}})
    accounts = Accounts(sql_engine(url))
    accounts.create_tables()
    accounts.add_user("sari", Role.OPERATOR, "operator-password-1", time.time_ns())
    chats = SqlChatStore(engine=accounts.engine)
    chats.create_tables()
    app = create_app(
        settings,
        storage=MemoryStorage(),
        registry=load_registry(STATIONS_FILE, None),
        accounts=accounts,
        chats=chats,
        live=False,
    )
    try:
        with uvicorn_thread(app) as base:
            context = browser.new_context(viewport=PHONE, locale="id-ID", device_scale_factor=2)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{base}/login?next=/profil")
            page.fill("input[name=username]", "sari")
            page.fill("input[name=password]", "operator-password-1")
            page.click("button[type=submit]")
            page.wait_for_url("**/profil")
            page.click("#link-code")
            page.wait_for_selector("#code-box:not([hidden])")
            command = page.locator("#link-command").inner_text()
            assert command.startswith("/link ")
            assert "Berlaku sampai" in page.locator("#code-expires").inner_text()
            page.screenshot(path=str(ARTIFACTS / "profile-360.png"), full_page=True)
            code = command.removeprefix("/link ")
            # Playwright's sync API holds this thread's event loop: redeem from another thread.
            with concurrent.futures.ThreadPoolExecutor(1) as other:
                redeem = chats.redeem_code("telegram", code, "7001", time.time_ns())
                linked = other.submit(asyncio.run, redeem).result()
            assert linked == "sari"
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            assert errors == []
            context.close()
    finally:
        accounts.engine.dispose()

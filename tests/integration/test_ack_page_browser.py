"""The acknowledgement page and the e-mail that links it, as people see them: phone, desktop.

Debian's chromium, headless, through Playwright. At 360x740 and 1366x768 the page needs no
sideways scrolling, names the station and the level, says what to do, and its name field and
one button are big enough for a thumb; giving a name and pressing it acknowledges. Screenshots
go to tests/artifacts/ack/.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from alerts.notify.acklink import signed_ack_links
from alerts.notify.apprise_channel import AppriseChannel
from alerts.notify.channels import Outgoing
from alerts.notify.message import render
from devices.levels import Level
from ingest.storage.memory import MemoryStorage
from tests.apitools import NOW_NS, NS, SECRET_KEY, ApiHarness, build, incident, registry
from tests.conftest import REPO_ROOT
from tests.integration.browsers import chromium, uvicorn_thread
from tests.integration.notify_peers import smtp_server
from tests.integration.test_notify_channels import plain_text
from tests.textcheck import english_in, ids_in
from tests.unit.test_notify_message import level_notice

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.integration

ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "ack"
SIZES = {"phone": (360, 740), "desktop": (1366, 768)}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, ApiHarness]]:
    harness = build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)
    for number, station in enumerate(("tb-menggala", "ciliwung-katulampa"), start=3):
        harness.incidents.put(incident(number, station))
    with uvicorn_thread(harness.app) as base:
        yield base, harness


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium(ARTIFACTS, ["--no-sandbox", "--disable-gpu"]) as launched:
        yield launched


@pytest.mark.parametrize("size", SIZES)
def test_the_ack_page_works_on_a_phone_and_a_desktop(
    served: tuple[str, ApiHarness], browser: Any, size: str
) -> None:
    base, harness = served
    width, height = SIZES[size]
    link = signed_ack_links(base, SECRET_KEY, clock=lambda: NOW_NS / NS)(3)
    assert link is not None
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.goto(link)
    text = page.inner_text("body")
    assert "Pos Duga Air Menggala" in text
    assert "Siaga" in text
    assert "Tindakan:" in text
    assert "Nama Anda" in text
    assert ids_in(text, registry()) == []
    assert english_in(text, registry()) == []
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px of sideways scrolling at {width} px"
    button = page.get_by_role("button").bounding_box()
    assert button is not None
    assert button["height"] >= 44  # a thumb's target
    assert button["x"] >= 0
    assert button["x"] + button["width"] <= width
    name = page.get_by_label("Nama Anda")
    field = name.bounding_box()
    assert field is not None
    assert field["height"] >= 44
    assert field["x"] + field["width"] <= width
    page.screenshot(path=str(ARTIFACTS / f"ack-{size}.png"), full_page=True)
    name.fill("budi@bpbd.example")
    page.get_by_role("button").click()
    page.wait_for_selector("text=dikonfirmasi oleh budi@bpbd.example")
    page.screenshot(path=str(ARTIFACTS / f"ack-done-{size}.png"), full_page=True)
    assert harness.incidents.incidents[3].acknowledged is not None


@pytest.mark.parametrize("size", SIZES)
def test_a_grouped_email_reads_one_notice_after_another(browser: Any, size: str) -> None:
    """A real grouped e-mail through Apprise and SMTP, shown as a mail client shows plain text."""
    notices = [
        level_notice(station, severity, incident_id=number)
        for number, (station, severity) in enumerate(
            [
                ("tb-menggala", Level.AWAS),
                ("tb-banjar-agung", Level.SIAGA),
                ("tb-dente-teladas", Level.WASPADA),
            ],
            start=11,
        )
    ]
    rendered = render(notices, "id", registry())
    outgoing = Outgoing(
        id="m-1",
        delivery_id="d-1",
        recipient="piket",
        language="id",
        subject=rendered.subject,
        body=rendered.body,
        short=rendered.short,
        payload={},
    )
    with smtp_server() as (port, inbox):
        channel = AppriseChannel(
            "email", f"mailto://127.0.0.1:{port}?from=siaga@example.org&to=piket@example.org"
        )
        # Playwright's loop runs in this thread: the channel gets a loop of its own.
        with ThreadPoolExecutor(1) as thread:
            assert thread.submit(asyncio.run, channel.send(outgoing)).result().delivered
        message = inbox.messages[0]
    subject = str(make_header(decode_header(message["Subject"])))
    body = plain_text(message).replace("\r\n", "\n")
    assert body.strip() == rendered.body
    assert body.count("Konfirmasi: siaga alerts ack") == 3
    width, height = SIZES[size]
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_content(
        "<!doctype html><meta name=viewport content='width=device-width'>"
        "<body style='margin:0;font:15px sans-serif'>"
        f"<h3 style='margin:.5rem'>{html.escape(subject)}</h3>"
        f"<pre style='white-space:pre-wrap;font:inherit;margin:.5rem'>{html.escape(body)}</pre>"
    )
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.screenshot(path=str(ARTIFACTS / f"email-{size}.png"), full_page=True)

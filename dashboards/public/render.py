"""The residents' page as bytes: HTML, JSON, manifest, service worker and icons, each with its
gzip form and ETag, made once per refresh and served as they are to every request."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import struct
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from dashboards.public.config import PublicRegency
from dashboards.public.model import PageModel

TEMPLATES = Path(__file__).parent / "templates"
# Shows the "not updated" note when the service worker served the phone's copy (no signal) or
# the page is older than 10 minutes, and registers the service worker that keeps that copy.
SCRIPT = (
    "(function(){var b=+document.body.dataset.built;"
    "if(document.body.dataset.offline||Date.now()/1e3-b>600||!navigator.onLine)"
    "{document.getElementById('old').style.display='block'}"
    "if('serviceWorker' in navigator){navigator.serviceWorker.register('sw.js')}})();"
)
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
CSP = (
    "default-src 'self'; style-src 'unsafe-inline'; "
    f"script-src 'sha256-{SCRIPT_HASH}'; img-src 'self'; manifest-src 'self'; "
    "worker-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True, slots=True)
class Body:
    """One answer: its bytes, gzipped bytes, media type and ETag."""

    raw: bytes
    gzipped: bytes
    media_type: str
    etag: str

    @classmethod
    def of(cls, raw: bytes, media_type: str) -> Body:
        """Compress and tag (gzip's time stamp fixed, so equal content has equal bytes)."""
        digest = hashlib.blake2b(raw, digest_size=12).hexdigest()
        return cls(raw, gzip.compress(raw, compresslevel=9, mtime=0), media_type, f'"{digest}"')


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page_html(page: PageModel) -> Body:
    """The page."""
    html = _environment().get_template("page.html.j2").render(page=page, script=SCRIPT)
    return Body.of(html.encode(), "text/html; charset=utf-8")


def page_json(page: PageModel) -> Body:
    """The page's state for machines (and other apps)."""
    data = json.dumps(page.state, ensure_ascii=False, separators=(",", ":"))
    return Body.of(data.encode(), "application/json")


def index_html(regencies: list[PublicRegency]) -> Body:
    """The list of published regencies."""
    html = _environment().get_template("index.html.j2").render(regencies=regencies)
    return Body.of(html.encode(), "text/html; charset=utf-8")


def manifest(regency: PublicRegency) -> Body:
    """The web app manifest: installable, starting at the regency's page."""
    data = {
        "name": f"Tinggi Air Sungai · {regency.title}",
        "short_name": "Tinggi Air",
        "lang": "id",
        "start_url": f"/{regency.slug}/",
        "scope": f"/{regency.slug}/",
        "display": "standalone",
        "background_color": "#f3f5f7",
        "theme_color": "#0b4f8a",
        "icons": [
            {"src": "/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/icon-512.png", "sizes": "512x512", "type": "image/png"},
        ],
    }
    return Body.of(json.dumps(data, ensure_ascii=False).encode(), "application/manifest+json")


@cache
def service_worker() -> Body:
    """The service worker (the same for every regency; its scope is the regency's folder)."""
    return Body.of((TEMPLATES / "sw.js").read_bytes(), "text/javascript; charset=utf-8")


@cache
def icon(size: int) -> Body:
    """A square PNG: blue, with three white waves (drawn here; no image files to ship)."""
    rows = []
    for y in range(size):
        row = bytearray(b"\x00")  # filter: none
        for x in range(size):
            band = (y * 8 // size) in {3, 5} and (x * 16 // size) % 4 != 3
            wave = band and ((x + (y * 3)) // max(1, size // 24)) % 3 != 0
            row += b"\xff\xff\xff" if wave else b"\x0b\x4f\x8a"
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")
    return Body.of(png, "image/png")

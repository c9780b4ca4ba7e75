"""Siaga's web UI: pages and static assets mounted into the API's app.

The pages are thin HTML shells rendered with Jinja2 (language, strings, layout); their data comes
from the JSON API under ``/api/v1`` and its Server-Sent Events, read by the scripts in ``static/``.
Everything a page loads is served from ``/static``: Leaflet, uPlot and the Natural Earth outlines
are vendored under ``static/vendor`` with their licences, so the UI works with no internet.
"""

from __future__ import annotations

import json
from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import FastAPI, Path, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.gzip import GZipMiddleware

from dashboards.api.context import ApiContext
from dashboards.api.guard import CONTENT_SECURITY_POLICY
from dashboards.web.i18n import COOKIE, LANGUAGES, Language, pick_language, strings
from dashboards.web.zones import province_at, shipped_provinces, zone_at
from devices.topics import STATION_ID_PATTERN

__all__ = ["mount", "render_page", "safe_next"]

HERE = FilePath(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")

LANGUAGE_COOKIE_MAX_AGE_S = 365 * 24 * 3600
MAX_NEXT_CHARS = 2000


_SCRIPT_UNSAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def _script_json(value: object) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` at all (not only ``</``: a
    ``<!--<script`` from a query parameter would keep the element from closing)."""
    return json.dumps(value, ensure_ascii=False).translate(_SCRIPT_UNSAFE)


def _page(
    request: Request, template: str, title_key: str, status_code: int = 200, **context: object
) -> Response:
    language: Language = pick_language(
        request.query_params.get("lang"), request.cookies.get(COOKIE)
    )
    words = strings(language)
    api = _context(request)
    settings = {"stale_after_intervals": api.settings.stale_after_intervals} if api else {}
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        context={
            "lang": language,
            "other_lang": next(other for other in LANGUAGES if other != language),
            "t": words,
            "title": words[title_key],
            "config_json": _script_json({"lang": language, "t": words, **settings, **context}),
            **context,
        },
        status_code=status_code,
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.query_params.get("lang") in LANGUAGES:
        response.set_cookie(
            COOKIE, language, max_age=LANGUAGE_COOKIE_MAX_AGE_S, samesite="lax", httponly=True
        )
    return response


def _context(request: Request) -> ApiContext | None:
    """The API's context when the pages are mounted into the API's app (not on a bare app)."""
    found = getattr(request.app.state, "siaga", None)
    return found if isinstance(found, ApiContext) else None


def render_page(
    request: Request, template: str, title_key: str, status_code: int = 200, **context: object
) -> Response:
    """A page of ``templates/`` in the request's language (``?lang=``, the cookie, else id)."""
    return _page(request, template, title_key, status_code, **context)


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site, else ``/`` (no open redirect).

    Browsers read ``/\\evil.example`` like ``//evil.example`` (another host), and drop tabs and
    newlines inside URLs: only a plain absolute path without either passes.
    """
    if not target or len(target) > MAX_NEXT_CHARS or not target.startswith("/"):
        return "/"
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or target.startswith("//"):
        return "/"
    return target


def mount(app: FastAPI) -> None:
    """Add the pages (``/``, ``/stations/{id}``, ``/incidents``, ``/profil``, ``/audit``,
    ``/policy``, ``/login``), ``/static`` and ``/favicon.ico``; an unknown station's page is a
    404 page (when mounted into the API)."""
    # Gzip for the static files only (the outlines shrink from 710 to 150 kB for phones); the
    # API's event stream must not pass through a compressing buffer.
    static = GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=1024)
    app.mount("/static", static, name="static")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def overview_page(request: Request) -> Response:
        return _page(request, "overview.html", "nav.overview", page="overview")

    @app.get("/stations/{station_id}", response_class=HTMLResponse, include_in_schema=False)
    async def station_page(
        request: Request,
        station_id: Annotated[str, Path(pattern=f"^{STATION_ID_PATTERN.pattern}$")],
    ) -> Response:
        api = _context(request)
        if api is not None and api.registry.get(station_id) is None:
            return _page(
                request,
                "not_found.html",
                "station.not_found",
                status_code=404,
                page="not-found",
                heading="station.not_found",
                text="station.not_found_text",
            )
        return _page(request, "station.html", "col.station", page="station", station=station_id)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "favicon.ico",
            media_type="image/vnd.microsoft.icon",
            headers={"Cache-Control": "public, max-age=604800"},
        )

    @app.get("/incidents", response_class=HTMLResponse, include_in_schema=False)
    async def incidents_page(request: Request) -> Response:
        return _page(request, "incidents.html", "incidents.title", page="incidents")

    @app.get("/profil", response_class=HTMLResponse, include_in_schema=False)
    async def profile_page(request: Request) -> Response:
        return _page(request, "profile.html", "profile.title", page="profile")

    @app.get("/audit", response_class=HTMLResponse, include_in_schema=False)
    async def audit_page(request: Request) -> Response:
        return _page(request, "audit.html", "audit.title", page="audit")

    @app.get("/policy", response_class=HTMLResponse, include_in_schema=False)
    async def policy_page(request: Request) -> Response:
        return _page(request, "policy.html", "policy.title", page="policy")

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    async def login_page(request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        return _page(request, "login.html", "login.title", page="login", next=target)

    @app.get("/ui/zone", include_in_schema=False)
    async def zone(
        lat: Annotated[float, Query(ge=-90, le=90)],
        lon: Annotated[float, Query(ge=-180, le=180)],
    ) -> JSONResponse:
        provinces = shipped_provinces()
        found = zone_at(lat, lon, provinces)
        return JSONResponse(
            {
                "iana": found.iana,
                "abbreviation": found.abbreviation,
                "utc_offset_h": found.utc_offset_h,
                "province": province_at(lat, lon, provinces),
            },
            headers={"Cache-Control": "public, max-age=86400"},
        )

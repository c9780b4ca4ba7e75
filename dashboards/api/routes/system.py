"""Rejections, device health, liveness and readiness, the CAP feed and live events."""

from __future__ import annotations

import asyncio
import hmac
import json
import weakref
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from alerts.notify.cap import CapDocument
from dashboards.api.accounts import Principal
from dashboards.api.atom import CAP_MEDIA_TYPE, atom_feed
from dashboards.api.context import ApiContext
from dashboards.api.deps import Context, Viewer, authenticate
from dashboards.api.live import END
from dashboards.api.routes import AUTH_RESPONSES, NOT_FOUND, bad_parameter, time_ns
from dashboards.api.schemas import HealthList, Problem, Ready, RejectionList
from dashboards.api.scopes import allows, reach, visible_station_ids
from dashboards.api.views import NS, rejection_public, station_health_public
from devices import Reason
from devices.topics import STATION_ID_PATTERN
from ingest.batch import StoredRejection
from ingest.errors import SiagaError

router = APIRouter(prefix="/api/v1", tags=["operations"])
probes = APIRouter(tags=["probes"])

KEEPALIVE_S = 15.0
LIVE_RETRY_S = 10
# The notification store looks documents up by time, not identifier: the newest suffice.
CAP_LOOKUP_LIMIT = 1000
CAP_CACHE_S = 1.0
# A scoped caller's rejections are read in pages of this size and filtered to their stations,
# at most this many pages a request (the stores filter by one station, not by a set).
_REJECTION_PAGE = 1000
_REJECTION_PAGES = 10


@router.get("/rejections", summary="Refused messages and readings", responses=AUTH_RESPONSES)
async def list_rejections(
    ctx: Context,
    who: Viewer,
    reason: Reason | None = None,
    station: Annotated[
        str | None,
        Query(pattern=f"^{STATION_ID_PATTERN.pattern}$", description="a station id"),
    ] = None,
    since: Annotated[datetime | None, Query(description="default: 24 h ago")] = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RejectionList:
    """Newest first. A caller of some regencies or a province sees the rejections of their
    stations only (a message from an unknown station belongs to no regency)."""
    since_ns = time_ns("query", "since", since, ctx.clock_ns() - 86400 * NS) or 0
    until_ns = time_ns("query", "until", until, None)
    if until_ns is not None and until_ns <= since_ns:
        raise bad_parameter("query", "until", "until must be after since")
    visible = visible_station_ids(ctx, who)
    if visible is None:
        found = await ctx.storage.rejections(
            since_ns, limit=limit, reason=reason, station_id=station, until_ns=until_ns
        )
    elif station is not None:
        found = (
            await ctx.storage.rejections(
                since_ns, limit=limit, reason=reason, station_id=station, until_ns=until_ns
            )
            if station in visible
            else []
        )
    else:
        found = await _scoped_rejections(ctx, visible, since_ns, until_ns, reason, limit)
    return RejectionList(data=[rejection_public(r) for r in found], count=len(found))


async def _scoped_rejections(
    ctx: ApiContext,
    visible: frozenset[str],
    since_ns: int,
    until_ns: int | None,
    reason: Reason | None,
    limit: int,
) -> list[StoredRejection]:
    """The newest rejections of ``visible`` stations, read page by page, newest first."""
    found: list[StoredRejection] = []
    for _ in range(_REJECTION_PAGES):
        page = await ctx.storage.rejections(
            since_ns, limit=_REJECTION_PAGE, reason=reason, until_ns=until_ns
        )
        found += [r for r in page if r.rejection.station_id in visible]
        if len(found) >= limit or len(page) < _REJECTION_PAGE:
            break
        until_ns = page[-1].received_ns
    return found[:limit]


@router.get("/health", summary="Device health of every station", responses=AUTH_RESPONSES)
async def device_health(ctx: Context, who: Viewer) -> HealthList:
    """The ingest workers' latest health snapshot per station of the caller's scope."""
    found = await ctx.storage.health()
    visible = visible_station_ids(ctx, who)
    data = [
        station_health_public(found[k]) for k in sorted(found) if visible is None or k in visible
    ]
    return HealthList(data=data, count=len(data))


@probes.get("/healthz", summary="Alive")
async def healthz(ctx: Context) -> dict[str, Any]:
    """The process answers; with the live stream's counters."""
    hub = ctx.hub
    return {
        "status": "ok",
        "live_clients": hub.clients if hub else 0,
        "live_dropped": hub.dropped if hub else 0,
        "refused": dict(ctx.refused),
        "loop_restarts": dict(ctx.loop_restarts),
    }


@probes.get(
    "/readyz",
    summary="Ready: storage and the database answer",
    responses={503: {"model": Ready, "description": "a dependency is failing"}},
)
async def readyz(ctx: Context) -> Ready:
    """Checks InfluxDB (a cheap query) and the SQL database (``SELECT 1``)."""
    checks: dict[str, str] = {}
    try:
        await ctx.storage.latest(["__readyz__"])
        checks["storage"] = "ok"
    except SiagaError as exc:
        checks["storage"] = str(exc)[:200]
    try:
        await run_in_threadpool(ctx.accounts.ping)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any driver error means "not ready"
        checks["database"] = type(exc).__name__
    ready = all(v == "ok" for v in checks.values())
    body = Ready(status="ok" if ready else "failing", checks=checks)
    if not ready:
        return JSONResponse(body.model_dump(), status.HTTP_503_SERVICE_UNAVAILABLE)  # type: ignore[return-value]
    return body


# -- CAP ----------------------------------------------------------------------------------------


async def _feed_access(request: Request, ctx: Context) -> Principal | None:
    """Who reads the feed: None for everyone (a public feed, or the feed key), else the
    signed-in principal, whose scope then filters it.

    A public feed is the residents': what was broadcast is public anyway. Signed in (a session
    cookie or an API key), the caller sees their scope's documents only, public or not.
    """
    bearer = request.headers.get("authorization", "")
    key = bearer[7:] if bearer.lower().startswith("bearer ") else None
    key = key or request.headers.get("x-api-key")
    signed_in = key is not None or ctx.settings.cookie_name in request.cookies
    if ctx.settings.cap_feed_public:
        if not signed_in:
            return None
        try:
            return await authenticate(request, ctx, key)
        except HTTPException:
            return None  # a stale cookie on a public feed: read it as the public does
    offered = request.query_params.get("key")
    expected = ctx.settings.cap_feed_key
    if offered and expected and hmac.compare_digest(offered, expected.get_secret_value()):
        return None
    return await authenticate(request, ctx, key)


FeedAccess = Annotated[Principal | None, Depends(_feed_access)]
_FEED_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/atom+xml": {}}, "description": "an Atom feed"},
    **AUTH_RESPONSES,
}


@router.get(
    "/cap.atom",
    summary="CAP 1.2 alerts as an Atom feed",
    response_class=Response,
    tags=["cap"],
    responses=_FEED_RESPONSES,
)
async def cap_feed(
    ctx: Context,
    access: FeedAccess,
    key: Annotated[str | None, Query(max_length=200, description="the feed key")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Response:
    """The newest CAP documents, each linked as ``application/cap+xml`` (signed in: of the
    caller's scope)."""
    _ = key
    documents = _cap_in_scope(ctx, access, await _recent_cap(ctx))[:limit]
    body = atom_feed(
        documents,
        base_url=ctx.settings.base_url,
        feed_id=f"urn:siaga:cap-feed:{ctx.settings.base_url}",
        now_ns=ctx.clock_ns(),
    )
    return Response(body, media_type="application/atom+xml")


@router.get(
    "/cap/{identifier}.xml",
    summary="One CAP 1.2 document",
    response_class=Response,
    tags=["cap"],
    responses={
        200: {"content": {CAP_MEDIA_TYPE: {}}, "description": "a CAP document"},
        **AUTH_RESPONSES,
        **NOT_FOUND,
    },
)
async def cap_document(
    ctx: Context,
    access: FeedAccess,
    identifier: Annotated[str, Path(max_length=300)],
    key: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The document as the notification pipeline produced it."""
    _ = key
    recent = _cap_in_scope(ctx, access, await _recent_cap(ctx))
    document = next((d for d in recent if d.identifier == identifier), None)
    if document is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no CAP document {identifier!r}")
    return Response(document.xml, media_type=CAP_MEDIA_TYPE)


def _cap_in_scope(
    ctx: ApiContext, who: Principal | None, documents: list[CapDocument]
) -> list[CapDocument]:
    """The documents about stations (or a whole regency) of ``who``'s scope (all for None:
    public readers)."""
    visible = None if who is None else visible_station_ids(ctx, who)
    if visible is None or who is None:
        return documents
    return [
        d
        for d in documents
        if d.station in visible
        or (d.station.startswith("regency:") and allows(ctx, who, d.station[8:]))
    ]


async def _recent_cap(ctx: ApiContext) -> list[CapDocument]:
    """The newest CAP documents, read at most once per :data:`CAP_CACHE_S` however many ask.

    The feed is public by default: a flood of requests costs one database query a second.
    """
    async with ctx.cap_lock:
        cached = ctx.cap_cache
        now_ns = ctx.clock_ns()
        if cached is None or not 0 <= now_ns - cached[0] < CAP_CACHE_S * NS:
            cached = (now_ns, await ctx.notify.cap_feed_entries(None, CAP_LOOKUP_LIMIT))
            ctx.cap_cache = cached
        return cached[1]


# -- live events -------------------------------------------------------------------------------


@router.get(
    "/events",
    summary="Live readings and alerts (Server-Sent Events)",
    response_class=StreamingResponse,
    tags=["live"],
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "reading and alert events"},
        **AUTH_RESPONSES,
        429: {"model": Problem, "description": "too many streams of this user"},
        503: {"model": Problem, "description": "too many streams in all, or live updates off"},
    },
)
async def events(ctx: Context, who: Viewer) -> StreamingResponse:
    """``event: reading`` for each new latest reading, ``event: alert`` for each incident change,
    of the caller's scope.

    A comment line every 15 s keeps proxies from closing the stream. Streams are capped per
    user or key (``api.live_max_streams_per_user``, then 429) and in all
    (``api.live_max_streams``, then 503); each refusal is counted.
    """
    hub = ctx.hub
    if hub is None or hub.closed:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "live updates are off" if hub is None else "the server is shutting down",
        )
    if hub.clients_of(who.name) >= ctx.settings.live_max_streams_per_user:
        ctx.refused["live_per_user"] += 1
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"at most {ctx.settings.live_max_streams_per_user} live streams per user; "
            "close one first",
            headers={"Retry-After": str(LIVE_RETRY_S)},
        )
    if hub.clients >= ctx.settings.live_max_streams:
        ctx.refused["live_total"] += 1
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "too many live streams on this server; try again later",
            headers={"Retry-After": str(LIVE_RETRY_S)},
        )
    subscription = hub.subscribe(who.name, reach(ctx, who))

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b": connected\nretry: 2000\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if event is END:
                    return
                yield f"event: {event.kind}\ndata: {event.data}\n\n".encode()
        finally:
            hub.unsubscribe(subscription)

    body = stream()
    # A client gone before the stream's first step never runs its ``finally``: the slot is
    # given back when the generator is collected (unsubscribing twice does nothing).
    weakref.finalize(body, hub.unsubscribe, subscription)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def event_json(payload: Any) -> str:
    """One line of JSON for an event's ``data`` field."""
    return json.dumps(payload, separators=(",", ":"), default=str)

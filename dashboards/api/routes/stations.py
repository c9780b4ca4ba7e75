"""Stations with their newest readings, and a station's readings over time."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from dashboards.api.context import ApiContext, FleetSnapshot
from dashboards.api.deps import Context, Viewer
from dashboards.api.routes import AUTH_RESPONSES, NOT_FOUND, bad_parameter, time_ns
from dashboards.api.schemas import Readings, StationList, StationPublic, WindowName
from dashboards.api.scopes import reach, station_or_404
from dashboards.api.views import (
    NS,
    WATER_LEVEL,
    WINDOW_SECONDS,
    raw_public,
    station_public,
    to_datetime,
    window_public,
)
from devices.stations import METRIC_NAME_PATTERN, Station
from devices.topics import STATION_ID_PATTERN

router = APIRouter(prefix="/api/v1/stations", tags=["stations"], responses=AUTH_RESPONSES)

MAX_RAW_POINTS = 20_000
_MAX_BODIES = 64
MAX_WINDOWS = 20_000
DEFAULT_RANGE_NS = 24 * 3600 * NS

StationId = Annotated[str, Path(pattern=f"^{STATION_ID_PATTERN.pattern}$", max_length=100)]


def _within(
    summaries: list[StationPublic], regencies: frozenset[str] | None, ctx: ApiContext
) -> list[StationPublic]:
    """``summaries`` with river links to stations outside ``regencies`` left out."""
    if regencies is None:
        return summaries

    def inside(station_id: str) -> bool:
        found = ctx.registry.get(station_id)
        return found is not None and found.regency in regencies

    return [
        s.model_copy(
            update={
                "upstream": [u for u in s.upstream if inside(u.station)],
                "downstream": [d for d in s.downstream if inside(d.station)],
            }
        )
        for s in summaries
    ]


def _in_scope(ctx: ApiContext, regencies: frozenset[str] | None) -> list[Station]:
    """The registry's stations of ``regencies`` (None: all), in registry order."""
    if regencies is None:
        return ctx.registry.stations()
    if len(regencies) == 1:
        return list(ctx.stations_of(next(iter(regencies))))
    chosen = {s.id for r in regencies for s in ctx.stations_of(r)}
    return [s for s in ctx.registry.stations() if s.id in chosen]


def _summaries(
    ctx: ApiContext, stations: list[Station], snapshot: FleetSnapshot, now_ns: int
) -> list[StationPublic]:
    upstream = ctx.upstream()
    return [
        station_public(
            station,
            latest=snapshot.latest.get(station.id),
            health=snapshot.health.get(station.id),
            span=snapshot.spans.get(station.id),
            upstream=upstream.get(station.id, []),
            now_ns=now_ns,
            stale_after_intervals=ctx.settings.stale_after_intervals,
        )
        for station in stations
    ]


async def _stations(
    ctx: ApiContext, stations: list[Station], regencies: frozenset[str] | None
) -> list[StationPublic]:
    """Stations with fresh readings of their own (small queries; for the detail page)."""
    now_ns = ctx.clock_ns()
    ids = [s.id for s in stations]
    latest, health, spans = await asyncio.gather(
        ctx.storage.latest(ids),
        ctx.storage.health(),
        ctx.storage.spans(WATER_LEVEL, now_ns - ctx.settings.trend_window_s * NS, ids),
    )
    upstream = ctx.upstream()
    found = [
        station_public(
            station,
            latest=latest.get(station.id),
            health=health.get(station.id),
            span=spans.get(station.id),
            upstream=upstream.get(station.id, []),
            now_ns=now_ns,
            stale_after_intervals=ctx.settings.stale_after_intervals,
        )
        for station in stations
    ]
    return _within(found, regencies, ctx)


@router.get(
    "",
    summary="Every station with its newest reading, level, trend and health",
    response_model=StationList,
)
async def list_stations(
    ctx: Context,
    who: Viewer,
    regency: Annotated[str | None, Query(max_length=100)] = None,
    river: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The stations of the caller's scope in registry order; ``regency``/``river`` narrow the
    list.

    The readings come from a snapshot shared by all requests and refreshed every
    ``api.overview_max_age_s`` (1 s): staleness and trends are as of that snapshot.
    """
    snapshot = await ctx.fleet()
    body = render_list(ctx, snapshot, regency, river, reach(ctx, who))
    return Response(body, media_type="application/json")


def render_list(
    ctx: ApiContext,
    snapshot: FleetSnapshot,
    regency: str | None,
    river: str | None,
    regencies: frozenset[str] | None = None,
) -> bytes:
    """The station list of a snapshot as JSON, rendered once per snapshot, filter and scope
    (``regencies``: the caller's; None: the whole deployment)."""
    key = (regency, river, regencies)
    body = snapshot.bodies.get(key)
    if body is None:
        stations = [
            s
            for s in _in_scope(ctx, regencies)
            if (regency is None or s.regency == regency) and (river is None or s.river == river)
        ]
        data = _within(_summaries(ctx, stations, snapshot, snapshot.taken_ns), regencies, ctx)
        body = StationList(data=data, count=len(data)).model_dump_json().encode()
        if len(snapshot.bodies) < _MAX_BODIES:
            snapshot.bodies[key] = body
    return body


@router.get("/{station_id}", summary="One station", responses=NOT_FOUND)
async def get_station(ctx: Context, who: Viewer, station_id: StationId) -> StationPublic:
    """One station (of the caller's scope) with its newest reading, level, trend and health."""
    station = station_or_404(ctx, who, station_id)
    (found,) = await _stations(ctx, [station], reach(ctx, who))
    return found


@router.get("/{station_id}/readings", summary="A metric over a time range", responses=NOT_FOUND)
async def get_readings(
    ctx: Context,
    who: Viewer,
    station_id: StationId,
    metric: Annotated[str, Query(pattern=METRIC_NAME_PATTERN)] = WATER_LEVEL,
    start: Annotated[datetime | None, Query(description="RFC 3339; default: end - 24 h")] = None,
    end: Annotated[datetime | None, Query(description="RFC 3339; default: now")] = None,
    window: Annotated[WindowName, Query(description="raw or a window to aggregate")] = "raw",
) -> Readings:
    """Raw readings, or mean/min/max/count per window aligned to UTC."""
    station = station_or_404(ctx, who, station_id)
    if metric not in station.metrics:
        raise bad_parameter("query", "metric", f"station {station_id} reports no {metric}")
    end_ns = time_ns("query", "end", end, ctx.clock_ns()) or 0
    start_ns = time_ns("query", "start", start, end_ns - DEFAULT_RANGE_NS) or 0
    if start_ns >= end_ns:
        raise bad_parameter("query", "start", "start must be before end")
    if window == "raw":
        points = await ctx.storage.readings(
            station_id, metric, start_ns, end_ns, MAX_RAW_POINTS + 1
        )
        truncated = len(points) > MAX_RAW_POINTS
        data = [raw_public(ts, value) for ts, value in points[:MAX_RAW_POINTS]]
    else:
        window_s = WINDOW_SECONDS[window]
        if (end_ns - start_ns) // (window_s * NS) > MAX_WINDOWS:
            raise bad_parameter(
                "query", "window", f"more than {MAX_WINDOWS} windows; choose a wider window"
            )
        stats = await ctx.storage.window(station_id, metric, start_ns, end_ns, window_s)
        data = [window_public(s) for s in stats]
        truncated = False
    return Readings(
        station=station_id,
        metric=metric,
        window=window,
        start=to_datetime(start_ns),
        end=to_datetime(end_ns),
        data=data,
        count=len(data),
        truncated=truncated,
    )

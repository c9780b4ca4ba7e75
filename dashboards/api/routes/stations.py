"""Stations with their newest readings, and a station's readings over time."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from dashboards.api.context import ApiContext, FleetSnapshot, RenderedStation
from dashboards.api.deps import Context, Viewer
from dashboards.api.forecasts import no_model_detail, station_forecast
from dashboards.api.routes import AUTH_RESPONSES, NOT_FOUND, bad_parameter, time_ns
from dashboards.api.schemas import (
    ForecastPublic,
    Problem,
    Readings,
    StationList,
    StationPublic,
    WindowName,
)
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
from ingest.errors import SiagaError

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
    spans = await ctx.trend_spans(latest, spans)
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
    responses={503: {"model": Problem, "description": "storage did not answer"}},
)
async def list_stations(
    ctx: Context,
    who: Viewer,
    regency: Annotated[str | None, Query(max_length=100)] = None,
    river: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The stations of the caller's scope in registry order; ``regency``/``river`` narrow the
    list.

    The readings come from a snapshot shared by all requests (``as_of``, ``age_s``): refreshed
    once older than ``api.overview_max_age_s`` (1 s) and never served older than
    ``api.overview_max_stale_s`` (5 s). Staleness (``stale_s``) is as of the answer.
    """
    try:
        snapshot = await ctx.fleet()
    except SiagaError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    body = render_list(ctx, snapshot, regency, river, ctx.clock_ns(), reach(ctx, who))
    return Response(body, media_type="application/json")


def render_list(
    ctx: ApiContext,
    snapshot: FleetSnapshot,
    regency: str | None,
    river: str | None,
    now_ns: int | None = None,
    regencies: frozenset[str] | None = None,
) -> bytes:
    """The station list of a snapshot as JSON, as of ``now_ns`` (default: the snapshot's time),
    for a caller who may see ``regencies`` (None: the whole deployment).

    Each station is rendered once per snapshot, filter and scope; an answer only fills in
    staleness (once per second and filter), so a thousand stations cost a join, not a thousand
    serialisations.
    """
    now_ns = max(now_ns or 0, snapshot.taken_ns)
    key = (regency, river, regencies, now_ns // NS)
    body = snapshot.bodies.get(key)
    if body is None:
        items = []
        for part in _rendered(ctx, snapshot, regency, river, regencies):
            hole = _STALE_HOLE
            if part.ts_ns is not None:
                stale_s = (now_ns - part.ts_ns) / NS
                stale = b"true" if stale_s > part.stale_after_s else b"false"
                hole = b'"stale_s":%s,"stale":%s' % (json.dumps(stale_s).encode(), stale)
            items.append(part.before + hole + part.after)
        head = StationList(
            data=[],
            count=len(items),
            as_of=to_datetime(snapshot.taken_ns),
            age_s=round((now_ns - snapshot.taken_ns) / NS, 3),
        ).model_dump_json()
        body = head.encode().replace(b'"data":[]', b'"data":[' + b",".join(items) + b"]", 1)
        if len(snapshot.bodies) >= _MAX_BODIES:
            snapshot.bodies.clear()
        snapshot.bodies[key] = body
    return body


# Where a station's staleness goes. JSON strings escape their quotes, so in a station's
# rendering this occurs once, as its own fields (rendered with no reading time).
_STALE_HOLE = b'"stale_s":null,"stale":true'


def _rendered(
    ctx: ApiContext,
    snapshot: FleetSnapshot,
    regency: str | None,
    river: str | None,
    regencies: frozenset[str] | None,
) -> list[RenderedStation]:
    found = snapshot.parts.get((regency, river, regencies))
    if found is None:
        stations = [
            s
            for s in _in_scope(ctx, regencies)
            if (regency is None or s.regency == regency) and (river is None or s.river == river)
        ]
        found = []
        factor = ctx.settings.stale_after_intervals
        summaries = _within(_summaries(ctx, stations, snapshot, snapshot.taken_ns), regencies, ctx)
        for station, public in zip(stations, summaries, strict=True):
            blank = public.model_copy(update={"stale_s": None, "stale": True}).model_dump_json()
            before, after = blank.encode().split(_STALE_HOLE)
            latest = snapshot.latest.get(station.id)
            found.append(
                RenderedStation(
                    before,
                    after,
                    latest.ts_ns if latest is not None else None,
                    station.interval_s * factor,
                )
            )
        if len(snapshot.parts) >= _MAX_BODIES:
            snapshot.parts.clear()
        snapshot.parts[(regency, river, regencies)] = found
    return found


@router.get("/{station_id}", summary="One station", responses=NOT_FOUND)
async def get_station(ctx: Context, who: Viewer, station_id: StationId) -> StationPublic:
    """One station (of the caller's scope) with its newest reading, level, trend and health."""
    station = station_or_404(ctx, who, station_id)
    (found,) = await _stations(ctx, [station], reach(ctx, who))
    return found


@router.get(
    "/{station_id}/forecast", summary="The stage forecast and its skill", responses=NOT_FOUND
)
async def get_forecast(ctx: Context, who: Viewer, station_id: StationId) -> ForecastPublic:
    """The forecast of the water level, hour by hour to ``forecast.horizon_h``, with its 80 %
    interval, as of the station's newest reading, and the model's skill against persistence."""
    station = station_or_404(ctx, who, station_id)
    model = ctx.models.current(station_id) if ctx.models is not None else None
    if model is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, no_model_detail(station))
    found = await station_forecast(ctx.storage, ctx.forecast, model, ctx.clock_ns())
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no recent reading of {station.name} to forecast from"
        )
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

"""Who may see what: the caller's scope applied to stations, incidents, silences and accounts.

Every route reads through these helpers. Something outside the caller's scope answers 404,
exactly as something that does not exist, so its existence does not leak; lists, counts and
aggregates leave it out. The scope itself is :class:`devices.scopes.Scope`; what it reaches is
decided against the registry's regency -> province map.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from fastapi import HTTPException, status

from alerts.model import Incident
from alerts.pipeline.silence import Silence
from dashboards.api.accounts import Principal
from dashboards.api.schemas import ScopeFields
from devices.scopes import Scope
from devices.stations import Station

if TYPE_CHECKING:
    from dashboards.api.context import ApiContext


def reach(ctx: ApiContext, who: Principal) -> frozenset[str] | None:
    """The regencies ``who`` may see (None: the whole deployment)."""
    return who.scope.reach(ctx.registry.provinces())


def allows(ctx: ApiContext, who: Principal, regency: str | None) -> bool:
    """Whether ``who`` may see what belongs to ``regency`` (None: to no regency)."""
    if who.scope.deployment_wide:
        return True
    return regency is not None and who.scope.allows(regency, ctx.registry.provinces())


def stations_in(ctx: ApiContext, who: Principal, stations: Iterable[Station]) -> list[Station]:
    """The stations of ``stations`` inside the caller's scope, in order."""
    regencies = reach(ctx, who)
    if regencies is None:
        return list(stations)
    return [s for s in stations if s.regency in regencies]


def visible_station_ids(ctx: ApiContext, who: Principal) -> frozenset[str] | None:
    """The ids of the stations the caller may see (None: all)."""
    regencies = reach(ctx, who)
    if regencies is None:
        return None
    return frozenset(s.id for r in regencies for s in ctx.stations_of(r))


def station_or_404(ctx: ApiContext, who: Principal, station_id: str) -> Station:
    """The station, when it exists and is inside the caller's scope.

    Raises:
        HTTPException: 404 otherwise (the same answer either way).
    """
    station = ctx.registry.get(station_id)
    if station is None or not allows(ctx, who, station.regency):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no station {station_id!r}")
    return station


def incident_regency(incident: Incident) -> str | None:
    """The regency an incident belongs to (its routing label)."""
    return incident.labels.get("regency") or None


async def incident_or_404(ctx: ApiContext, who: Principal, incident_id: int) -> Incident:
    """The incident, when it exists and is inside the caller's scope.

    Raises:
        HTTPException: 404 otherwise.
    """
    incident = await ctx.incidents.get(incident_id)
    if incident is None or not allows(ctx, who, incident_regency(incident)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no incident {incident_id}")
    return incident


def silence_visible(ctx: ApiContext, who: Principal, silence: Silence) -> bool:
    """Whether the caller may see (and end) ``silence``: one that can only mute regencies of
    their scope. A deployment-wide silence is the deployment's business."""
    regencies = reach(ctx, who)
    if regencies is None:
        return True
    return silence.regencies is not None and silence.regencies <= regencies


def matcher_in_scope(ctx: ApiContext, who: Principal, name: str, value: str) -> bool:
    """Whether an equality matcher on ``name`` names something of the caller's scope (a
    station or regency of another is refused: a write on what they cannot see)."""
    if who.scope.deployment_wide:
        return True
    if name == "station":
        station = ctx.registry.get(value)
        return station is not None and allows(ctx, who, station.regency)
    if name == "regency":
        return allows(ctx, who, value)
    return True


def silence_regencies(ctx: ApiContext, who: Principal) -> frozenset[str] | None:
    """The regencies a silence made by ``who`` may mute (None: anything)."""
    return reach(ctx, who)


def may_manage(ctx: ApiContext, who: Principal, scope: Scope) -> bool:
    """Whether ``who`` (an admin) may see and change a user or key of ``scope``."""
    return who.scope.covers(scope, ctx.registry.provinces())


def scope_fields(scope: Scope) -> ScopeFields:
    """The interface's fields for a scope."""
    return ScopeFields(regencies=sorted(scope.regencies), province=scope.province)


def regency_index(stations: Iterable[Station]) -> Mapping[str, list[Station]]:
    """Stations by regency, each list in registry order."""
    index: dict[str, list[Station]] = {}
    for station in stations:
        index.setdefault(station.regency, []).append(station)
    return index

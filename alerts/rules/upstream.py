"""Upstream early warning: a station escalating (or rising fast) warns the stations below it.

The warning follows the registry's ``downstream`` links down the river, adding the travel
times (Katulampa → Depok 3 h → Manggarai 6 h more), and gives each station the expected arrival
of the wave: the event's time plus the travel time. Each downstream station holds one incident
per upstream source (``upstream:<source>``): it fires when the source first escalates, rises in
severity with it, and clears when the source is back to NORMAL and no longer rising.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerts.model import AlertEvent, EventKind
from devices.levels import Level
from devices.stations import Station

NS_PER_S = 1_000_000_000
MAX_HOPS = 32


@dataclass(frozen=True, slots=True)
class Reach:
    """A station downstream of a source, and how long water takes to get there."""

    station_id: str
    travel_ns: int


def reaches(
    source: Station, lookup: Callable[[str], Station | None], max_travel_s: float
) -> tuple[Reach, ...]:
    """Every station below ``source`` within ``max_travel_s``, nearest first (cycle-safe)."""
    found: dict[str, int] = {}
    frontier: list[tuple[Station, int]] = [(source, 0)]
    limit_ns = int(max_travel_s * NS_PER_S)
    for _ in range(MAX_HOPS):
        following: list[tuple[Station, int]] = []
        for station, travelled in frontier:
            for link in station.downstream:
                total = travelled + int(link.travel_min * 60 * NS_PER_S)
                if link.station == source.id or total > limit_ns:
                    continue
                if link.station in found and found[link.station] <= total:
                    continue
                found[link.station] = total
                below = lookup(link.station)
                if below is not None:
                    following.append((below, total))
        if not following:
            break
        frontier = following
    return tuple(Reach(s, t) for s, t in sorted(found.items(), key=lambda item: item[1]))


def evaluate(
    warned: Level,
    source_id: str,
    trigger: AlertEvent,
    downstream: Sequence[Reach],
    *,
    source_level: Level,
    rate_firing: bool,
) -> tuple[Level, list[AlertEvent]]:
    """Turn one of the source's own events into warnings downstream.

    Args:
        warned: The severity the source has warned at so far (NORMAL: not warning).
        source_id: The upstream station.
        trigger: The source's level or rate event.
        downstream: Where the water goes (see :func:`reaches`).
        source_level: The source's level after ``trigger``.
        rate_firing: Whether a rise rule of the source still fires after ``trigger``.

    Returns:
        The new warned severity and one event per downstream station when it changed.
    """
    if not downstream:
        return warned, []
    wanted = warned
    if trigger.kind is EventKind.LEVEL and trigger.firing and trigger.severity > warned:
        wanted = trigger.severity
    elif trigger.kind is EventKind.RATE and trigger.firing and warned == Level.NORMAL:
        wanted = max(trigger.severity, Level.WASPADA)
    elif warned > Level.NORMAL and source_level == Level.NORMAL and not rate_firing:
        wanted = Level.NORMAL
    if wanted == warned:
        return warned, []
    firing = wanted > Level.NORMAL
    events = []
    for reach in downstream:
        expected = trigger.at_ns + reach.travel_ns
        hours = reach.travel_ns / (3600 * NS_PER_S)
        detail = (
            f"upstream: {trigger.detail or source_id + ' ' + trigger.severity.name}; "
            f"the water is expected at {reach.station_id} in about {hours:.1f} h"
            if firing
            else f"{source_id} upstream is back to normal"
        )
        events.append(
            AlertEvent(
                at_ns=trigger.at_ns,
                subject=reach.station_id,
                kind=EventKind.UPSTREAM,
                rule=f"upstream:{source_id}",
                firing=firing,
                severity=wanted,
                previous=warned,
                value=trigger.value,
                trend_cm_h=trigger.trend_cm_h,
                late=trigger.late,
                source=source_id,
                expected_at_ns=expected if firing else None,
                detail=detail,
            )
        )
    return wanted, events

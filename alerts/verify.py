"""Warning verification: did the warnings come before the water, and how far ahead?

Warning services report on themselves by counting events, not points (``siaga alerts
verify``). For each station, level and kind of warning:

- the observed crossings come from the readings: the first reading at or past the level's
  threshold (in force at its time, inclusive or not), after the water stayed below it for
  ``episode_gap`` (a level hovering at a line is one crossing, not many);
- a warning of a level is a firing event of the kind at that level or above: ``forecast``
  (the forecast rule), ``upstream`` (a wave on its way), and ``level``, where the warning of a
  level is the station's own escalation to the level below it (Waspada warns of Siaga);
- hits, misses and false alarms are matched by :func:`forecast.skill.verify_warnings` within
  the horizon plus a tolerance, with the lead of each hit.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from devices.levels import Level, thresholds_at
from devices.readings import Reading
from devices.stations import StationRegistry
from forecast.skill import Contingency, verify_warnings

NS_PER_S = 1_000_000_000
KINDS = ("forecast", "upstream", "level")
_LEVELS = (Level.WASPADA, Level.SIAGA, Level.AWAS)


@dataclass(frozen=True, slots=True)
class Warning:
    """An alert event, as much of it as verification needs (from JSON lines or InfluxDB)."""

    at_ns: int
    station: str
    kind: str
    level: Level
    firing: bool


@dataclass(frozen=True, slots=True)
class Verified:
    """One station, level and kind of warning over the period."""

    station: str
    level: Level
    kind: str
    result: Contingency

    def record(self) -> dict[str, Any]:
        """One JSON object (``--json``)."""
        leads = [round(s / 3600, 2) for s in self.result.lead_times_s]
        return {
            "station": self.station,
            "level": self.level.name,
            "kind": self.kind,
            "hits": self.result.hits,
            "misses": self.result.misses,
            "false_alarms": self.result.false_alarms,
            "pod": _rounded(self.result.pod),
            "far": _rounded(self.result.far),
            "csi": _rounded(self.result.csi),
            "lead_h": leads,
            "lead_h_median": round(statistics.median(leads), 2) if leads else None,
        }


def _rounded(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None  # NaN: no case to score


def crossings(
    readings: Iterable[Reading], registry: StationRegistry, episode_gap_s: float
) -> dict[tuple[str, Level], list[int]]:
    """Per (station, level): when the observed water first reached it in each episode."""
    by_station: dict[str, list[tuple[int, float]]] = {}
    for reading in readings:
        value = reading.values.get("water_level_cm")
        if value is not None:
            by_station.setdefault(reading.station_id, []).append((reading.ts_ns, value))
    gap_ns = int(episode_gap_s * NS_PER_S)
    found: dict[tuple[str, Level], list[int]] = {}
    for station_id, points in by_station.items():
        station = registry.get(station_id)
        if station is None or not station.thresholds:
            continue
        points.sort()
        below_since: dict[Level, int | None] = dict.fromkeys(_LEVELS, points[0][0] - gap_ns)
        for ts_ns, value in points:
            thresholds = thresholds_at(station.thresholds, ts_ns)
            if thresholds is None:
                continue
            observed = thresholds.level_of(value)
            for level in _LEVELS:
                since = below_since[level]
                if observed >= level:
                    if since is not None and ts_ns - since >= gap_ns:
                        found.setdefault((station_id, level), []).append(ts_ns)
                    below_since[level] = None
                elif since is None:
                    below_since[level] = ts_ns
    return found


def verify(
    readings: Sequence[Reading],
    warnings: Iterable[Warning],
    registry: StationRegistry,
    *,
    horizon_s: float,
    tolerance_s: float = 3600.0,
    episode_gap_s: float = 12 * 3600.0,
    kinds: Sequence[str] = KINDS,
    since_ns: int | None = None,
) -> list[Verified]:
    """Every station, level and kind with a crossing or a warning in the period.

    Args:
        since_ns: Score only crossings and warnings from this moment (a backtest's
            ``--train-until``: before it no warning could be issued); the readings before it
            still tell which crossings begin an episode.
    """
    crossed = crossings(readings, registry, episode_gap_s)
    start = min((r.ts_ns for r in readings), default=0) if since_ns is None else since_ns
    issued: dict[tuple[str, Level, str], list[int]] = {}
    for warning in warnings:
        if not warning.firing or warning.kind not in kinds or warning.at_ns < start:
            continue
        for level in _LEVELS:
            if warning.kind == "level":
                warns = level > Level.WASPADA and warning.level == level - 1
            else:
                warns = warning.level >= level
            if warns:
                issued.setdefault((warning.station, level, warning.kind), []).append(warning.at_ns)
    keys = {
        (s, lv, k)
        for (s, lv), times in crossed.items()
        if any(t >= start for t in times)
        for k in kinds
        if k != "level" or lv > Level.WASPADA
    }
    keys |= set(issued)
    results = []
    for station, level, kind in sorted(keys, key=lambda key: (key[0], int(key[1]), key[2])):
        result = verify_warnings(
            issued.get((station, level, kind), []),
            crossed.get((station, level), []),
            horizon_ns=int(horizon_s * NS_PER_S),
            tolerance_ns=int(tolerance_s * NS_PER_S),
            earliest_ns=start,
        )
        results.append(Verified(station, level, kind, result))
    return results


def warning_from_record(record: Mapping[str, Any]) -> Warning | None:
    """A warning from one line of ``siaga alerts backtest --json`` (None: not an event line)."""
    from devices.timestamps import parse_timestamp_ns  # noqa: PLC0415

    if "at" not in record or "level" not in record or record.get("kind") == "skill":
        return None
    return Warning(
        parse_timestamp_ns(record["at"]),
        str(record["station"]),
        str(record["kind"]),
        Level[str(record["level"])],
        bool(record.get("firing", True)),
    )


__all__ = ["KINDS", "Verified", "Warning", "crossings", "verify", "warning_from_record"]

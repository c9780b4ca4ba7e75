"""Hourly rollups of telemetry: what long charts read instead of every reading. Pure.

A continuous query keeps, per series and hour, ``mean``, ``min``, ``max``, ``sum`` and
``count`` of every field in measurement ``telemetry_1h`` of a retention policy of its own. The
query recomputes the last :data:`RESAMPLE_FOR_S` each run, so hours older than that are final;
readings arriving later than that (a store-and-forward backlog) are rolled up again by the
writer (:func:`refresh_statement`).

A window of a whole number of hours is then answered from three pieces: raw readings before the
first whole hour, rollup rows for the final hours, raw readings for the recent rest. The pieces
combine exactly through sums and counts (:func:`merge`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from devices import Reading
from ingest.lineprotocol import series_key
from ingest.storage.base import TELEMETRY, WindowStat

NS = 1_000_000_000
HOUR_NS = 3600 * NS
ROLLUP = "telemetry_1h"
CQ_NAME = "siaga_telemetry_1h"
RESAMPLE_EVERY = "5m"
RESAMPLE_FOR_S = 3 * 3600
# Below this span a rollup saves too little to be worth the extra queries.
MIN_ROLLUP_SPAN_NS = 24 * HOUR_NS
_AGGREGATES = "mean(*), min(*), max(*), sum(*), count(*)"
DIRTY = "rollup_dirty"
ALL_STATIONS = "*"
"""The station of a mark that makes its hour dirty for every station."""
REFRESH_MAX_STATIONS = 50
"""Above this many dirty stations in an hour, recompute it for all: one scan beats a long OR."""
REFRESH_MAX_HOURS = 24
"""The longest range one recompute statement covers."""


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _target(database: str, policy: str) -> str:
    return f"{quote_identifier(database)}.{quote_identifier(policy)}.{ROLLUP}"


def _source(database: str, policy: str) -> str:
    return f"{quote_identifier(database)}.{quote_identifier(policy)}.{TELEMETRY}"


def continuous_query(database: str, source_policy: str, rollup_policy: str) -> str:
    """The CREATE CONTINUOUS QUERY statement that keeps the rollup."""
    return (
        f"CREATE CONTINUOUS QUERY {quote_identifier(CQ_NAME)} ON {quote_identifier(database)} "
        f"RESAMPLE EVERY {RESAMPLE_EVERY} FOR {RESAMPLE_FOR_S // 3600}h BEGIN "
        f"SELECT {_AGGREGATES} INTO {_target(database, rollup_policy)} "
        f"FROM {_source(database, source_policy)} GROUP BY time(1h), * END"
    )


def refresh_statement(
    database: str,
    source_policy: str,
    rollup_policy: str,
    *,
    start_ns: int,
    end_ns: int,
    station_ids: Iterable[str] | None = None,
) -> str:
    """Recompute the rollup for the whole hours covering ``[start_ns, end_ns)``."""
    start = floor_hour(start_ns)
    end = ceil_hour(end_ns)
    where = f"time >= {start} AND time < {end}"
    if station_ids is not None:
        quoted = " OR ".join(f"station = {quote_string(s)}" for s in sorted(set(station_ids)))
        where += f" AND ({quoted})"
    return (
        f"SELECT {_AGGREGATES} INTO {_target(database, rollup_policy)} "
        f"FROM {_source(database, source_policy)} WHERE {where} GROUP BY time(1h), *"
    )


def floor_hour(ts_ns: int) -> int:
    """The start of the hour of ``ts_ns``."""
    return ts_ns - ts_ns % HOUR_NS


def ceil_hour(ts_ns: int) -> int:
    """The first hour boundary at or after ``ts_ns``."""
    return -(-ts_ns // HOUR_NS) * HOUR_NS


@dataclass(frozen=True, slots=True)
class Plan:
    """How to answer a window query: raw ``[start, head_end)``, rollup ``[head_end, tail_start)``
    and raw ``[tail_start, end)``; ``use_rollup`` False means raw only."""

    use_rollup: bool
    head_end: int
    tail_start: int


def plan(start_ns: int, end_ns: int, window_s: int, now_ns: int) -> Plan:
    """Whether and where the rollup answers part of a window query."""
    head_end = min(ceil_hour(start_ns), end_ns)
    final_before = floor_hour(now_ns - RESAMPLE_FOR_S * NS)
    tail_start = max(head_end, min(floor_hour(end_ns), final_before))
    use = window_s % 3600 == 0 and tail_start - head_end >= MIN_ROLLUP_SPAN_NS
    return Plan(use, head_end, tail_start)


@dataclass
class _Sum:
    total: float
    count: int
    low: float
    high: float


def merge(
    window_s: int,
    raw: Iterable[WindowStat],
    rollup_rows: Iterable[tuple[int, float, int, float, float]],
) -> list[WindowStat]:
    """Windows from raw window stats and rollup rows ``(hour, sum, count, min, max)``."""
    width = window_s * NS
    sums: dict[int, _Sum] = {}

    def add(ts_ns: int, total: float, count: int, low: float, high: float) -> None:
        key = ts_ns - ts_ns % width
        found = sums.get(key)
        if found is None:
            sums[key] = _Sum(total, count, low, high)
        else:
            found.total += total
            found.count += count
            found.low = min(found.low, low)
            found.high = max(found.high, high)

    for stat in raw:
        add(stat.start_ns, stat.mean * stat.count, stat.count, stat.min, stat.max)
    for hour, total, count, low, high in rollup_rows:
        if count:
            add(hour, total, count, low, high)
    return [
        WindowStat(key, s.total / s.count, s.low, s.high, s.count)
        for key, s in sorted(sums.items())
    ]


# -- dirty hours: marked by the writer, recomputed in the background, read raw meanwhile ------


def late_horizon(now_ns: int) -> int:
    """Readings older than this are beyond the continuous query's reach (an hour of margin)."""
    return now_ns - RESAMPLE_FOR_S * NS + HOUR_NS


@dataclass(frozen=True, slots=True)
class Marks:
    """The dirty ``(hour, station)`` pairs of one batch.

    Attributes:
        pairs: ``(hour start, station id or ALL_STATIONS)``, at most the bound it was built
            with, unless the batch alone spans more hours than that (one mark per hour then).
        coalesced: Pairs folded into whole-hour marks to keep within the bound.
    """

    pairs: frozenset[tuple[int, str]]
    coalesced: int = 0


def dirty_marks(readings: Iterable[Reading], horizon_ns: int, max_marks: int) -> Marks:
    """The hours and stations that readings older than ``horizon_ns`` make dirty.

    Over ``max_marks`` pairs, the hours with the most stations become whole-hour marks
    (:data:`ALL_STATIONS`) until the rest fits: nothing is dropped, a coarser mark costs a
    larger recompute and raw charts for every station of that hour.
    """
    by_hour: dict[int, set[str]] = {}
    # A batch's readings mostly fall in one hour: remember the last hour's set and its bounds.
    low = high = 0
    stations: set[str] = set()
    for reading in readings:
        ts_ns = reading.ts_ns
        if ts_ns < horizon_ns:
            if not low <= ts_ns < high:
                low = ts_ns - ts_ns % HOUR_NS
                high = low + HOUR_NS
                found = by_hour.get(low)
                if found is None:
                    found = by_hour[low] = set()
                stations = found
            stations.add(reading.station_id)
    total = sum(len(s) for s in by_hour.values())
    coalesced = 0
    if total > max_marks:
        for hour, stations in sorted(by_hour.items(), key=lambda item: -len(item[1])):
            if total <= max_marks or len(stations) < 2:
                break
            total -= len(stations) - 1
            coalesced += len(stations)
            by_hour[hour] = {ALL_STATIONS}
    pairs = frozenset((h, s) for h, stations in by_hour.items() for s in stations)
    return Marks(pairs, coalesced)


def mark_lines(marks: Marks, first_ts_ns: int, writer: str) -> list[str]:
    """Line protocol for ``marks``: point ``i`` at ``first_ts_ns + i``.

    Each mark is a point of its own (tags ``station`` and ``writer``, integer field ``hour``);
    distinct times keep two marks of one station from overwriting each other, and the
    ``writer`` tag (the worker's MQTT client id, unique by the protocol) keeps two workers'
    marks apart. The times are when the marks were made: a pass deletes what it read by time.
    """
    return [
        f"{series_key(DIRTY, {'station': station, 'writer': writer})} hour={hour}i "
        f"{first_ts_ns + index}"
        for index, (hour, station) in enumerate(sorted(marks.pairs))
    ]


@dataclass(frozen=True, slots=True)
class Refresh:
    """One recompute: the whole hours ``[start_ns, end_ns)`` of some stations (None: all)."""

    start_ns: int
    end_ns: int
    station_ids: tuple[str, ...] | None


def refreshes(
    dirty: Mapping[str, Iterable[int]], *, max_stations: int, max_hours: int
) -> list[Refresh]:
    """Coalesce dirty hours per station into few recomputes, oldest first.

    Each hour is recomputed once, for the stations marked in it, or for all of them when it
    was marked for :data:`ALL_STATIONS` or for more than ``max_stations``. Consecutive hours
    with the same stations share one statement of at most ``max_hours``.

    Args:
        dirty: Station id (or :data:`ALL_STATIONS`) → hour starts marked dirty.
        max_stations: More stations than this in one hour: recompute it for every station
            (one scan of the hour costs less than a long ``OR`` of stations).
        max_hours: The longest range one statement recomputes (bounds each query's work).
    """
    by_hour: dict[int, set[str]] = {}
    for station, hours in dirty.items():
        for hour in hours:
            by_hour.setdefault(floor_hour(hour), set()).add(station)
    found: list[Refresh] = []
    for hour in sorted(by_hour):
        stations = by_hour[hour]
        chosen = (
            None
            if ALL_STATIONS in stations or len(stations) > max_stations
            else tuple(sorted(stations))
        )
        last = found[-1] if found else None
        if (
            last is not None
            and last.end_ns == hour
            and last.station_ids == chosen
            and (last.end_ns - last.start_ns) // HOUR_NS < max_hours
        ):
            found[-1] = Refresh(last.start_ns, hour + HOUR_NS, chosen)
        else:
            found.append(Refresh(hour, hour + HOUR_NS, chosen))
    return found


def dirty_runs(start_ns: int, end_ns: int, dirty_hours: Iterable[int]) -> list[tuple[int, int]]:
    """The dirty hours within ``[start_ns, end_ns)`` as ``[start, end)`` runs, oldest first."""
    runs: list[tuple[int, int]] = []
    for hour in sorted({floor_hour(h) for h in dirty_hours}):
        low, high = max(hour, start_ns), min(hour + HOUR_NS, end_ns)
        if low >= high:
            continue
        if runs and runs[-1][1] == low:
            runs[-1] = (runs[-1][0], high)
        else:
            runs.append((low, high))
    return runs

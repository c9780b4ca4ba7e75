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

from collections.abc import Iterable
from dataclasses import dataclass

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

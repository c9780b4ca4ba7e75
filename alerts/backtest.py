"""Backtests: the live engine replayed over recorded readings (a CSV file or InfluxDB).

Readings are replayed in the order of their own timestamps, one at a time, each "arriving" at
its own time, through exactly the :class:`~alerts.engine.Engine` that runs live; the no-data
rule is ticked every ``tick_s`` of replayed time in between (never after the last reading: the
end of a file is not a silence). Only stations that have readings are evaluated unless asked
otherwise, so a file of three stations is not a regency of silent ones.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alerts.engine import Engine, Scope, Step
from alerts.model import AlertEvent, EventKind
from alerts.rules.config import RulesConfig
from devices.levels import Level
from devices.readings import Reading
from devices.stations import StationRegistry
from devices.timestamps import NS_PER_S, TimestampError, format_rfc3339, parse_timestamp_ns
from ingest.errors import ConfigError
from ingest.storage.base import TELEMETRY

if TYPE_CHECKING:
    from ingest.storage.influx import InfluxStorage

CSV_HEADER = ("station", "ts", "metric", "value")
FLAP_WINDOW_NS = 3600 * NS_PER_S
REENTRY_WINDOW_NS = 86400 * NS_PER_S
"""A level entered again this soon after it was left counts as a re-escalation: the tide
(every flood tide crossing a threshold its ebb falls back from) flaps at this scale, hours
apart, which the one-hour flap count does not see."""


class BacktestError(ConfigError):
    """Input a backtest cannot use; the message names the line and the problem."""


def parse_csv(text: str, source: str = "<readings>") -> list[Reading]:
    """Readings from CSV ``station,ts,metric,value`` (ts RFC 3339; any row order).

    Rows of the same station and time become one reading with several metrics.

    Raises:
        BacktestError: A missing header, a bad timestamp or value, naming the line.
    """
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
        raise BacktestError(f"{source}: line 1: the header must be {','.join(CSV_HEADER)}")
    readings: dict[tuple[str, int], Reading] = {}
    for line, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 4:
            raise BacktestError(f"{source}: line {line}: expected 4 columns, got {len(row)}")
        station, ts_text, metric, value_text = (cell.strip() for cell in row)
        try:
            ts_ns = parse_timestamp_ns(ts_text)
        except (TimestampError, ValueError) as exc:
            raise BacktestError(f"{source}: line {line}: bad ts {ts_text!r}: {exc}") from None
        try:
            value = float(value_text)
        except ValueError:
            raise BacktestError(
                f"{source}: line {line}: value {value_text!r} is not a number"
            ) from None
        if not math.isfinite(value):
            raise BacktestError(f"{source}: line {line}: value {value_text!r} is not finite")
        key = (station, ts_ns)
        reading = readings.get(key)
        if reading is None:
            readings[key] = Reading(station, ts_ns, {metric: value})
        else:
            reading.values[metric] = value
    return list(readings.values())


@dataclass(slots=True)
class Backtest:
    """What a replay decided.

    Attributes:
        events: Every event, in the order the engine emitted them.
        step: Everything, with the transitions.
        readings: Readings replayed.
        unknown: Readings of stations not in the registry (skipped).
    """

    events: list[AlertEvent] = field(default_factory=list)
    step: Step = field(default_factory=Step)
    readings: int = 0
    unknown: int = 0

    def per_kind(self) -> dict[str, int]:
        """Events per kind."""
        return dict(Counter(e.kind.value for e in self.events))

    def flaps(self) -> dict[str, int]:
        """Per station: level changes undone within an hour (up then down, or down then up)."""
        found: Counter[str] = Counter()
        last: dict[str, AlertEvent] = {}
        for event in self.events:
            if event.kind is not EventKind.LEVEL:
                continue
            before = last.get(event.subject)
            if (
                before is not None
                and before.previous is not None
                and event.severity == before.previous
                and event.at_ns - before.at_ns < FLAP_WINDOW_NS
            ):
                found[event.subject] += 1
            last[event.subject] = event
        return dict(found)

    def reescalations(self) -> dict[str, int]:
        """Per station: escalations into a level left less than a day before."""
        found: Counter[str] = Counter()
        left: dict[tuple[str, Level], int] = {}  # (station, level) -> when it was left
        for event in self.events:
            if event.kind is not EventKind.LEVEL or event.previous is None:
                continue
            low, high = sorted((event.previous, event.severity))
            crossed = [lv for lv in Level if low < lv <= high]
            if event.severity > event.previous:
                left_at = [left.get((event.subject, lv)) for lv in crossed]
                if any(at is not None and event.at_ns - at < REENTRY_WINDOW_NS for at in left_at):
                    found[event.subject] += 1
            else:
                left.update({(event.subject, lv): event.at_ns for lv in crossed})
        return dict(found)


def replay(
    readings: Iterable[Reading],
    registry: StationRegistry,
    rules: RulesConfig | None = None,
    *,
    all_stations: bool = False,
    tick_s: float = 60.0,
    late_lag_s: float = 600.0,
) -> Backtest:
    """Replay readings through the live engine, in the order of their own times."""
    ordered = sorted(readings, key=lambda r: (r.ts_ns, r.station_id))
    result = Backtest()
    if not ordered:
        return result
    known = {s.id for s in registry.stations()}
    present = frozenset(r.station_id for r in ordered if r.station_id in known)
    scope = None if all_stations else Scope(stations=present)
    start_ns = ordered[0].ts_ns
    engine = Engine(registry, rules, scope=scope, late_lag_s=late_lag_s, started_ns=start_ns)
    tick_ns = max(1, int(tick_s * NS_PER_S))
    next_tick = start_ns + tick_ns
    for reading in ordered:
        while next_tick <= reading.ts_ns:
            result.step.extend(engine.tick(next_tick))
            next_tick += tick_ns
        if reading.station_id not in known:
            result.unknown += 1
            continue
        result.readings += 1
        result.step.extend(engine.process([reading], reading.ts_ns))
    result.events = result.step.events
    return result


def event_record(event: AlertEvent) -> dict[str, Any]:
    """An event as one JSON object (``--json``)."""
    record: dict[str, Any] = {
        "at": format_rfc3339(event.at_ns),
        "station": event.subject,
        "kind": event.kind.value,
        "rule": event.rule,
        "firing": event.firing,
        "level": event.severity.name,
    }
    if event.previous is not None:
        record["previous"] = event.previous.name
    if event.value is not None:
        record["value"] = event.value
    if event.trend_cm_h is not None:
        record["trend_cm_h"] = round(event.trend_cm_h, 2)
    if event.source is not None:
        record["source"] = event.source
    if event.expected_at_ns is not None:
        record["expected_at"] = format_rfc3339(event.expected_at_ns)
    if event.stations:
        record["stations"] = list(event.stations)
    record["late"] = event.late
    record["detail"] = event.detail
    record["id"] = event.id
    return record


async def read_influx(
    storage: InfluxStorage,
    start_ns: int,
    end_ns: int,
    station_ids: Sequence[str] | None = None,
    chunk_s: float = 6 * 3600.0,
) -> list[Reading]:
    """Readings of measurement ``telemetry`` in ``[start, end)``, read in chunks of time."""
    wanted = None if station_ids is None else set(station_ids)
    readings: list[Reading] = []
    chunk_ns = int(chunk_s * NS_PER_S)
    lower = start_ns
    while lower < end_ns:
        upper = min(end_ns, lower + chunk_ns)
        series = await storage.query(
            f"SELECT * FROM {TELEMETRY} WHERE time >= {int(lower)} AND time < {int(upper)}"  # noqa: S608 - integers only
        )
        for one in series:
            columns = one["columns"]
            for row in one["values"]:
                record = dict(zip(columns, row, strict=True))
                station = record.get("station")
                if not isinstance(station, str) or (wanted is not None and station not in wanted):
                    continue
                values = {
                    name: float(value)
                    for name, value in record.items()
                    if name not in {"time", "station", "regency", "river", "seq"}
                    and isinstance(value, int | float)
                    and not isinstance(value, bool)
                }
                if values:
                    seq = record.get("seq")
                    readings.append(
                        Reading(station, int(record["time"]), values, int(seq) if seq else None)
                    )
        lower = upper
    return readings


__all__ = [
    "Backtest",
    "BacktestError",
    "event_record",
    "parse_csv",
    "read_influx",
    "replay",
]

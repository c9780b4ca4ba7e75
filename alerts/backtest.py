"""Backtests: the live engine replayed over recorded readings (a CSV file or InfluxDB).

Readings are replayed in the order of their own timestamps, one at a time, each "arriving" at
its own time, through exactly the :class:`~alerts.engine.Engine` that runs live; the no-data
rule is ticked every ``tick_s`` (``alerts.backtest_tick_s``, 60 s) of replayed time in between
(never after the last reading: the end of a file is not a silence).

Which stations are judged (:func:`stations_to_judge`): with the deployment's own registry, only
those that have readings, so a basin office exporting 3 of its 20 gauges gets no 17 no-data
events; a registry given explicitly is the network to judge, every station as live, so one that
stays silent through the whole file gets its no-data event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alerts.engine import Engine, Scope, Step
from alerts.model import AlertEvent, EventKind
from alerts.rules.config import RulesConfig
from alerts.settings import AlertsSettings
from devices.levels import Level
from devices.readings import Reading, Rejection
from devices.readings_csv import ReadingsCsv, ReadingsCsvError, parse_readings_csv
from devices.stations import StationRegistry
from devices.timestamps import NS_PER_S, STORABLE_NS, format_rfc3339
from ingest.errors import ConfigError
from ingest.storage.base import TELEMETRY
from ingest.validation import check_reading, metric_ranges

if TYPE_CHECKING:
    from alerts.rules.forecast import ForecastRule
    from forecast.live import LiveForecaster
    from ingest.storage.influx import InfluxStorage

_ALERTS = AlertsSettings.model_fields  # the settings tree is the one source of every default
_ANY_TIME = (STORABLE_NS[1], STORABLE_NS[0])
"""A recording has no "now": every storable time is in bounds (newest, oldest)."""
FLAP_WINDOW_NS = 3600 * NS_PER_S
REENTRY_WINDOW_NS = 86400 * NS_PER_S
"""A level entered again this soon after it was left counts as a re-escalation: the tide
(every flood tide crossing a threshold its ebb falls back from) flaps at this scale, hours
apart, which the one-hour flap count does not see."""


class BacktestError(ConfigError):
    """Input a backtest cannot use; the message names the line and the problem."""


def parse_csv(text: str, source: str = "<readings>") -> ReadingsCsv:
    """Readings from CSV ``station,ts,metric,value`` (:mod:`devices.readings_csv`: any row or
    column order; rows without a value are gaps, skipped and counted).

    Raises:
        BacktestError: A missing column, a bad timestamp or value, naming the line.
    """
    try:
        return parse_readings_csv(text, source)
    except ReadingsCsvError as exc:
        raise BacktestError(str(exc)) from None


@dataclass(frozen=True, slots=True)
class Judged:
    """Which stations a backtest evaluates, and why (said in its summary).

    Attributes:
        all_stations: Every station of the registry; False: only those with readings.
        why: One sentence for the summary.
    """

    all_stations: bool
    why: str


def stations_to_judge(*, registry: str | None, asked: bool | None) -> Judged:
    """Which stations a backtest evaluates.

    Args:
        registry: The registry given explicitly (its name), or None for the deployment's own.
        asked: ``--all-stations`` (True) or ``--only-reporting`` (False); None: decide.
    """
    if asked is True:
        return Judged(True, "every station of the registry (--all-stations)")
    if asked is False:
        return Judged(False, "only the stations with readings in the file (--only-reporting)")
    if registry is not None:
        return Judged(
            True,
            f"every station of {registry}: a registry given with --stations is the network "
            "judged, as live (a station silent through the file gets its no-data event)",
        )
    return Judged(
        False,
        "only the stations with readings in the file: the deployment's own registry is "
        "narrowed to them (--all-stations judges all of it)",
    )


@dataclass(slots=True)
class Backtest:
    """What a replay decided.

    Attributes:
        events: Every event, in the order the engine emitted them.
        step: Everything, with the transitions.
        readings: Readings replayed.
        unknown: Readings of stations not in the registry (skipped).
        rejected: Reason → values the live validator would have refused (a metric the station
            does not have, a value outside its range), kept out as they are live.
        evaluated: The ids of the stations the engine judged.
    """

    events: list[AlertEvent] = field(default_factory=list)
    step: Step = field(default_factory=Step)
    readings: int = 0
    unknown: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    evaluated: list[str] = field(default_factory=list)

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
    tick_s: float = _ALERTS["backtest_tick_s"].default,
    late_lag_s: float = _ALERTS["late_lag_s"].default,
    progress: Callable[[int], None] | None = None,
    progress_every: int = 10_000,
    forecaster: LiveForecaster | None = None,
    forecast_rule: ForecastRule | None = None,
) -> Backtest:
    """Replay readings through the live engine, in the order of their own times.

    Each reading is first checked as the ingest side checks it live (the station's metrics and
    their ranges): a sentinel such as -9999 or 9999 in a recording never reaches the rules.

    Args:
        tick_s: How often the time-driven rules are ticked, in replayed time
            (``alerts.backtest_tick_s``: coarser than the live engine's ``tick_interval_s``).
        late_lag_s: As the live engine's (``alerts.late_lag_s``).
        progress: Told how many readings are done, every ``progress_every`` and at the end (a
            year of a hundred gauges is millions of readings: minutes).
        forecaster: Forecast with these models as the live engine does (``forecast`` events).
        forecast_rule: When those forecasts warn.
    """
    ordered = sorted(readings, key=lambda r: (r.ts_ns, r.station_id))
    result = Backtest()
    if not ordered:
        return result
    # Only the stations in the file: a national registry holds 100,000 others.
    ranges = {
        station.id: metric_ranges(station)
        for station in map(registry.get, {r.station_id for r in ordered})
        if station is not None
    }
    present = frozenset(ranges)
    scope = None if all_stations else Scope(stations=present)
    result.evaluated = sorted(
        (station.id for station in registry.stations()) if all_stations else present
    )
    start_ns = ordered[0].ts_ns
    engine = Engine(
        registry,
        rules,
        scope=scope,
        late_lag_s=late_lag_s,
        started_ns=start_ns,
        forecaster=forecaster,
        forecast_rule=forecast_rule,
    )
    tick_ns = max(1, int(tick_s * NS_PER_S))
    next_tick = start_ns + tick_ns
    for done, reading in enumerate(ordered):
        if progress is not None and done % progress_every == 0:
            progress(done)
        while next_tick <= reading.ts_ns:
            result.step.extend(engine.tick(next_tick))
            next_tick += tick_ns
        station_ranges = ranges.get(reading.station_id)
        if station_ranges is None:
            result.unknown += 1
            continue
        refused: list[Rejection] = []
        checked = check_reading(reading, station_ranges, *_ANY_TIME, refused)
        result.rejected.update(r.reason.value for r in refused)
        if checked is None:
            continue
        result.readings += 1
        result.step.extend(engine.process([checked], checked.ts_ns))
    result.events = result.step.events
    if progress is not None:
        progress(len(ordered))
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
    "Judged",
    "event_record",
    "parse_csv",
    "read_influx",
    "replay",
    "stations_to_judge",
]

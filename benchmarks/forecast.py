"""The forecast benchmark: skill, coverage and warnings on the shipped scenarios, and the cost
of fitting.

    siaga bench forecast                       # the figures of docs/benchmarks.md
    python -m benchmarks.forecast --fit-stations 1000 --fit-days 365

1. **Skill.** Each scenario's messages, exactly as the simulator publishes them and validated as
   ingest validates them, become a recording; models are fitted on the readings before the
   cut, and the rest is replayed through the live engine with forecasting on
   (:func:`alerts.forecasting.backtest`, what ``siaga forecast backtest`` runs). Reported per
   station at 3 h and 6 h: skill against persistence (``1 - MSE/MSE(persistence)``) over the
   whole replay and over its rising limb (the level rose over the next lead), the 80 %
   interval's coverage (over all forecasts, and over those issued on a rising limb: the level
   rose 1 cm or more in the hour before), and the SIAGA warning's lead and the error of its
   ``expected_at``.
2. **Quiet.** A dry fortnight on the same river (``tabalong-dry-fortnight``: the basin's
   afternoon showers, no storm) replayed with the wet month's models: forecast warnings counted
   (the promise: none).
3. **Fitting.** ``--fit-stations`` synthetic gauges of ``--fit-days`` of 15-minute readings,
   each with an upstream gauge and a rain gauge, fitted as ``siaga forecast fit`` fits them.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from alerts.engine import Engine, Scope
from alerts.forecasting import ForecastBacktest, backtest, fit_series, model_spec, warning_rule
from alerts.model import EventKind
from alerts.rules.forecast import ForecastRule
from alerts.settings import ForecastSettings
from devices.levels import Level
from devices.readings import Reading
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme
from forecast import skill
from forecast.live import LiveForecaster
from forecast.models import Forecast, Inputs, ModelSpec
from forecast.series import LEVEL_METRIC, NS_PER_H, Series, interpolate, series_from_readings
from ingest.validation import Limits, Validator
from simulators.plan import build_plan
from simulators.scenario import load_scenario

NS_PER_S = 1_000_000_000
REPO = Path(__file__).resolve().parent.parent
START_NS = int(datetime.fromisoformat("2026-02-01T00:00:00+07:00").timestamp()) * NS_PER_S


def registry() -> Registry:
    """The shipped registry."""
    return load_registry(REPO / "config/stations.yaml", REPO / "config/devices.yaml")


def scenario_readings(name: str, start_ns: int = START_NS) -> list[Reading]:
    """A scenario's readings as ingest would store them (its messages, validated)."""
    found = registry()
    plan = build_plan(load_scenario(name, REPO / "config/scenarios"), found, start_ns)
    validator = Validator(found, TopicScheme(), Limits(max_age_s=10 * 365 * 86400.0))
    readings: dict[tuple[str, int], Reading] = {}
    for message in plan.messages:
        now = start_ns + int(message.at_s * NS_PER_S)
        outcome = validator.validate(message.message.topic, message.message.payload, now)
        for reading in outcome.readings:
            readings.setdefault((reading.station_id, reading.ts_ns), reading)
    return sorted(readings.values(), key=lambda r: (r.ts_ns, r.station_id))


@dataclass(frozen=True, slots=True)
class StationFigures:
    """One station's figures over a replay."""

    station: str
    skill_3h: float
    skill_6h: float
    rising_skill_3h: float
    rising_skill_6h: float
    coverage: float
    rising_coverage: float
    siaga_lead_h: float | None
    siaga_error_h: float | None


def figures(result: ForecastBacktest, readings: list[Reading], cut_ns: int) -> list[StationFigures]:
    """Per forecast station: skill at 3 h and 6 h (all, rising limb), coverage, SIAGA lead."""
    levels = series_from_readings((r for r in readings if r.ts_ns >= cut_ns), LEVEL_METRIC)
    everything = series_from_readings(readings, LEVEL_METRIC)
    by_station: dict[str, list[Forecast]] = {}
    for forecast in result.forecasts:
        by_station.setdefault(forecast.station, []).append(forecast)
    found = []
    events = result.replay.events
    for station, mine in sorted(by_station.items()):
        series = levels[station]
        issued = np.array([f.issued_ns for f in mine], dtype=np.int64)
        now = np.array([f.now_cm for f in mine])
        row: dict[str, float] = {}
        inside = []
        rising_inside = []
        past = everything[station]
        hour_ago = np.searchsorted(past.times_ns, issued - NS_PER_H, side="right") - 1
        before = np.where(hour_ago >= 0, past.values[np.maximum(hour_ago, 0)], np.nan)
        rising_at_issue = now - before >= 1.0
        for lead in (3, 6):
            central = np.array([f.values[lead - 1] for f in mine])
            observed = interpolate(series, issued + lead * NS_PER_H, 3 * NS_PER_H)
            rising = observed - now > 5.0
            row[f"all_{lead}"] = skill.skill_score(central, now, observed)
            row[f"rise_{lead}"] = skill.skill_score(central[rising], now[rising], observed[rising])
        for lead in range(1, len(mine[0].values) + 1):
            observed = interpolate(series, issued + lead * NS_PER_H, 3 * NS_PER_H)
            low = np.array([f.low[lead - 1] for f in mine])
            high = np.array([f.high[lead - 1] for f in mine])
            ok = np.isfinite(observed)
            covered = (observed >= low) & (observed <= high)
            inside.extend(covered[ok].tolist())
            rising_inside.extend(covered[ok & rising_at_issue].tolist())
        warning = next(
            (e for e in events if e.kind is EventKind.FORECAST and e.subject == station
             and e.firing and e.severity == Level.SIAGA),
            None,
        )  # fmt: skip
        crossing = next(
            (e for e in events if e.kind is EventKind.LEVEL and e.subject == station
             and e.severity >= Level.SIAGA),
            None,
        )  # fmt: skip
        lead_h = error_h = None
        if warning is not None and crossing is not None and warning.expected_at_ns is not None:
            lead_h = (crossing.at_ns - warning.at_ns) / NS_PER_H
            error_h = (warning.expected_at_ns - crossing.at_ns) / NS_PER_H
        found.append(
            StationFigures(
                station, row["all_3"], row["all_6"], row["rise_3"], row["rise_6"],
                float(np.mean(inside)) if inside else float("nan"),
                float(np.mean(rising_inside)) if rising_inside else float("nan"), lead_h, error_h,
            )
        )  # fmt: skip
    return found


def quiet_warnings(models_of: ForecastBacktest, readings: list[Reading], rule: ForecastRule) -> int:
    """Forecast warnings over a quiet recording, with models fitted elsewhere."""
    found = registry()
    engine = Engine(
        found,
        scope=Scope(stations=frozenset(r.station_id for r in readings)),
        started_ns=readings[0].ts_ns,
        forecaster=LiveForecaster(models_of.models),
        forecast_rule=rule,
    )
    count = 0
    for reading in readings:
        step = engine.process([reading], reading.ts_ns)
        count += sum(1 for e in step.events if e.kind is EventKind.FORECAST and e.firing)
    return count


def fit_cost(stations: int, days: float, spec: ModelSpec) -> tuple[float, float]:
    """Wall and CPU seconds to fit ``stations`` gauges of ``days`` of 15-minute readings.

    Pairs of gauges (the lower one 3 h below the upper, both fed by one rain gauge), fitted as
    ``siaga forecast fit`` fits them once the series are read, with its progress bar.
    """
    rng = np.random.default_rng(11)
    count = int(days * 96)
    times = START_NS + np.arange(count, dtype=np.int64) * 900 * NS_PER_S
    levels: dict[str, Series] = {}
    rain: dict[str, Series] = {}
    inputs: dict[str, Inputs] = {}
    response = np.exp(-np.arange(64) / 24.0)
    for pair in range(max(stations // 2, 1)):
        up, down, gauge = f"u{pair}", f"d{pair}", f"r{pair}"
        fallen = np.where(rng.random(count) < 0.02, rng.exponential(3.0, count), 0.0)
        upper = 200 + np.convolve(fallen, response, mode="full")[:count] + rng.normal(0, 1, count)
        lower = np.concatenate([np.full(12, upper[0]), upper[:-12]]) * 0.9 + 30
        levels[up] = Series(times, upper)
        levels[down] = Series(times, lower + rng.normal(0, 1, count))
        rain[gauge] = Series(times, fallen)
        inputs[up] = Inputs(up, (), (gauge,))
        inputs[down] = Inputs(down, ((up, 3 * NS_PER_H),), (gauge,))
    began, cpu = time.perf_counter(), time.process_time()
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"fitting {len(inputs)} stations", total=len(inputs))
        fit_series(
            inputs, levels, rain, spec, progress=lambda done, _: bar.update(task, completed=done)
        )
    return time.perf_counter() - began, time.process_time() - cpu


RUNS = (("tabalong-rain-flood", 21.0), ("way-tulang-bawang-flood", 8.0))
"""Each scenario and the day its models are trained until (Way Tulang Bawang's recording starts
with the flood: its first eight days, the rise and the crest, are what the models learn from;
the replay is the slow recession and the tidal reach)."""
QUIET = ("tabalong-dry-fortnight", "tabalong-rain-flood")
"""A dry fortnight, judged with the models of the wet month on the same river."""


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f} h"


def run_forecast_benchmark(fit_stations: int = 0, fit_days: float = 365.0) -> None:
    """Measure and print."""
    say = print
    settings = ForecastSettings()
    spec = model_spec(settings)
    rule = warning_rule(settings)
    say(f"forecast benchmark: python {platform.python_version()}, load {_load()}")
    trained: dict[str, ForecastBacktest] = {}
    for name, train_days in RUNS:
        readings = scenario_readings(name)
        cut = START_NS + int(train_days * 86400 * NS_PER_S)
        result = backtest(readings, registry(), train_until_ns=cut, spec=spec, rule=rule)
        trained[name] = result
        say(
            f"== {name}: fitted on {train_days:g} days, replayed {result.replay.readings} "
            f"readings, {len(result.forecasts)} forecasts"
        )
        say(
            "  station               skill 3h  6h   rising 3h  6h   80% covers  rising  "
            "SIAGA lead  error"
        )
        for found in figures(result, readings, cut):
            say(
                f"  {found.station:<20} {found.skill_3h:7.2f} {found.skill_6h:5.2f}   "
                f"{found.rising_skill_3h:7.2f} {found.rising_skill_6h:5.2f}   "
                f"{found.coverage:8.0%}  {found.rising_coverage:7.0%}    "
                f"{_hours(found.siaga_lead_h):>9}  "
                f"{_hours(found.siaga_error_h):>7}"
            )
        for station, model in sorted(result.models.items()):
            note = f" ({model.reason})" if model.reason else ""
            say(f"  model {station}: {model.method}{note}")
    quiet_name, models_of = QUIET
    quiet = scenario_readings(quiet_name)
    warnings = quiet_warnings(trained[models_of], quiet, rule)
    say(
        f"== {quiet_name}: {len(quiet)} readings with the models of {models_of}: "
        f"{warnings} forecast warnings (promise: 0)"
    )
    if fit_stations:
        wall, cpu = fit_cost(fit_stations, fit_days, spec)
        say(
            f"fit: {fit_stations} stations x {fit_days:g} days of 15-minute readings: "
            f"{wall:.1f} s wall, {cpu:.1f} s CPU (target < 300 s)"
        )


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.forecast``."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--fit-stations", type=int, default=0)
    parser.add_argument("--fit-days", type=float, default=365.0)
    args = parser.parse_args(argv)
    run_forecast_benchmark(args.fit_stations, args.fit_days)


if __name__ == "__main__":
    main()

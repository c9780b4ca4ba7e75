"""Forecasting for alerting: models fitted from recorded readings, the live forecaster the engine
runs, and the forecast backtest (``siaga forecast backtest``) with its skill per lead.

The models themselves are :mod:`forecast` (pure); this module joins them to the engine, the
settings tree and the backtest's replay.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from alerts.backtest import Backtest, replay
from alerts.rules.config import RulesConfig
from alerts.rules.forecast import ForecastRule
from devices.readings import Reading
from devices.stations import StationRegistry
from devices.timestamps import format_rfc3339
from forecast import store
from forecast.live import LiveForecaster
from forecast.models import (
    FittedModel,
    Forecast,
    Inputs,
    LeadSkill,
    ModelSpec,
    fit,
    registry_inputs,
)
from forecast.series import (
    LEVEL_METRIC,
    NS_PER_H,
    RAIN_METRIC,
    Series,
    interpolate,
    series_from_readings,
)

if TYPE_CHECKING:
    from alerts.settings import ForecastSettings

log = logging.getLogger(__name__)


def model_spec(settings: ForecastSettings, horizon_h: int | None = None) -> ModelSpec:
    """The model specification the settings give (``horizon_h`` overrides theirs)."""
    return ModelSpec(
        horizon_h=horizon_h or settings.horizon_h,
        coverage=settings.coverage,
        min_rows=settings.min_rows,
        folds=settings.folds,
        issue_step_s=settings.issue_step_s,
        max_stale_s=settings.max_stale_s,
        error_correction=settings.error_correction,
        rising_cm_per_h=settings.rising_cm_per_h,
        wet_mm=settings.wet_mm,
        min_regime_rows=settings.min_regime_rows,
    )


def warning_rule(settings: ForecastSettings) -> ForecastRule:
    """When forecasts warn, from the settings."""
    return ForecastRule(
        confirm=settings.confirm,
        min_rise_cm=settings.min_rise_cm,
        hold_s=settings.hold_s,
        recovery_band_pct=settings.recovery_band_pct,
        coverage=settings.coverage,
    )


def live_forecaster(settings: ForecastSettings) -> LiveForecaster | None:
    """The forecaster of the current models in ``forecast.models_dir`` (None: forecasting is
    off, or no model has been fitted yet: ``siaga forecast fit``).

    Raises:
        ModelStoreError: A model file that cannot be read.
    """
    if not settings.enabled:
        return None
    models = store.load_current(settings.models_dir)
    if not models:
        log.info("no forecast models in %s: forecasting off", settings.models_dir)
        return None
    log.info("forecasting %d stations with the models in %s", len(models), settings.models_dir)
    return LiveForecaster(models, settings.max_stale_s)


def fit_models(
    readings: Iterable[Reading],
    registry: StationRegistry,
    spec: ModelSpec,
    *,
    until_ns: int | None = None,
    stations: Sequence[str] | None = None,
    fitted_at_ns: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, FittedModel]:
    """A model for every water-level station with readings (or those named), fitted on the
    readings before ``until_ns``.

    Args:
        progress: Told (stations done, stations in all) after each station.
    """
    readings = list(readings)
    levels = series_from_readings(readings, LEVEL_METRIC)
    rain = series_from_readings(readings, RAIN_METRIC)
    wanted = set(stations) if stations is not None else set(levels)
    inputs = {s: i for s, i in registry_inputs(registry).items() if s in wanted}
    return fit_series(
        inputs, levels, rain, spec, until_ns=until_ns, fitted_at_ns=fitted_at_ns, progress=progress
    )


def fit_series(
    inputs: Mapping[str, Inputs],
    levels: Mapping[str, Series],
    rain: Mapping[str, Series],
    spec: ModelSpec,
    *,
    until_ns: int | None = None,
    fitted_at_ns: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, FittedModel]:
    """A model for each station of ``inputs`` from series already read (see :func:`fit_models`)."""
    models = {}
    for done, (station, station_inputs) in enumerate(sorted(inputs.items()), start=1):
        models[station] = fit(
            spec, station_inputs, levels, rain, until_ns=until_ns, fitted_at_ns=fitted_at_ns
        )
        if progress is not None:
            progress(done, len(inputs))
    return models


@dataclass(frozen=True, slots=True)
class LeadScore(LeadSkill):
    """A station's forecasts at one lead, scored over a replayed period."""

    station: str

    def record(self) -> dict[str, Any]:
        """The ``{"kind": "skill", ...}`` line of ``siaga forecast backtest --json``."""
        return {
            "kind": "skill",
            "station": self.station,
            "lead_h": self.lead_h,
            "n": self.n,
            "nse": _finite(self.nse),
            "nse_persistence": _finite(self.nse_persistence),
            "rmse_cm": _finite(self.rmse_cm),
            "rmse_persistence_cm": _finite(self.rmse_persistence_cm),
        }


def _finite(value: float) -> float | None:
    return round(value, 4) if math.isfinite(value) else None


@dataclass(slots=True)
class ForecastBacktest:
    """What a forecast backtest found.

    Attributes:
        models: The models fitted before the cut.
        replay: The engine's replay (events, with the ``forecast`` ones).
        forecasts: Every forecast issued during the replay.
        scores: Per station and lead, over the replayed period.
    """

    models: dict[str, FittedModel]
    replay: Backtest
    forecasts: list[Forecast] = field(default_factory=list)
    scores: list[LeadScore] = field(default_factory=list)


def backtest(
    readings: Sequence[Reading],
    registry: StationRegistry,
    *,
    train_until_ns: int,
    spec: ModelSpec,
    rule: ForecastRule,
    rules: RulesConfig | None = None,
    late_lag_s: float = 600.0,
    progress: Callable[[int], None] | None = None,
) -> ForecastBacktest:
    """Fit every station's model before ``train_until_ns``, then replay the readings from it on
    through the live engine with forecasting on, and score every forecast issued."""
    models = fit_models(readings, registry, spec, until_ns=train_until_ns)
    issued: list[Forecast] = []
    forecaster = LiveForecaster(models, spec.max_stale_s, on_issue=issued.append)
    for reading in readings:
        if reading.ts_ns >= train_until_ns:
            continue
        for metric in (LEVEL_METRIC, RAIN_METRIC):
            value = reading.values.get(metric)
            if value is not None:
                forecaster.prime(reading.station_id, reading.ts_ns, value)
    replayed = replay(
        [r for r in readings if r.ts_ns >= train_until_ns],
        registry,
        rules,
        late_lag_s=late_lag_s,
        progress=progress,
        forecaster=forecaster,
        forecast_rule=rule,
    )
    levels = series_from_readings((r for r in readings if r.ts_ns >= train_until_ns), LEVEL_METRIC)
    scores = score(issued, levels, spec)
    return ForecastBacktest(models, replayed, issued, scores)


def score(
    forecasts: Sequence[Forecast], levels: dict[str, Any], spec: ModelSpec
) -> list[LeadScore]:
    """Per station and lead, the forecasts against the recorded levels (and persistence)."""
    by_station: dict[str, list[Forecast]] = {}
    for forecast in forecasts:
        by_station.setdefault(forecast.station, []).append(forecast)
    found = []
    max_gap = int(spec.max_gap_s * 1e9)
    for station in sorted(by_station):
        series = levels.get(station)
        if series is None:
            continue
        mine = by_station[station]
        issued = np.fromiter((f.issued_ns for f in mine), np.int64, len(mine))
        now = np.fromiter((f.now_cm for f in mine), np.float64, len(mine))
        horizon = min(len(f.values) for f in mine)
        for lead in range(1, horizon + 1):
            central = np.fromiter((f.values[lead - 1] for f in mine), np.float64, len(mine))
            low = np.fromiter((f.low[lead - 1] for f in mine), np.float64, len(mine))
            high = np.fromiter((f.high[lead - 1] for f in mine), np.float64, len(mine))
            observed = interpolate(series, issued + lead * NS_PER_H, max_gap)
            n = int(np.isfinite(observed).sum())
            found.append(
                LeadScore.measured(lead, n, central, now, observed, low, high, station=station)
            )
    return found


def forecast_rows(forecasts: Iterable[Forecast]) -> Iterable[str]:
    """The ``--forecasts-out`` CSV: ``station,issued_at,lead_h,value,low,high``, header first."""
    yield "station,issued_at,lead_h,value,low,high"
    for forecast in forecasts:
        issued = format_rfc3339(forecast.issued_ns)
        for lead, (value, low, high) in enumerate(
            zip(forecast.values, forecast.low, forecast.high, strict=True), start=1
        ):
            yield f"{forecast.station},{issued},{lead},{value:.2f},{low:.2f},{high:.2f}"


__all__ = [
    "ForecastBacktest",
    "LeadScore",
    "backtest",
    "fit_models",
    "fit_series",
    "forecast_rows",
    "live_forecaster",
    "model_spec",
    "score",
    "warning_rule",
]

"""The live forecaster: the recent past of every station a model reads, and forecasts re-issued
on each new reading of a station or of one of its inputs. Pure: the alert engine feeds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from forecast.models import FittedModel, Forecast, Predictor
from forecast.series import NS_PER_S, PointSampler


class LiveForecaster:
    """Issues forecasts from fitted models as readings arrive.

    Args:
        models: Station → its current fitted model.
        max_stale_s: A reading older than this does not stand for "now".
        on_issue: Told every forecast issued (backtests keep them all).
    """

    def __init__(
        self,
        models: Mapping[str, FittedModel],
        max_stale_s: float = 7200.0,
        on_issue: Callable[[Forecast], None] | None = None,
    ) -> None:
        self._on_issue = on_issue
        self._predictors = {station: Predictor(model) for station, model in models.items()}
        self._sampler = PointSampler(int(max_stale_s * NS_PER_S))
        self._dependents: dict[str, list[str]] = {}
        self._rain: set[str] = set()
        self._issued: dict[str, int] = {}
        self.latest: dict[str, Forecast] = {}
        """Each station's newest forecast (what the API serves)."""
        for station, model in sorted(models.items()):
            keep = model.lookback_ns
            self._sampler.watch(station, keep)
            self._dependents.setdefault(station, []).append(station)
            for source, _ in model.upstream:
                self._sampler.watch(source, keep)
                self._dependents.setdefault(source, []).append(station)
            for gauge in model.rain:
                self._sampler.watch(gauge, keep, rain=True)
                self._rain.add(gauge)
                self._dependents.setdefault(gauge, []).append(station)

    @property
    def models(self) -> dict[str, FittedModel]:
        """The models in use."""
        return {station: p.model for station, p in self._predictors.items()}

    def watches(self, station: str) -> bool:
        """Whether any model reads ``station``."""
        return station in self._dependents

    def observe(
        self,
        station: str,
        ts_ns: int,
        *,
        level_cm: float | None = None,
        rain_mm: float | None = None,
    ) -> list[Forecast]:
        """Record a reading and re-issue the forecasts that read it.

        Only the station's own metric that models read is kept (a gauge's level, a rain gauge's
        rain). A forecast is issued at the reading's time and never before the station's last
        one: a late reading of the past updates the record, not the forecasts already given.
        """
        dependents = self._dependents.get(station)
        if dependents is None:
            return []
        value = rain_mm if station in self._rain else level_cm
        if value is None or not self._sampler.add(station, ts_ns, value):
            return []
        issued = []
        for target in dependents:
            if self._issued.get(target, -(2**63)) >= ts_ns:
                continue
            forecast = self._predictors[target].predict(self._sampler, ts_ns)
            if forecast is None:
                continue
            self._issued[target] = ts_ns
            self.latest[target] = forecast
            issued.append(forecast)
            if self._on_issue is not None:
                self._on_issue(forecast)
        return issued

    def prime(self, station: str, ts_ns: int, value: float) -> None:
        """Record a reading of the past without forecasting (a backtest's history before it
        starts replaying)."""
        if station in self._dependents:
            self._sampler.add(station, ts_ns, value)

    def dump(self, station: str) -> tuple[int | None, list[int], list[float]]:
        """A station's part of the state: its last issue time and the past kept of it."""
        times, values = self._sampler.dump(station)
        return self._issued.get(station), times, values

    def load(
        self, station: str, issued_ns: int | None, times: Sequence[int], values: Sequence[float]
    ) -> None:
        """Put back what :meth:`dump` gave (after a restart, before any reading)."""
        if issued_ns is not None:
            self._issued[station] = issued_ns
        self._sampler.load(station, times, values)

    def dependents(self, station: str) -> Iterable[str]:
        """The stations whose forecasts read ``station``."""
        return self._dependents.get(station, ())


def forecast_from_history(
    model: FittedModel,
    history: Mapping[str, Sequence[tuple[int, float]]],
    max_stale_s: float = 7200.0,
) -> Forecast | None:
    """A model's forecast as of its station's newest reading, from recorded history.

    Args:
        model: The station's model.
        history: Station → ``(time, value)`` ascending: the station's levels, its upstream
            stations' levels and its rain gauges' rain, back to ``model.lookback_ns``.
        max_stale_s: A reading older than this does not stand for "now".

    Returns:
        The forecast (None when the station has no reading).
    """
    sampler = PointSampler(int(max_stale_s * NS_PER_S))
    for station, points in history.items():
        sampler.watch(station, model.lookback_ns, rain=station in model.rain)
        for ts_ns, value in points:
            sampler.add(station, ts_ns, value)
    newest = sampler.newest(model.station)
    if newest is None:
        return None
    return Predictor(model).predict(sampler, newest[0])


__all__ = ["LiveForecaster", "forecast_from_history"]

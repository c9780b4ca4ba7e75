"""A station's forecast for the API: its current model (``siaga forecast fit``'s files) run on
the recent history of its inputs read from storage, as the alert engine runs it live."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

from alerts.settings import ForecastSettings
from dashboards.api.schemas import ForecastPointPublic, ForecastPublic, LeadSkillPublic
from dashboards.api.views import to_datetime
from devices.stations import Station
from forecast import store
from forecast.live import forecast_from_history
from forecast.models import FittedModel
from forecast.series import LEVEL_METRIC, NS_PER_H, NS_PER_S, RAIN_METRIC
from ingest.storage.base import Storage

MAX_POINTS = 20_000


class ModelCache:
    """The newest model of each station, read again when a new version appears."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._cached: dict[str, FittedModel] = {}

    def current(self, station_id: str) -> FittedModel | None:
        """The station's newest model (None: never fitted)."""
        known = store.versions(self._directory, station_id)
        if not known:
            return None
        cached = self._cached.get(station_id)
        if cached is None or cached.version != known[-1]:
            cached = store.load(self._directory, station_id, known[-1])
            if cached is None:
                return None
            self._cached[station_id] = cached
        return cached


async def station_forecast(
    storage: Storage, settings: ForecastSettings, model: FittedModel, now_ns: int
) -> ForecastPublic | None:
    """The forecast as of the station's newest reading (None: no reading recent enough).

    On the station's own clock: a station whose newest reading is older than ``now_ns`` (a
    replay, back-dated data, a silent station) is forecast from that reading, as its chart
    ends there; the forecast's ``issued_at`` says when that was.
    """
    newest = (await storage.latest([model.station])).get(model.station)
    end = (now_ns if newest is None else min(now_ns, newest.ts_ns)) + 1
    start = end - model.lookback_ns - int(settings.max_stale_s * NS_PER_S)
    inputs = [(model.station, LEVEL_METRIC)]
    inputs += [(source, LEVEL_METRIC) for source, _ in model.upstream]
    inputs += [(gauge, RAIN_METRIC) for gauge in model.rain]
    found = await asyncio.gather(
        *(storage.readings(s, metric, start, end, MAX_POINTS) for s, metric in inputs)
    )
    history = {station: points for (station, _), points in zip(inputs, found, strict=True)}
    forecast = forecast_from_history(model, history, settings.max_stale_s)
    if forecast is None:
        return None
    return ForecastPublic(
        station=model.station,
        issued_at=to_datetime(forecast.issued_ns),
        now_cm=forecast.now_cm,
        method=forecast.method,
        reason=forecast.reason,
        coverage=settings.coverage,
        model_version=model.version,
        trained_from=to_datetime(model.trained_from_ns),
        trained_to=to_datetime(model.trained_to_ns),
        points=[
            ForecastPointPublic(
                lead_h=lead,
                at=to_datetime(forecast.issued_ns + lead * NS_PER_H),
                value_cm=round(value, 1),
                low_cm=round(low, 1),
                high_cm=round(high, 1),
            )
            for lead, (value, low, high) in enumerate(
                zip(forecast.values, forecast.low, forecast.high, strict=True), start=1
            )
        ],
        skill=[
            LeadSkillPublic(
                lead_h=s.lead_h,
                n=s.n,
                nse=_number(s.nse),
                nse_persistence=_number(s.nse_persistence),
                skill=_number(s.skill),
                coverage=_number(s.coverage),
            )
            for s in model.skill
        ],
    )


def _number(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def no_model_detail(station: Station) -> str:
    """Why there is no forecast (a person reads it)."""
    return f"no forecast model for {station.name}: fit one with siaga forecast fit"

"""Stage forecasts: a specification, a fit, and a fitted model that predicts with intervals.

The method is the field's usual start for gauged rivers (see docs/forecasting.md for what was
tried and its figures): **direct multi-step lagged regression (ARX)**, one least-squares fit
per lead hour 1..``horizon_h``, of the *change* of the level from now, on

- the station's own level and trend (the change over the last 1 h and 3 h, and the distance
  from its mean level, which carries the recession back towards it);
- each station directly upstream (a registry ``downstream`` link to this one), at its travel
  time τ: the change between the water arriving now (upstream at ``t - τ``) and the water
  arriving at the lead (upstream at ``t + lead - τ``, or the latest reading when the lead is
  beyond τ). A pure lag of the upstream level is recovered exactly;
- the catchment's rain (the mean over the station's ``rain_gauges``) summed over windows of the
  last 3, 3-6, 6-12 and 12-24 hours;
- error correction (an option, off by default): the last hour's error of the model's own
  1-hour forecast, a term of its own.

The change from now is fitted, not the level, so the forecast is anchored to the latest
observation and persistence is the model with every coefficient zero: the baseline and the
fallback. A station with too little history, or whose inputs are silent at issue time,
forecasts persistence and says why. The 80 % interval comes from empirical quantiles of
held-out residuals, per lead and per regime at issue time (rising or not over the last hour,
wet or dry over the last 6 hours of the catchment's rain), relative to the change the model
foresees (a bigger flood than any held out gets a wider interval). A regime with too few
held-out residuals borrows the quantiles of its trend (wet and dry pooled), then of all.

Fitted models are plain data (:meth:`FittedModel.to_dict`), saved and versioned by
:mod:`forecast.store`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt

from devices.stations import StationRegistry
from forecast import skill
from forecast.series import (
    LEVEL_METRIC,
    NS_PER_H,
    NS_PER_S,
    RAIN_METRIC,
    ArraySampler,
    Series,
    interpolate,
)

FloatArray = npt.NDArray[np.float64]
RAIN_WINDOWS_H: tuple[tuple[int, int], ...] = ((0, 3), (3, 6), (6, 12), (12, 24))
"""Rain summed over ``(t - a h, t - b h]`` for each ``(b, a)``: the catchment's recent rain."""
ARX = "arx"
PERSISTENCE = "persistence"
MODEL_FORMAT = 2
"""The model file's format: 1 had two regimes (the level rose or held over the last hour, or it
fell); 2 has four (:data:`REGIMES`) with their thresholds. Format 1 files are read as format 2
with the thresholds that give their old regimes back; a newer format is refused."""
STEADY_DRY, RISING_DRY, STEADY_WET, RISING_WET = 0, 1, 2, 3
REGIMES = ("steady/falling, dry", "rising, dry", "steady/falling, wet", "rising, wet")
"""The intervals' regimes at issue time: rising (the level rose by ``rising_cm_per_h`` or more
over the last hour) or not, and wet (the catchment's rain over the last 6 hours reached
``wet_mm``) or dry. Index = rising + 2 * wet."""


class Sampler(Protocol):
    """What the features read: levels and rain at instants (scalars or numpy columns)."""

    def level(self, station: str, t: Any) -> Any:
        """The newest value at or before ``t``."""
        ...

    def levels(self, station: str, instants: Sequence[Any]) -> list[Any]:
        """:meth:`level` at each of ascending ``instants``."""
        ...

    def rain(self, gauges: Sequence[str], a: Any, b: Any) -> Any:
        """Mean rain reported in ``(a, b]``."""
        ...


@dataclass(frozen=True, slots=True)
class Inputs:
    """What a station's model may use, from the registry alone.

    Attributes:
        station: The water-level station forecast.
        upstream: ``(station, travel time in ns)`` of each station draining directly to it.
        rain: Its ``rain_gauges``.
    """

    station: str
    upstream: tuple[tuple[str, int], ...] = ()
    rain: tuple[str, ...] = ()


def registry_inputs(registry: StationRegistry) -> dict[str, Inputs]:
    """Every water-level station's inputs: upstream links turned round, and its rain gauges."""
    stations = registry.stations()
    upstream: dict[str, list[tuple[str, int]]] = {}
    for station in stations:
        for link in station.downstream:
            upstream.setdefault(link.station, []).append(
                (station.id, int(link.travel_min * 60 * NS_PER_S))
            )
    found = {}
    for station in stations:
        if LEVEL_METRIC not in station.metrics:
            continue
        gauges = tuple(
            g
            for g in station.rain_gauges
            if (gauge := registry.get(g)) is not None and RAIN_METRIC in gauge.metrics
        )
        found[station.id] = Inputs(station.id, tuple(sorted(upstream.get(station.id, ()))), gauges)
    return found


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """How models are fitted (``forecast`` in the settings tree gives these).

    Attributes:
        horizon_h: Leads 1..horizon_h hours.
        coverage: The central interval's probability (0.8: the 10th to the 90th percentile).
        min_rows: Fewer usable issue times than this for a lead: persistence (576: six days
            of 15-minute readings; a model fitted on less, on four days of one flood's rising
            limb, went on rising after the crest: skill -10 at 3 h, docs/forecasting.md).
        folds: Blocked folds in time: each is predicted by the model fitted on the others, to
            score the model and to draw its interval from residuals it never saw.
        issue_step_s: Issue times in the fit at most this often (a station's readings).
        max_stale_s: A station's newest reading older than this does not stand for "now".
        max_gap_s: An outcome is interpolated between readings no further apart than this.
        error_correction: Use the last hour's error of the 1-hour forecast as a term (off by
            default: it adds skill at 1-2 h only and costs a sixth of a live forecast's time;
            docs/forecasting.md).
        rising_cm_per_h: A rise over the last hour of this much or more is the rising regime
            of the intervals (below: steady or falling).
        wet_mm: The catchment's rain over the last 6 hours of this much or more is the wet
            regime (a station without rain gauges is always dry).
        min_regime_rows: A regime with fewer held-out residuals borrows the quantiles of its
            trend (wet and dry pooled), then of every regime.
    """

    horizon_h: int = 12
    coverage: float = 0.8
    min_rows: int = 576
    folds: int = 5
    issue_step_s: float = 900.0
    max_stale_s: float = 7200.0
    max_gap_s: float = 3 * 3600.0
    error_correction: bool = False
    rising_cm_per_h: float = 1.0
    wet_mm: float = 1.0
    min_regime_rows: int = 50


@dataclass(frozen=True, slots=True)
class LeadSkill:
    """How a model did at one lead, on data it was not fitted on.

    Attributes:
        skill: ``1 - MSE / MSE(persistence)``.
        coverage: Share of outcomes inside the interval.
    """

    lead_h: int
    n: int
    nse: float
    nse_persistence: float
    rmse_cm: float
    rmse_persistence_cm: float
    skill: float
    coverage: float

    @classmethod
    def measured(  # noqa: PLR0917 - the arrays a score is measured on
        cls,
        lead_h: int,
        n: int,
        central: npt.ArrayLike,
        persistence: npt.ArrayLike,
        observed: npt.ArrayLike,
        low: npt.ArrayLike,
        high: npt.ArrayLike,
        **more: Any,
    ) -> Self:
        """The scores of forecasts at ``lead_h`` against what was then observed.

        Args:
            lead_h: The lead, in hours.
            n: How many of them had an outcome.
            central: The central forecasts.
            persistence: The level at each forecast's issue (persistence's forecast).
            observed: The level ``lead_h`` hours later (NaN where unknown).
            low: The intervals' lower ends.
            high: The intervals' upper ends.
            more: A subclass's further fields.
        """
        return cls(
            lead_h=lead_h,
            n=n,
            nse=skill.nse(central, observed),
            nse_persistence=skill.nse(persistence, observed),
            rmse_cm=skill.rmse(central, observed),
            rmse_persistence_cm=skill.rmse(persistence, observed),
            skill=skill.skill_score(central, persistence, observed),
            coverage=skill.coverage(low, high, observed),
            **more,
        )


# Not frozen: a frozen dataclass costs several times as much to build, and one is built for
# every reading of a station or of its inputs. Treat instances as immutable all the same.
@dataclass(slots=True)
class Forecast:
    """A forecast of one station's level, issued at one instant.

    Attributes:
        issued_ns: The instant it describes "now" at (the reading that caused it).
        now_cm: The level at issue (the station's newest reading).
        values: The expected level at leads 1..horizon hours.
        low: The interval's lower bound at each lead.
        high: Its upper bound.
        method: ``arx``, or ``persistence`` (the baseline, or a fallback: see ``reason``).
        reason: Why persistence, when it is.
    """

    station: str
    issued_ns: int
    now_cm: float
    values: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    method: str
    reason: str = ""

    def at_ns(self, lead_h: int) -> int:
        """The instant of a lead."""
        return self.issued_ns + lead_h * NS_PER_H


@dataclass(frozen=True, slots=True)
class FittedModel:
    """A station's fitted model: plain data, saved and versioned.

    Attributes:
        method: ``arx`` or ``persistence``.
        reason: Why persistence, when it is (too little history, ...).
        upstream: The upstream inputs used, with travel times (ns).
        rain: The rain gauges used.
        level_mean: The mean level over the training window.
        terms: The names of the regression's columns (for people and docs).
        coef: Per lead, the coefficients of :attr:`terms`.
        scale: Per lead, the typical change foreseen (cm): the interval's quantiles are of the
            residual divided by this plus the change foreseen (empty: in cm, unscaled).
        stage1: The 1-hour model without error correction (to compute the error term).
        low: Per regime (:data:`REGIMES`), per lead, the residual quantile below.
        high: The same above.
        rising_cm_per_h: The rising regime's threshold (format 1 files: 0, "rose or held").
        wet_mm: The wet regime's threshold (format 1 files: infinite, never wet).
        regime_rows: Per regime, the held-out residuals it had at lead 1 (fewer than the
            fit's ``min_regime_rows``: it borrowed pooled quantiles).
        trained_from_ns: The training window's first reading.
        trained_to_ns: Its last.
        rows: Issue times used.
        skill: Per lead, over the folds, each predicted by a model that did not see it.
        version: Given by the store.
    """

    station: str
    method: str
    horizon_h: int
    reason: str = ""
    upstream: tuple[tuple[str, int], ...] = ()
    rain: tuple[str, ...] = ()
    error_correction: bool = False
    level_mean: float = 0.0
    terms: tuple[str, ...] = ()
    coef: tuple[tuple[float, ...], ...] = ()
    scale: tuple[float, ...] = ()
    stage1: tuple[float, ...] = ()
    low: tuple[tuple[float, ...], ...] = ((), (), (), ())
    high: tuple[tuple[float, ...], ...] = ((), (), (), ())
    rising_cm_per_h: float = 1.0
    wet_mm: float = 1.0
    regime_rows: tuple[int, ...] = ()
    max_stale_s: float = 7200.0
    trained_from_ns: int = 0
    trained_to_ns: int = 0
    rows: int = 0
    skill: tuple[LeadSkill, ...] = ()
    version: int = 0
    fitted_at_ns: int = 0

    @property
    def lookback_ns(self) -> int:
        """How far back its features read (what a live forecaster keeps)."""
        back = 4 * NS_PER_H
        for _, travel in self.upstream:
            back = max(back, travel + 2 * NS_PER_H)
        if self.rain:
            back = max(back, (RAIN_WINDOWS_H[-1][1] + 2) * NS_PER_H)
        return back + int(self.max_stale_s * NS_PER_S)

    def to_dict(self) -> dict[str, Any]:
        """The model as JSON-ready data."""
        return {
            "format": MODEL_FORMAT,
            "station": self.station,
            "method": self.method,
            "horizon_h": self.horizon_h,
            "reason": self.reason,
            "upstream": [list(u) for u in self.upstream],
            "rain": list(self.rain),
            "error_correction": self.error_correction,
            "level_mean": self.level_mean,
            "terms": list(self.terms),
            "coef": [list(c) for c in self.coef],
            "scale": list(self.scale),
            "stage1": list(self.stage1),
            "low": [list(q) for q in self.low],
            "high": [list(q) for q in self.high],
            "rising_cm_per_h": self.rising_cm_per_h,
            "wet_mm": _json_number(self.wet_mm),
            "regime_rows": list(self.regime_rows),
            "max_stale_s": self.max_stale_s,
            "trained_from_ns": self.trained_from_ns,
            "trained_to_ns": self.trained_to_ns,
            "rows": self.rows,
            "skill": [
                {k: _json_number(getattr(s, k)) for k in LeadSkill.__slots__} for s in self.skill
            ],
            "version": self.version,
            "fitted_at_ns": self.fitted_at_ns,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FittedModel:
        """A model from :meth:`to_dict`'s data (format 1 or 2).

        Raises:
            ValueError: A format newer than :data:`MODEL_FORMAT` (written by a newer Siaga).
        """
        version = int(data.get("format", 1))
        if version > MODEL_FORMAT:
            raise ValueError(
                f"model format {version} is newer than this Siaga reads ({MODEL_FORMAT}): "
                "upgrade Siaga, or refit with `siaga forecast fit`"
            )
        low = tuple(tuple(float(v) for v in q) for q in data.get("low", ((), ())))
        high = tuple(tuple(float(v) for v in q) for q in data.get("high", ((), ())))
        rising_cm_per_h = float(data.get("rising_cm_per_h", 1.0))
        wet = data.get("wet_mm", 1.0)
        wet_mm = math.inf if wet is None else float(wet)
        if version == 1:
            # Two regimes, (rose or held, fell), become four that split the same way: rising
            # from a change of 0, never wet.
            low, high = _two_regimes(low), _two_regimes(high)
            rising_cm_per_h, wet_mm = 0.0, math.inf
        return cls(
            station=str(data["station"]),
            method=str(data["method"]),
            horizon_h=int(data["horizon_h"]),
            reason=str(data.get("reason", "")),
            upstream=tuple((str(s), int(t)) for s, t in data.get("upstream", ())),
            rain=tuple(str(g) for g in data.get("rain", ())),
            error_correction=bool(data.get("error_correction", False)),
            level_mean=float(data.get("level_mean", 0.0)),
            terms=tuple(str(t) for t in data.get("terms", ())),
            coef=tuple(tuple(float(v) for v in c) for c in data.get("coef", ())),
            scale=tuple(float(v) for v in data.get("scale", ())),
            stage1=tuple(float(v) for v in data.get("stage1", ())),
            low=low,
            high=high,
            rising_cm_per_h=rising_cm_per_h,
            wet_mm=wet_mm,
            regime_rows=tuple(int(v) for v in data.get("regime_rows", ())),
            max_stale_s=float(data.get("max_stale_s", 7200.0)),
            trained_from_ns=int(data.get("trained_from_ns", 0)),
            trained_to_ns=int(data.get("trained_to_ns", 0)),
            rows=int(data.get("rows", 0)),
            skill=tuple(
                LeadSkill(**{k: _from_json(k, s.get(k)) for k in LeadSkill.__slots__})
                for s in data.get("skill", ())
            ),
            version=int(data.get("version", 0)),
            fitted_at_ns=int(data.get("fitted_at_ns", 0)),
        )


def _two_regimes(quantiles: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
    """Format 1's (rose or held, fell) quantiles in format 2's regime order."""
    rose, fell = (*quantiles, (), ())[:2]
    return (fell, rose, fell, rose)


def _json_number(value: float) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _from_json(name: str, value: Any) -> Any:
    if name in {"lead_h", "n"}:
        return int(value)
    return math.nan if value is None else float(value)


# -- features (one definition for the fit's columns and the live forecaster's scalars) --------


def _shared(
    sampler: Sampler, station: str, rain: Sequence[str], level_mean: float, t: Any
) -> list[Any]:
    """The columns every lead shares: constant, own trend and anomaly, rain windows."""
    now = sampler.level(station, t)
    columns = [
        now * 0.0 + 1.0,  # NaN when the station has no recent reading
        now - sampler.level(station, t - NS_PER_H),
        now - sampler.level(station, t - 3 * NS_PER_H),
        now - level_mean,
    ]
    if rain:
        columns.extend(
            sampler.rain(rain, t - a * NS_PER_H, t - b * NS_PER_H) for b, a in RAIN_WINDOWS_H
        )
    return columns


def _upstream(
    sampler: Sampler, upstream: Sequence[tuple[str, int]], t: Any, horizon_h: int
) -> list[list[Any]]:
    """Per lead 1..``horizon_h``, per upstream station: the change between the water arriving
    now (upstream at ``t - travel``) and at the lead (at ``t + lead - travel``, or its newest
    reading when the lead is beyond the travel time). Each distinct instant is read once, all
    of a station's in one call (ascending)."""
    leads: list[list[Any]] = [[] for _ in range(horizon_h)]
    for source, travel in upstream:
        before = min(horizon_h, -(-travel // NS_PER_H) - 1)  # leads still inside the travel
        offsets = [lead * NS_PER_H - travel for lead in range(1, before + 1)]
        found = sampler.levels(source, [t - travel, *(t + o for o in offsets), t])
        arriving = found[0]
        for lead in range(horizon_h):
            leads[lead].append((found[lead + 1] if lead < before else found[-1]) - arriving)
    return leads


def term_names(inputs: Inputs, *, error_correction: bool) -> tuple[str, ...]:
    """The regression's columns, in order."""
    names = ["const", "trend_1h", "trend_3h", "anomaly"]
    if inputs.rain:
        names.extend(f"rain_{b}_{a}h" for b, a in RAIN_WINDOWS_H)
    names.extend(f"upstream:{source}" for source, _ in inputs.upstream)
    if error_correction:
        names.append("error_1h")
    return tuple(names)


# -- fitting ------------------------------------------------------------------------------------


def fit(
    spec: ModelSpec,
    inputs: Inputs,
    levels: Mapping[str, Series],
    rain: Mapping[str, Series],
    *,
    until_ns: int | None = None,
    fitted_at_ns: int = 0,
) -> FittedModel:
    """Fit one station's model on the history given (readings before ``until_ns`` only).

    Inputs without any history are left out of the model (it says which); a station with too
    little history gets a persistence model that says so.
    """
    own = _before(levels.get(inputs.station), until_ns)
    if own is None or len(own) < 2:
        return _persistence(spec, inputs.station, "no history of the station's level")
    used_up = tuple(
        (s, t)
        for s, t in inputs.upstream
        if (series := _before(levels.get(s), until_ns)) and len(series) >= 2
    )
    used_rain = tuple(g for g in inputs.rain if (s := _before(rain.get(g), until_ns)) and len(s))
    missing = [s for s, _ in inputs.upstream if (s, _) not in used_up]
    missing += [g for g in inputs.rain if g not in used_rain]
    inputs = Inputs(inputs.station, used_up, used_rain)
    sampler = ArraySampler(
        {s: _before(levels[s], until_ns) or levels[s] for s in [inputs.station, *dict(used_up)]},
        {g: _before(rain[g], until_ns) or rain[g] for g in used_rain},
        int(spec.max_stale_s * NS_PER_S),
    )
    level_mean = float(own.values.mean())
    times = _issue_times(own, spec)
    now = sampler.level(inputs.station, times)
    leads = range(1, spec.horizon_h + 1)
    changes = [
        interpolate(own, times + k * NS_PER_H, int(spec.max_gap_s * NS_PER_S)) - now for k in leads
    ]
    shared = np.column_stack(_shared(sampler, inputs.station, inputs.rain, level_mean, times))
    ups = [
        _as_columns(columns, times.size)
        for columns in _upstream(sampler, inputs.upstream, times, spec.horizon_h)
    ]
    regime = _regimes(shared, spec.rising_cm_per_h, spec.wet_mm if inputs.rain else math.inf)
    n = times.size
    # Blocked folds in time: every row is predicted by a model that did not see its fold (nor,
    # but at the folds' edges, its neighbours), and every flood of the history is held out once.
    fold = np.arange(n) * spec.folds // max(n, 1)
    # Stage 1: the 1-hour model without error correction, whose last error is a term.
    design1 = np.hstack([shared, ups[0]])
    extra = np.zeros((n, 0))
    stage1: FloatArray = np.zeros(0)
    usable1 = np.isfinite(design1).all(axis=1) & np.isfinite(changes[0])
    if spec.error_correction and int(usable1.sum()) >= spec.min_rows:
        stage1 = _lstsq(design1[usable1], changes[0][usable1])
        before = times - NS_PER_H
        shared_before = np.column_stack(
            _shared(sampler, inputs.station, inputs.rain, level_mean, before)
        )
        ups_before = _as_columns(_upstream(sampler, inputs.upstream, before, 1)[0], n)
        predicted_now = (
            sampler.level(inputs.station, before) + np.hstack([shared_before, ups_before]) @ stage1
        )
        extra = (now - predicted_now)[:, None]
    error_correction = extra.shape[1] == 1
    designs = [np.hstack([shared, up, extra]) for up in ups]
    usable = [
        np.isfinite(d).all(axis=1) & np.isfinite(c) for d, c in zip(designs, changes, strict=True)
    ]
    fewest = min(int(u.sum()) for u in usable)
    if fewest < spec.min_rows:
        reason = f"too little history: {fewest} usable issue times, {spec.min_rows} needed"
        return _persistence(spec, inputs.station, reason, changes, regime, usable, own)
    coef: list[tuple[float, ...]] = []
    scale: list[float] = []
    skills: list[LeadSkill] = []
    low: list[list[float]] = [[] for _ in REGIMES]
    high: list[list[float]] = [[] for _ in REGIMES]
    rows: list[int] = []
    for k, design, change, ok in zip(leads, designs, changes, usable, strict=True):
        fitted_all, predicted = _folded_fit(design, change, ok, fold, spec.folds)
        test = ok & np.isfinite(predicted)
        # The error grows with the change foreseen: residuals are drawn relative to it (plus the
        # typical change, so that a quiet river keeps an interval), which carries an interval
        # fitted on ordinary floods over to a bigger one.
        scale.append(float(np.mean(np.abs(predicted[test]))) + 1e-3)
        spread = scale[-1] + np.abs(predicted)
        residual = (change - predicted) / spread
        below, above, counts = _regime_quantiles(residual, regime, test, spec)
        rows = rows or counts
        for r in range(len(REGIMES)):
            low[r].append(below[r])
            high[r].append(above[r])
        base = now[test]
        observed = base + change[test]
        central = base + predicted[test]
        width = spread[test]
        lo = central + width * np.asarray(below)[regime[test]]
        hi = central + width * np.asarray(above)[regime[test]]
        skills.append(LeadSkill.measured(k, int(test.sum()), central, base, observed, lo, hi))
        coef.append(tuple(float(v) for v in fitted_all))
    if error_correction:
        stage1 = _lstsq(design1[usable1], changes[0][usable1])
    return FittedModel(
        station=inputs.station,
        method=ARX,
        horizon_h=spec.horizon_h,
        reason=f"inputs without history left out: {', '.join(missing)}" if missing else "",
        upstream=inputs.upstream,
        rain=inputs.rain,
        error_correction=error_correction,
        level_mean=level_mean,
        terms=term_names(inputs, error_correction=error_correction),
        coef=tuple(coef),
        scale=tuple(scale),
        stage1=tuple(float(v) for v in stage1),
        low=tuple(tuple(q) for q in low),
        high=tuple(tuple(q) for q in high),
        rising_cm_per_h=spec.rising_cm_per_h,
        wet_mm=spec.wet_mm if inputs.rain else math.inf,
        regime_rows=tuple(rows),
        max_stale_s=spec.max_stale_s,
        trained_from_ns=int(own.times_ns[0]),
        trained_to_ns=int(own.times_ns[-1]),
        rows=n,
        skill=tuple(skills),
        fitted_at_ns=fitted_at_ns,
    )


def _regimes(shared: FloatArray, rising_cm_per_h: float, wet_mm: float) -> npt.NDArray[np.intp]:
    """Each issue time's regime (:data:`REGIMES`) from its shared columns: the change over the
    last hour, and the rain of the last 6 hours (the first two rain windows, when there are)."""
    rising = shared[:, 1] >= rising_cm_per_h
    if shared.shape[1] > 5 and math.isfinite(wet_mm):
        wet = np.nan_to_num(shared[:, 4] + shared[:, 5]) >= wet_mm
    else:
        wet = np.zeros(shared.shape[0], dtype=bool)
    return (rising.astype(np.intp) + 2 * wet.astype(np.intp)).astype(np.intp)


def _regime_quantiles(
    values: FloatArray,
    regime: npt.NDArray[np.intp],
    usable: npt.NDArray[np.bool_],
    spec: ModelSpec,
) -> tuple[list[float], list[float], list[int]]:
    """Per regime, the central interval's quantiles of ``values`` (held-out residuals, or
    changes), and how many each regime had.

    A regime with fewer than ``spec.min_regime_rows`` borrows those of its trend with wet and
    dry pooled, then those of every usable row; none at all (fewer than 10): zeros.
    """
    alpha = (1 - spec.coverage) / 2
    below: list[float] = []
    above: list[float] = []
    counts: list[int] = []
    rising = regime % 2
    for r in range(len(REGIMES)):
        pick = usable & (regime == r)
        counts.append(int(pick.sum()))
        if pick.sum() < spec.min_regime_rows:
            pick = usable & (rising == r % 2)
        if pick.sum() < spec.min_regime_rows:
            pick = usable
        pool = values[pick]
        below.append(float(np.quantile(pool, alpha)) if pool.size >= 10 else 0.0)
        above.append(float(np.quantile(pool, 1 - alpha)) if pool.size >= 10 else 0.0)
    return below, above, counts


def _before(series: Series | None, until_ns: int | None) -> Series | None:
    if series is None or until_ns is None:
        return series
    keep = int(np.searchsorted(series.times_ns, until_ns, side="left"))
    return Series(series.times_ns[:keep], series.values[:keep])


def _issue_times(own: Series, spec: ModelSpec) -> npt.NDArray[np.int64]:
    """The station's reading times, at most one per ``issue_step_s``."""
    step = max(1, int(spec.issue_step_s * NS_PER_S))
    _, first = np.unique(own.times_ns // step, return_index=True)
    return own.times_ns[first]


def _as_columns(columns: list[Any], rows: int) -> FloatArray:
    return np.column_stack(columns) if columns else np.zeros((rows, 0))


def _folded_fit(
    design: FloatArray,
    target: FloatArray,
    ok: npt.NDArray[np.bool_],
    fold: npt.NDArray[np.int64],
    folds: int,
) -> tuple[FloatArray, FloatArray]:
    """Least squares on every usable row, and each fold predicted by the fit on the others.

    Through the normal equations: each fold's ``XᵀX`` and ``Xᵀy`` are summed once, and the fit
    without a fold subtracts its part, so the folds cost one pass over the rows (a year of
    15-minute rows: a few milliseconds a lead, where a least-squares solve per fold took 50).
    A tiny ridge keeps a column that never varies (a dry rain gauge) from making it singular.
    """
    columns = design.shape[1]
    grams = np.zeros((folds, columns, columns))
    moments = np.zeros((folds, columns))
    # Rows that cannot be used become zeros (they add nothing to the sums), and the folds are
    # contiguous blocks of rows: slices, not copies.
    clean = np.where(ok[:, None], design, 0.0)
    goal = np.where(ok, target, 0.0)
    edges = np.searchsorted(fold, np.arange(folds + 1))
    for held in range(folds):
        rows = clean[edges[held] : edges[held + 1]]
        grams[held] = rows.T @ rows
        moments[held] = rows.T @ goal[edges[held] : edges[held + 1]]
    gram, moment = grams.sum(axis=0), moments.sum(axis=0)
    ridge = np.eye(columns) * (1e-9 * max(float(np.trace(gram)), 1.0) / columns)
    predicted = np.full(design.shape[0], np.nan)
    for held in range(folds if folds > 1 else 0):
        out = ok & (fold == held)
        if not out.any():
            continue
        solution = np.linalg.solve(gram - grams[held] + ridge, moment - moments[held])
        predicted[out] = design[out] @ solution
    return np.linalg.solve(gram + ridge, moment), predicted


def _lstsq(design: FloatArray, target: FloatArray) -> FloatArray:
    """Least squares on rows already chosen (through :func:`_folded_fit`'s normal equations)."""
    everything = np.ones(design.shape[0], dtype=bool)
    solution, _ = _folded_fit(design, target, everything, np.zeros(design.shape[0], np.int64), 1)
    return solution


def _persistence(  # noqa: PLR0917 - the fit's columns, when it got that far
    spec: ModelSpec,
    station: str,
    reason: str,
    changes: Sequence[FloatArray] = (),
    regime: npt.NDArray[np.intp] | None = None,
    usable: Sequence[npt.NDArray[np.bool_]] = (),
    own: Series | None = None,
) -> FittedModel:
    """Persistence, its interval drawn from the changes the station's history shows."""
    low: list[list[float]] = [[] for _ in REGIMES]
    high: list[list[float]] = [[] for _ in REGIMES]
    rows: list[int] = []
    for k in range(spec.horizon_h):
        if changes and regime is not None:
            below, above, counts = _regime_quantiles(changes[k], regime, usable[k], spec)
            rows = rows or counts
        else:
            below = above = [0.0] * len(REGIMES)
        for r in range(len(REGIMES)):
            low[r].append(below[r])
            high[r].append(above[r])
    return FittedModel(
        station=station,
        method=PERSISTENCE,
        horizon_h=spec.horizon_h,
        reason=reason,
        low=tuple(tuple(q) for q in low),
        high=tuple(tuple(q) for q in high),
        rising_cm_per_h=spec.rising_cm_per_h,
        wet_mm=math.inf,
        regime_rows=tuple(rows),
        max_stale_s=spec.max_stale_s,
        trained_from_ns=int(own.times_ns[0]) if own is not None and len(own) else 0,
        trained_to_ns=int(own.times_ns[-1]) if own is not None and len(own) else 0,
    )


# -- predicting -------------------------------------------------------------------------------


@dataclass(slots=True)
class Predictor:
    """A fitted model made ready for fast live use (coefficients as numpy arrays).

    Args:
        model: The fitted model.
    """

    model: FittedModel
    _coef: list[list[float]] = field(init=False)
    _scale: list[float] = field(init=False)
    _stage1: list[float] = field(init=False)
    _low: list[list[float]] = field(init=False)
    _high: list[list[float]] = field(init=False)

    def __post_init__(self) -> None:
        # Python lists: a dozen leads of a dozen terms cost less in plain arithmetic than in
        # numpy calls, which are dearer than the sums they do at this size.
        model = self.model
        horizon = model.horizon_h
        self._coef = [list(c) for c in model.coef]
        self._scale = list(model.scale) if model.scale else [1.0] * horizon
        self._stage1 = list(model.stage1)
        low, high = (*model.low, (), (), (), ())[:4], (*model.high, (), (), (), ())[:4]
        self._low = [list(q) if len(q) == horizon else [0.0] * horizon for q in low]
        self._high = [list(q) if len(q) == horizon else [0.0] * horizon for q in high]

    def predict(self, sampler: Sampler, t: int) -> Forecast | None:
        """The forecast at ``t`` (None when the station itself has no recent reading).

        Any input silent at ``t`` (NaN) makes it a persistence forecast that says which.
        """
        model = self.model
        station = model.station
        now = sampler.level(station, t)
        if not isinstance(now, float) or math.isnan(now):
            return None
        if model.method != ARX:
            trend = now - sampler.level(station, t - NS_PER_H)
            regime = 1 if trend >= model.rising_cm_per_h else 0  # never wet: no rain read
            return self._persist(t, now, regime, model.reason or "persistence baseline")
        shared = _shared(sampler, station, model.rain, model.level_mean, t)
        # The regime: rising over the last hour, and wet over the last 6 (NaN: not rising, dry).
        regime = 1 if shared[1] >= model.rising_cm_per_h else 0
        if len(shared) > 5 and shared[4] + shared[5] >= model.wet_mm:
            regime += 2
        error: list[float] = []
        if model.error_correction:
            before = t - NS_PER_H
            first = _shared(sampler, station, model.rain, model.level_mean, before)
            first += _upstream(sampler, model.upstream, before, 1)[0]
            then = now - shared[1]  # the level an hour ago
            error.append(now - then - sum(map(operator.mul, self._stage1, first)))
        if not math.isfinite(sum(shared) + sum(error)):
            return self._persist(t, now, regime, _silent(model, sampler, t))
        central: list[float] = []
        upstream = _upstream(sampler, model.upstream, t, len(self._coef))
        for coef, ahead in zip(self._coef, upstream, strict=True):
            central.append(now + sum(map(operator.mul, coef, shared + ahead + error)))
        if not math.isfinite(sum(central)):
            return self._persist(t, now, regime, _silent(model, sampler, t))
        spread = [s + abs(c - now) for s, c in zip(self._scale, central, strict=True)]
        low = [c + w * q for c, w, q in zip(central, spread, self._low[regime], strict=True)]
        high = [c + w * q for c, w, q in zip(central, spread, self._high[regime], strict=True)]
        return Forecast(station, t, now, tuple(central), tuple(low), tuple(high), ARX)

    def _persist(self, t: int, now: float, regime: int, reason: str) -> Forecast:
        return Forecast(
            self.model.station,
            t,
            now,
            (now,) * self.model.horizon_h,
            tuple(now + q for q in self._low[regime]),
            tuple(now + q for q in self._high[regime]),
            PERSISTENCE,
            reason,
        )


def _silent(model: FittedModel, sampler: Sampler, t: int) -> str:
    """Which inputs have nothing recent at ``t`` (why a forecast fell back to persistence)."""
    quiet = [s for s, _ in model.upstream if math.isnan(sampler.level(s, t))]
    quiet += [g for g in model.rain if math.isnan(sampler.rain((g,), t - NS_PER_H, t))]
    if not quiet:
        return "inputs incomplete at issue time"
    return f"no recent reading from {', '.join(quiet)}"


__all__ = [
    "ARX",
    "MODEL_FORMAT",
    "PERSISTENCE",
    "RAIN_WINDOWS_H",
    "REGIMES",
    "FittedModel",
    "Forecast",
    "Inputs",
    "LeadSkill",
    "ModelSpec",
    "Predictor",
    "Sampler",
    "fit",
    "registry_inputs",
    "term_names",
]

"""Stage forecast models on synthetic series with a known answer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import orjson
import pytest

from forecast import store
from forecast.models import (
    ARX,
    MODEL_FORMAT,
    PERSISTENCE,
    RISING_DRY,
    RISING_WET,
    STEADY_DRY,
    STEADY_WET,
    FittedModel,
    Inputs,
    ModelSpec,
    Predictor,
    fit,
    registry_inputs,
)
from forecast.series import NS_PER_H, ArraySampler, PointSampler, Series, interpolate
from forecast.store import ModelStoreError
from tests import alerting

STEP_NS = 900 * 1_000_000_000
T0 = 1_700_000_000 * 1_000_000_000
TRAVEL_H = 3


def _wandering(n: int, seed: int) -> np.ndarray:
    """A smooth, mean-reverting level around 200 cm (waves of a few hours to a day)."""
    rng = np.random.default_rng(seed)
    noise = np.convolve(rng.normal(0, 1, n + 400), np.ones(24) / 24, mode="same")
    walk = np.cumsum(noise)
    trend = np.convolve(walk, np.ones(400) / 400, mode="same")
    return np.asarray(200 + 4 * (walk - trend)[:n], dtype=np.float64)


def _lagged_pair(days: int = 60) -> tuple[np.ndarray, dict[str, Series]]:
    n = days * 96
    times = T0 + np.arange(n, dtype=np.int64) * STEP_NS
    upstream = _wandering(n, 1)
    lag = TRAVEL_H * 4
    downstream = np.empty(n)
    downstream[lag:] = 0.8 * upstream[:-lag] + 50
    downstream[:lag] = downstream[lag]
    return times, {"up": Series(times, upstream), "down": Series(times, downstream)}


def test_a_pure_lag_of_the_upstream_gauge_is_recovered() -> None:
    _, levels = _lagged_pair()
    inputs = Inputs("down", (("up", TRAVEL_H * NS_PER_H),))
    model = fit(ModelSpec(horizon_h=6), inputs, levels, {})
    assert model.method == ARX
    up = model.terms.index("upstream:up")
    for lead in range(1, TRAVEL_H + 1):
        coefficients = model.coef[lead - 1]
        assert coefficients[up] == pytest.approx(0.8, abs=1e-6)
        others = [c for i, c in enumerate(coefficients) if i != up]
        assert max(map(abs, others)) < 1e-6
        assert model.skill[lead - 1].rmse_cm < 1e-6
    # Beyond the travel time the water is not yet upstream: skill falls, but stays above
    # persistence.
    assert 0.5 < model.skill[5].skill < 1.0
    assert all(s.skill > 0 for s in model.skill)


def test_the_live_forecast_equals_the_truth_within_the_travel_time() -> None:
    times, levels = _lagged_pair()
    model = fit(ModelSpec(horizon_h=6), Inputs("down", (("up", TRAVEL_H * NS_PER_H),)), levels, {})
    sampler = PointSampler(max_stale_ns=2 * NS_PER_H)
    for station in ("up", "down"):
        sampler.watch(station, model.lookback_ns)
    at = len(times) - 200
    for i in range(at - 100, at + 1):
        for station in ("up", "down"):
            sampler.add(station, int(times[i]), float(levels[station].values[i]))
    forecast = Predictor(model).predict(sampler, int(times[at]))
    assert forecast is not None
    assert forecast.method == ARX
    truth = levels["down"].values[at + 4 : at + 4 * 4 : 4]
    assert forecast.values[:TRAVEL_H] == pytest.approx(truth, abs=1e-6)
    assert all(
        lo <= v <= hi
        for lo, v, hi in zip(forecast.low, forecast.values, forecast.high, strict=True)
    )


def test_the_point_and_array_samplers_answer_alike() -> None:
    rng = np.random.default_rng(3)
    times = np.sort(rng.choice(np.arange(0, 500 * STEP_NS, STEP_NS // 3), 400, replace=False))
    times = times.astype(np.int64)
    level = Series(times, rng.normal(100, 10, times.size))
    rain = Series(times, np.where(rng.random(times.size) < 0.3, rng.exponential(2, times.size), 0))
    array = ArraySampler({"s": level}, {"g": rain}, max_stale_ns=NS_PER_H)
    point = PointSampler(max_stale_ns=NS_PER_H)
    point.watch("s", 10**20)
    point.watch("g", 10**20, rain=True)
    for t, v, r in zip(times.tolist(), level.values.tolist(), rain.values.tolist(), strict=True):
        point.add("s", t, v)
        point.add("g", t, r)
    probes = rng.integers(-NS_PER_H, int(times[-1]) + 2 * NS_PER_H, 300).astype(np.int64)
    levels = array.level("s", probes)
    sums = array.rain(["g"], probes - 3 * NS_PER_H, probes)
    for i, t in enumerate(probes.tolist()):
        mine = point.level("s", t)
        assert (math.isnan(mine) and math.isnan(levels[i])) or mine == levels[i]
        total = point.rain(["g"], t - 3 * NS_PER_H, t)
        assert (math.isnan(total) and math.isnan(sums[i])) or total == pytest.approx(sums[i])


def test_the_point_sampler_keeps_only_its_lookback() -> None:
    sampler = PointSampler(max_stale_ns=NS_PER_H)
    sampler.watch("g", 2 * NS_PER_H, rain=True)
    for i in range(40):
        sampler.add("g", i * STEP_NS, 1.0)
    kept, _ = sampler.dump("g")
    assert len(kept) <= 10
    assert sampler.rain(["g"], 39 * STEP_NS - NS_PER_H, 39 * STEP_NS) == 4.0
    assert not sampler.add("g", 39 * STEP_NS, 5.0)  # a time already known
    assert not sampler.add("unwatched", 0, 1.0)


def test_rain_drives_a_rain_fed_river() -> None:
    """Rain reaches the river 3 h after it falls, through a linear reservoir: the model learns
    that rain now means water in hours (rain still to fall is what it cannot know)."""
    rng = np.random.default_rng(5)
    n = 120 * 96
    times = T0 + np.arange(n, dtype=np.int64) * STEP_NS
    storms = rng.random(n) < 0.004
    rain = np.zeros(n)
    for start in np.flatnonzero(storms):
        rain[start : start + 12] += rng.gamma(2.0, 3.0)
    level = np.empty(n)
    store = 0.0
    for i in range(n):
        # A 6-hour reservoir on a 15-minute step, fed by the rain of 3 hours before.
        store = store * math.exp(-1 / 24) + (rain[i - 12] if i >= 12 else 0.0)
        level[i] = 120 + 1.5 * store
    levels = {"river": Series(times, level)}
    gauges = {"gauge": Series(times, rain)}
    model = fit(ModelSpec(horizon_h=6), Inputs("river", (), ("gauge",)), levels, gauges)
    assert model.method == ARX
    three, six = model.skill[2], model.skill[5]
    assert three.skill > 0.9
    assert six.skill > 0.3
    assert 0.7 <= six.coverage <= 0.92


def test_too_little_history_forecasts_persistence_and_says_so() -> None:
    times, levels = _lagged_pair(days=1)
    model = fit(ModelSpec(horizon_h=6), Inputs("down", (("up", TRAVEL_H * NS_PER_H),)), levels, {})
    assert model.method == PERSISTENCE
    assert "too little history" in model.reason
    sampler = PointSampler(max_stale_ns=NS_PER_H)
    sampler.watch("down", model.lookback_ns)
    sampler.add("down", int(times[-1]), 123.0)
    forecast = Predictor(model).predict(sampler, int(times[-1]))
    assert forecast is not None
    assert forecast.method == PERSISTENCE
    assert forecast.values == (123.0,) * 6
    assert "too little history" in forecast.reason


def test_a_silent_input_falls_back_to_persistence_naming_it() -> None:
    times, levels = _lagged_pair()
    model = fit(ModelSpec(horizon_h=6), Inputs("down", (("up", TRAVEL_H * NS_PER_H),)), levels, {})
    sampler = PointSampler(max_stale_ns=NS_PER_H)
    sampler.watch("down", model.lookback_ns)
    sampler.watch("up", model.lookback_ns)
    for i in range(len(times) - 60, len(times)):
        sampler.add("down", int(times[i]), float(levels["down"].values[i]))
    forecast = Predictor(model).predict(sampler, int(times[-1]))
    assert forecast is not None
    assert forecast.method == PERSISTENCE
    assert forecast.reason == "no recent reading from up"
    assert Predictor(model).predict(sampler, int(times[-1]) + 5 * NS_PER_H) is None


def test_an_input_without_history_is_left_out_and_named() -> None:
    _, levels = _lagged_pair()
    inputs = Inputs("down", (("up", TRAVEL_H * NS_PER_H), ("gone", NS_PER_H)), ("dry",))
    model = fit(ModelSpec(horizon_h=3), inputs, levels, {})
    assert model.method == ARX
    assert model.upstream == (("up", TRAVEL_H * NS_PER_H),)
    assert model.reason == "inputs without history left out: gone, dry"


def test_fitting_reads_only_before_the_cut() -> None:
    times, levels = _lagged_pair()
    cut = int(times[len(times) // 2])
    model = fit(
        ModelSpec(horizon_h=3),
        Inputs("down", (("up", TRAVEL_H * NS_PER_H),)),
        levels,
        {},
        until_ns=cut,
    )
    assert model.trained_to_ns < cut


def test_a_fitted_model_is_plain_data() -> None:
    _, levels = _lagged_pair()
    model = fit(ModelSpec(horizon_h=4), Inputs("down", (("up", TRAVEL_H * NS_PER_H),)), levels, {})
    assert FittedModel.from_dict(model.to_dict()) == model or _same(model)


def _same(model: FittedModel) -> bool:
    again = FittedModel.from_dict(model.to_dict())
    return again.to_dict() == model.to_dict()


def test_the_interval_covers_about_eighty_percent() -> None:
    times, levels = _lagged_pair(days=120)
    noisy = levels["down"].values + np.random.default_rng(9).normal(0, 2, len(times))
    levels["down"] = Series(times, noisy)
    model = fit(ModelSpec(horizon_h=6), Inputs("down", (("up", TRAVEL_H * NS_PER_H),)), levels, {})
    for lead in model.skill:
        assert 0.72 <= lead.coverage <= 0.88, lead


def test_the_registry_gives_the_inputs() -> None:
    registry = alerting.registry(
        alerting.station("a", downstream=[("c", 90)]),
        alerting.station("b", downstream=[("c", 30)]),
        alerting.station("c", rain_gauges=["g", "not-there"]),
        alerting.rain_gauge("g"),
    )
    inputs = registry_inputs(registry)
    assert inputs["c"] == Inputs("c", (("a", 90 * 60 * 10**9), ("b", 30 * 60 * 10**9)), ("g",))
    assert "g" not in inputs


def test_interpolated_outcomes_do_not_bridge_gaps() -> None:
    series = Series(np.array([0, 10, 100], dtype=np.int64), np.array([0.0, 10.0, 100.0]))
    found = interpolate(series, np.array([5, 10, 50, 200], dtype=np.int64), max_gap_ns=20)
    assert found[0] == 5.0
    assert found[1] == 10.0
    assert math.isnan(found[2])
    assert math.isnan(found[3])


def _rising_and_falling(days: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """30 h rising by 4 cm/h with an unforeseeable random walk on top (0.8 cm a step), then
    30 h falling by 4 cm/h, smoothly: the rising regime's errors are the wide ones."""
    rng = np.random.default_rng(seed)
    n = days * 96
    rising = (np.arange(n) // 120) % 2 == 0
    step = np.where(rising, 1.0 + rng.normal(0, 0.8, n), -1.0 + rng.normal(0, 0.05, n))
    return T0 + np.arange(n, dtype=np.int64) * STEP_NS, 300 + np.cumsum(step)


def _coverage_by_regime(model: FittedModel, lead_h: int) -> dict[bool, tuple[float, float]]:
    """On another 120 days of the same river, live: per regime at issue (rose 1 cm or more
    over the last hour), the interval's coverage at ``lead_h`` and its mean width."""
    times, level = _rising_and_falling(120, seed=2)
    sampler = PointSampler(max_stale_ns=NS_PER_H)
    sampler.watch("river", model.lookback_ns)
    predictor = Predictor(model)
    inside: dict[bool, list[bool]] = {True: [], False: []}
    width: dict[bool, list[float]] = {True: [], False: []}
    ahead = lead_h * 4
    for i in range(len(times) - ahead):
        sampler.add("river", int(times[i]), float(level[i]))
        if i < 8:
            continue
        forecast = predictor.predict(sampler, int(times[i]))
        assert forecast is not None
        regime = bool(level[i] - level[i - 4] >= 1.0)
        low, high = forecast.low[lead_h - 1], forecast.high[lead_h - 1]
        inside[regime].append(low <= level[i + ahead] <= high)
        width[regime].append(high - low)
    return {r: (float(np.mean(inside[r])), float(np.mean(width[r]))) for r in (True, False)}


def test_rising_intervals_are_wider_and_each_regime_is_calibrated() -> None:
    """Known answer: the rising limb's errors are wider, so its interval must be, and each
    regime's must cover about 80 % on data the model never saw; one pooled interval covers
    the steady river too much and the rising one too little."""
    times, level = _rising_and_falling(120, seed=1)
    levels = {"river": Series(times, level)}
    model = fit(ModelSpec(horizon_h=3), Inputs("river"), levels, {})
    assert model.regime_rows[RISING_DRY] > 5000
    assert model.regime_rows[STEADY_DRY] > 5000
    assert model.high[RISING_DRY][1] - model.low[RISING_DRY][1] > 1.5 * (
        model.high[STEADY_DRY][1] - model.low[STEADY_DRY][1]
    )
    by_regime = _coverage_by_regime(model, lead_h=2)
    (rising, rising_width), (steady, steady_width) = by_regime[True], by_regime[False]
    assert 0.72 <= rising <= 0.88
    assert 0.72 <= steady <= 0.88
    assert rising_width > 1.3 * steady_width
    pooled = fit(ModelSpec(horizon_h=3, min_regime_rows=10**9), Inputs("river"), levels, {})
    (pooled_rising, _), (pooled_steady, _) = _coverage_by_regime(pooled, lead_h=2).values()
    assert pooled_steady > 0.85
    assert pooled_rising < rising


def test_a_regime_with_too_few_residuals_borrows_pooled_ones() -> None:
    """No rain gauge: never wet, so the wet regimes borrow the dry ones of the same trend."""
    times, level = _rising_and_falling(40, seed=3)
    model = fit(ModelSpec(horizon_h=2), Inputs("river"), {"river": Series(times, level)}, {})
    assert model.regime_rows[STEADY_WET] == model.regime_rows[RISING_WET] == 0
    assert model.low[STEADY_WET] == model.low[STEADY_DRY]
    assert model.high[RISING_WET] == model.high[RISING_DRY]
    assert model.low[RISING_DRY] != model.low[STEADY_DRY]


def _format_1(model: FittedModel) -> dict[str, object]:
    """A model as format 1 wrote it: no format, two regimes (rose or held, fell)."""
    data = model.to_dict()
    for key in ("format", "rising_cm_per_h", "wet_mm", "regime_rows"):
        del data[key]
    data["low"] = [[-1.0] * model.horizon_h, [-2.0] * model.horizon_h]
    data["high"] = [[1.0] * model.horizon_h, [2.0] * model.horizon_h]
    return data


def test_format_1_model_files_load_with_their_old_regimes(tmp_path: Path) -> None:
    times, levels = _lagged_pair()
    model = fit(ModelSpec(horizon_h=3), Inputs("down", (("up", TRAVEL_H * NS_PER_H),)), levels, {})
    (tmp_path / "down").mkdir()
    (tmp_path / "down" / "v0001.json").write_bytes(orjson.dumps(_format_1(model)))
    old = store.load(tmp_path, "down")
    assert old is not None
    assert old.to_dict()["format"] == MODEL_FORMAT
    # Format 1's regimes: the level rose or held over the last hour (its first quantiles),
    # or it fell (its second); never wet.
    assert old.rising_cm_per_h == 0.0
    assert old.low == ((-2.0,) * 3, (-1.0,) * 3, (-2.0,) * 3, (-1.0,) * 3)
    assert FittedModel.from_dict(old.to_dict()) == old
    sampler = PointSampler(max_stale_ns=NS_PER_H)
    for station in ("up", "down"):
        sampler.watch(station, old.lookback_ns)
    for i in range(len(times) - 60, len(times)):
        for station in ("up", "down"):
            sampler.add(station, int(times[i]), float(levels[station].values[i]))
    forecast = Predictor(old).predict(sampler, int(times[-1]))
    assert forecast is not None
    fell = levels["down"].values[-1] < levels["down"].values[-5]
    spread = old.scale[0] + abs(forecast.values[0] - forecast.now_cm)
    expected = -2.0 if fell else -1.0
    assert forecast.low[0] == pytest.approx(forecast.values[0] + expected * spread)


def test_a_newer_model_format_is_refused_naming_the_file(tmp_path: Path) -> None:
    _, levels = _lagged_pair(days=10)
    model = fit(ModelSpec(horizon_h=2), Inputs("down", (("up", TRAVEL_H * NS_PER_H),)), levels, {})
    (tmp_path / "down").mkdir()
    newer = {**model.to_dict(), "format": MODEL_FORMAT + 1}
    (tmp_path / "down" / "v0001.json").write_bytes(orjson.dumps(newer))
    with pytest.raises(ModelStoreError, match=r"v0001\.json.*format 3 is newer"):
        store.load(tmp_path, "down")

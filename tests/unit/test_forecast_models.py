"""Stage forecast models on synthetic series with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from forecast.models import (
    ARX,
    PERSISTENCE,
    FittedModel,
    Inputs,
    ModelSpec,
    Predictor,
    fit,
    registry_inputs,
)
from forecast.series import NS_PER_H, ArraySampler, PointSampler, Series, interpolate
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

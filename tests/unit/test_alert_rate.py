"""The rate rule: rises and falls on event time, irregular intervals, out-of-order arrival."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.rules import rate
from alerts.rules.config import RateRule
from tests.alerting import MINUTE_NS, T0

RISE_10 = RateRule(name="rise_10min", window_s=600, rise_cm=15)
RISE_1H = RateRule(name="rise_1h", window_s=3600, rise_cm=50)
FALL_1H = RateRule(name="fall_1h", window_s=3600, fall_cm=50)


def feed(
    points: list[tuple[float, float]], rules: tuple[RateRule, ...] = (RISE_10,)
) -> tuple[rate.RateState, list[tuple[float, str, bool]]]:
    state = rate.INITIAL
    found = []
    for minutes, value in points:
        ts = T0 + int(minutes * MINUTE_NS)
        state, events = rate.evaluate(state, "s", ts, value, rules)
        found.extend(((e.at_ns - T0) / MINUTE_NS, e.rule, e.firing) for e in events)
    return state, found


def test_a_rise_within_the_window_fires_once_and_clears_a_window_later() -> None:
    points = [(0, 100), (5, 105), (10, 117), (15, 125), (20, 126), (25, 126), (30, 127)]
    _, events = feed(points)
    # 100 -> 117 within 10 minutes (+17 > 15) at minute 10; still > 15 at 15 (105 -> 125);
    # not at 20 (117 -> 126), and 10 minutes after the last time it held it clears.
    assert events == [(10, "rate:rise_10min", True), (25, "rate:rise_10min", False)]


def test_a_rise_at_the_limit_does_not_fire() -> None:
    assert feed([(0, 100), (10, 115)])[1] == []


def test_sparse_readings_are_pro_rated_to_the_window() -> None:
    # Hourly gates: 30 cm in 20 minutes is 15 cm in 10 - not more; 32 cm is.
    assert feed([(0, 100), (20, 130)])[1] == []
    assert feed([(0, 100), (20, 132)])[1] == [(20, "rate:rise_10min", True)]


def test_readings_more_than_two_windows_apart_say_nothing_about_the_rate() -> None:
    assert feed([(0, 100), (21, 200)])[1] == []


def test_a_fall_rule_fires_on_a_fall() -> None:
    _, events = feed([(0, 300), (30, 270), (60, 240)], (RISE_1H, FALL_1H))
    assert events == [(60, "rate:fall_1h", True)]


def test_a_late_reading_is_judged_against_the_readings_before_it_in_time() -> None:
    # Minute 10 (a rise from minute 0) arrives after minute 20.
    _, events = feed([(0, 100), (20, 120), (10, 120)])
    assert events == [(10, "rate:rise_10min", True)]


def test_the_window_keeps_only_two_of_the_longest_windows() -> None:
    state, _ = feed([(m, 100.0) for m in range(0, 300, 5)], (RISE_1H,))
    assert (state.times_ns[-1] - state.times_ns[0]) <= 120 * MINUTE_NS


def test_trend_is_the_rise_per_hour_over_the_last_hour() -> None:
    state, _ = feed([(0, 100), (30, 110), (60, 130)], (RISE_1H,))
    assert rate.trend_cm_h(state, T0 + 60 * MINUTE_NS) == 30.0


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(0, 500), min_size=2, max_size=40),
    gaps=st.lists(st.floats(0.5, 20), min_size=40, max_size=40),
    seed=st.integers(0, 2**32),
)
def test_the_window_does_not_depend_on_arrival_order(
    values: list[float], gaps: list[float], seed: int
) -> None:
    minutes = 0.0
    points = []
    for value, gap in zip(values, gaps, strict=False):
        minutes += gap
        points.append((minutes, value))
    shuffled = points[:]
    random.Random(seed).shuffle(shuffled)
    in_order, _ = feed(points, (RISE_10, RISE_1H))
    any_order, _ = feed(shuffled, (RISE_10, RISE_1H))
    # The kept readings are the same, so every later judgement is the same.
    assert in_order.times_ns == any_order.times_ns[-len(in_order.times_ns) :]
    assert in_order.values == any_order.values[-len(in_order.values) :]
    # And the change ending at any reading is a function of the readings, not of their order.
    for index in range(len(in_order.times_ns)):
        assert rate.change_cm(in_order.times_ns, in_order.values, index, 600 * 10**9, True) == (
            rate.change_cm(
                any_order.times_ns,
                any_order.values,
                index + len(any_order.times_ns) - len(in_order.times_ns),
                600 * 10**9,
                True,
            )
        )


def _change_by_definition(
    times_ns: tuple[int, ...], values: tuple[float, ...], index: int, window_ns: int, rise: bool
) -> float:
    """Every earlier reading up to two windows back, one by one; older than one pro-rated."""
    best = 0.0
    for position in range(index):
        span = times_ns[index] - times_ns[position]
        if span > 2 * window_ns:
            continue
        delta = values[index] - values[position] if rise else values[position] - values[index]
        best = max(best, delta * window_ns / span if span > window_ns else delta)
    return best


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.floats(0, 1000, allow_nan=False)),
        min_size=1,
        max_size=40,
        unique_by=lambda point: point[0],
    ),
    st.integers(1, 200),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_change_matches_its_definition(
    points: list[tuple[int, float]], window: int, rise: bool, rng: random.Random
) -> None:
    ordered = sorted(points)
    times = tuple(t for t, _ in ordered)
    values = tuple(v for _, v in ordered)
    index = rng.randrange(len(ordered))
    assert rate.change_cm(times, values, index, window, rise) == _change_by_definition(
        times, values, index, window, rise
    )

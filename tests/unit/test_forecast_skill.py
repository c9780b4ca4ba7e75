"""Skill scores and warning verification."""

from __future__ import annotations

import math

import pytest

from forecast.skill import coverage, kge, nse, rmse, skill_score, verify_warnings

H = 3600 * 10**9


def test_scores_of_a_perfect_and_a_mean_forecast() -> None:
    observed = [1.0, 2.0, 3.0, 4.0]
    assert nse(observed, observed) == 1.0
    assert kge(observed, observed) == pytest.approx(1.0)
    assert nse([2.5] * 4, observed) == 0.0
    assert rmse([2.0, 2.0], [1.0, 3.0]) == 1.0
    assert math.isnan(nse([1.0, 1.0], [1.0, 1.0]))


def test_skill_against_persistence() -> None:
    observed = [10.0, 12.0, 14.0]
    persistence = [9.0, 10.0, 12.0]
    assert skill_score(persistence, persistence, observed) == 0.0
    assert skill_score(observed, persistence, observed) == 1.0
    assert skill_score([float("nan"), 12.0, 14.0], persistence, observed) == 1.0


def test_coverage_counts_the_outcomes_inside() -> None:
    assert coverage([0, 0, 0, 0], [1, 1, 1, 1], [0.5, 1.0, 2.0, -1]) == 0.5


def test_warnings_are_verified_as_events() -> None:
    result = verify_warnings(
        warnings_ns=[1 * H, 2 * H, 30 * H, 60 * H],
        crossings_ns=[5 * H, 40 * H, 100 * H],
        horizon_ns=12 * H,
        tolerance_ns=H,
    )
    # 5 h: hit (first warning 4 h ahead); 40 h: hit by 30 h (10 h ahead); 100 h: missed;
    # 60 h: no crossing within 13 h, a false alarm.
    assert (result.hits, result.misses, result.false_alarms) == (2, 1, 1)
    assert result.lead_times_s == (4 * 3600.0, 10 * 3600.0)
    assert result.pod == pytest.approx(2 / 3)
    assert result.far == pytest.approx(1 / 3)
    assert result.csi == pytest.approx(0.5)

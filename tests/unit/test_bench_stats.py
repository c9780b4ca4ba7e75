"""The benchmark's statistics: what prints the README's headline figures."""

from __future__ import annotations

import math

import pytest

from benchmarks.ingest import (
    Latency,
    bucket_delta,
    histogram_buckets,
    histogram_quantile,
    latency_from,
)
from ops.status import parse_metrics

INF = float("inf")
EXPOSITION = """\
# HELP siaga_reading_lag_seconds From a reading's own time to the moment it was durable
# TYPE siaga_reading_lag_seconds histogram
siaga_reading_lag_seconds_bucket{le="0.1"} 10.0
siaga_reading_lag_seconds_bucket{le="0.5"} 90.0
siaga_reading_lag_seconds_bucket{le="1.0"} 100.0
siaga_reading_lag_seconds_bucket{le="+Inf"} 100.0
siaga_reading_lag_seconds_sum 30.5
siaga_reading_lag_seconds_count 100.0
siaga_rejections_total{reason="bad_topic"} 3.0
siaga_messages_received_total 1.5e+06
"""


def test_exposition_is_parsed_by_name_and_labels() -> None:
    metrics = parse_metrics(EXPOSITION)
    assert metrics['siaga_rejections_total{reason="bad_topic"}'] == 3.0
    assert metrics["siaga_messages_received_total"] == 1_500_000.0
    assert metrics["siaga_reading_lag_seconds_count"] == 100.0
    assert not any(key.startswith("#") for key in metrics)


def test_buckets_are_sorted_with_inf_last() -> None:
    buckets = histogram_buckets(parse_metrics(EXPOSITION), "siaga_reading_lag_seconds")
    assert buckets == [(0.1, 10.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)]


@pytest.mark.parametrize(
    ("quantile", "expected"),
    [
        (0.05, 0.05),  # half of the first bucket, from zero
        (0.1, 0.1),
        (0.5, 0.1 + 0.4 * (50 - 10) / 80),  # linear inside (0.1, 0.5]
        (0.99, 0.5 + 0.5 * (99 - 90) / 10),
        (1.0, 1.0),
    ],
)
def test_quantiles_interpolate_within_a_bucket_like_prometheus(
    quantile: float, expected: float
) -> None:
    buckets = [(0.1, 10.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)]
    assert histogram_quantile(buckets, quantile) == pytest.approx(expected)


def test_a_quantile_in_the_inf_bucket_is_the_last_finite_bound() -> None:
    assert histogram_quantile([(0.1, 10.0), (1.0, 20.0), (INF, 100.0)], 0.99) == 1.0


def test_an_empty_histogram_has_no_quantile() -> None:
    assert math.isnan(histogram_quantile([], 0.5))
    assert math.isnan(histogram_quantile([(0.1, 0.0), (INF, 0.0)], 0.5))


def test_a_run_is_the_difference_of_two_scrapes() -> None:
    before = [(0.1, 5.0), (1.0, 10.0), (INF, 10.0)]
    after = [(0.1, 5.0), (1.0, 30.0), (INF, 40.0)]
    delta = bucket_delta(after, before)
    assert delta == [(0.1, 0.0), (1.0, 20.0), (INF, 30.0)]
    assert latency_from(delta) == Latency(
        histogram_quantile(delta, 0.5), histogram_quantile(delta, 0.99), 30
    )
    assert latency_from(delta).p50_s == pytest.approx(0.1 + 0.9 * 15 / 20)

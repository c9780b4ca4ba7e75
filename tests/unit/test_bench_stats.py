"""The benchmark's statistics: what prints the README's headline figures."""

from __future__ import annotations

import math

import pytest

from benchmarks.ingest import (
    IngestRun,
    Latency,
    Report,
    Round,
    bucket_delta,
    histogram_buckets,
    histogram_quantile,
    latency_from,
    round_rows,
    round_verdicts,
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


def _round(broker: float, naive: float, siaga: float, stored: int) -> Round:
    def run(rate: float) -> IngestRun:
        return IngestRun(messages=1000, seconds=1000 / rate, cpu_s=0.0, peak_rss_bytes=0)

    return Round(broker, run(naive), run(siaga), stored, "1.00 2.00 3.00")


def test_rounds_are_judged_against_their_own_ceiling_and_the_first_round() -> None:
    report = Report(messages=1000, stations=10, expected_in_influx=3000, stored_in_influx=3000)
    report.rounds = [
        _round(10_000, 5_000, 9_000, 1000),
        _round(12_000, 5_000, 8_000, 2000),
        _round(10_000, 5_000, 7_200, 3000),
    ]
    rows = round_rows(report)
    assert rows[1] == [
        "2", "12,000", "5,000", "8,000", "0.67x", "1.60x", "0.89", "2,000", "1.00 2.00 3.00",
    ]  # fmt: skip
    low, drift, _ = round_verdicts(report)
    assert low.endswith("(lowest 0.67x): FAIL")
    assert drift.endswith("(widest 20%): FAIL")
    report.rounds = report.rounds[:1]
    low, drift, stored = round_verdicts(report)
    assert low.endswith("(lowest 0.90x): pass")
    assert drift.endswith("(widest 0%): pass")
    assert stored.startswith("Siaga's database held 3,000 of 3,000 readings")

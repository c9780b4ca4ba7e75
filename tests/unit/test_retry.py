"""The retry policy: jittered delays in [bound/2, bound], the bound growing to a cap."""

from __future__ import annotations

import random
from itertools import islice

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.retry import RetryPolicy


def bounds(policy: RetryPolicy, count: int) -> list[float]:
    out, bound = [], min(policy.initial_s, policy.max_s)
    for _ in range(count):
        out.append(bound)
        bound = min(bound * policy.multiplier, policy.max_s)
    return out


def test_defaults() -> None:
    assert RetryPolicy() == RetryPolicy(initial_s=0.05, max_s=5.0, multiplier=2.0, deadline_s=2.0)


def test_bound_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=5.0)
    assert bounds(policy, 7) == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


class Extremes(random.Random):
    """A 'random' source that alternates the lowest and the highest draw."""

    def __init__(self) -> None:
        super().__init__(0)
        self.calls = 0

    def uniform(self, a: float, b: float) -> float:
        self.calls += 1
        return a if self.calls % 2 else b


def test_delays_use_the_range_half_bound_to_bound() -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=5.0, multiplier=2.0)
    delays = list(islice(policy.delays(Extremes()), 8))
    assert delays == [0.25, 1.0, 1.0, 4.0, 2.5, 5.0, 2.5, 5.0]


@pytest.mark.parametrize("seed", range(5))
def test_every_delay_lies_within_its_bound(seed: int) -> None:
    policy = RetryPolicy(initial_s=0.05, max_s=5.0, multiplier=2.0)
    delays = list(islice(policy.delays(random.Random(seed)), 20))
    for delay, bound in zip(delays, bounds(policy, 20), strict=True):
        assert bound / 2 <= delay <= bound
    assert max(delays) <= 5.0
    assert min(delays[10:]) >= 2.5  # capped bound reached: never shorter than half the cap


@given(
    st.floats(min_value=1e-3, max_value=10),
    st.floats(min_value=1e-3, max_value=100),
    st.floats(min_value=1.0, max_value=4.0),
    st.integers(min_value=0, max_value=2**32),
)
def test_delays_within_bounds_for_any_policy(
    initial_s: float, max_s: float, multiplier: float, seed: int
) -> None:
    policy = RetryPolicy(initial_s=initial_s, max_s=max_s, multiplier=multiplier)
    delays = list(islice(policy.delays(random.Random(seed)), 12))
    for delay, bound in zip(delays, bounds(policy, 12), strict=True):
        assert bound / 2 <= delay <= bound
    assert all(delay <= max_s for delay in delays)


def test_growth_on_average() -> None:
    policy = RetryPolicy(initial_s=0.01, max_s=100.0, multiplier=2.0)
    delays = list(islice(policy.delays(random.Random(7)), 10))
    # Each bound doubles, each delay is at least half its bound: the 2nd-next delay is larger.
    assert all(delays[i + 2] > delays[i] for i in range(8))


def test_seeded_rng_is_deterministic() -> None:
    policy = RetryPolicy()
    first = list(islice(policy.delays(random.Random(42)), 10))
    again = list(islice(policy.delays(random.Random(42)), 10))
    other = list(islice(policy.delays(random.Random(43)), 10))
    assert first == again
    assert first != other


def test_delays_never_end() -> None:
    assert len(list(islice(RetryPolicy(initial_s=1, max_s=1).delays(), 1000))) == 1000


def test_without_an_rng_delays_are_still_in_range() -> None:
    delays = list(islice(RetryPolicy(initial_s=1.0, max_s=1.0).delays(), 50))
    assert all(0.5 <= delay <= 1.0 for delay in delays)
    assert len(set(delays)) > 1  # jittered, not constant


def test_no_delay_exceeds_max_s_even_when_initial_s_is_larger() -> None:
    delays = list(islice(RetryPolicy(initial_s=10.0, max_s=1.0).delays(random.Random(1)), 3))
    assert all(delay <= 1.0 for delay in delays)

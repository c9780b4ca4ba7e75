"""The one retry policy: a bound growing to a cap, delays drawn within it by the jitter."""

from __future__ import annotations

import random
from itertools import islice, pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.retry import Jitter, RetryPolicy


def bounds(policy: RetryPolicy, count: int) -> list[float]:
    out, bound = [], min(policy.initial_s, policy.max_s)
    for _ in range(count):
        out.append(bound)
        bound = min(bound * policy.multiplier, policy.max_s)
    return out


def test_defaults() -> None:
    assert RetryPolicy() == RetryPolicy(
        initial_s=0.05, max_s=5.0, multiplier=2.0, jitter="equal", deadline_s=2.0
    )


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


@given(st.integers(min_value=1, max_value=40), st.sampled_from(["equal", "full"]), st.integers())
def test_a_delivery_backoff_stays_within_its_documented_bounds(
    attempt: int, jitter: Jitter, seed: int
) -> None:
    # The notifier's deliveries (notify.retry_*): 1 s doubling to 5 minutes.
    policy = RetryPolicy(initial_s=1.0, max_s=300.0, multiplier=2.0, jitter=jitter)
    bound = min(300.0, 2.0 ** (attempt - 1))
    assert policy.bound_s(attempt) == bound
    delay = policy.delay_s(attempt, random.Random(seed))
    low = bound / 2 if jitter == "equal" else 0.0
    assert low <= delay <= bound


def test_without_jitter_the_delays_are_the_bounds() -> None:
    # The engine's retries and siaga up's restarts: doubling, capped, never drawn.
    policy = RetryPolicy(initial_s=0.1, max_s=5.0, jitter="none", deadline_s=None)
    assert list(islice(policy.delays(), 8)) == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert policy.delay_s(0) == 0.1  # (before any failure: the first delay)


def test_a_retry_that_never_ends_stays_at_the_cap() -> None:
    policy = RetryPolicy(initial_s=1.0, max_s=30.0, multiplier=4.0, jitter="none")
    assert policy.bound_s(10_000) == 30.0  # 4.0 ** 9999 overflows a float
    assert list(islice(policy.delays(), 2000))[-1] == 30.0


@given(
    st.floats(min_value=1e-3, max_value=10),
    st.floats(min_value=1e-3, max_value=100),
    st.floats(min_value=1.0, max_value=4.0),
    st.sampled_from(["equal", "full", "none"]),
    st.integers(min_value=0, max_value=2**32),
)
def test_the_policy_is_one_rule_whatever_its_values(
    initial_s: float, max_s: float, multiplier: float, jitter: Jitter, seed: int
) -> None:
    """delays() is delay_s() for attempts 1, 2, …; each within its bound; bounds never shrink,
    start at min(initial_s, max_s) and never pass max_s."""
    policy = RetryPolicy(initial_s=initial_s, max_s=max_s, multiplier=multiplier, jitter=jitter)
    delays = list(islice(policy.delays(random.Random(seed)), 30))
    again = random.Random(seed)
    assert delays == [policy.delay_s(attempt, again) for attempt in range(1, 31)]
    bounds_s = [policy.bound_s(attempt) for attempt in range(1, 31)]
    assert bounds_s[0] == min(initial_s, max_s)
    assert all(a <= b <= max_s for a, b in pairwise(bounds_s))
    low = {"equal": 0.5, "full": 0.0, "none": 1.0}[jitter]
    for delay, bound in zip(delays, bounds_s, strict=True):
        assert bound * low <= delay <= bound

"""A retry policy is a value: exponential backoff with jitter, a cap and a deadline."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How to wait between attempts.

    Attributes:
        initial_s: The first delay's upper bound.
        max_s: No delay is longer than this.
        multiplier: Growth of the bound per attempt.
        deadline_s: Total time budget for all attempts; None for no limit.
    """

    initial_s: float = 0.05
    max_s: float = 5.0
    multiplier: float = 2.0
    deadline_s: float | None = 2.0

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Successive delays: each uniformly random in [bound/2, bound], bound growing to ``max_s``.

        Jitter keeps many workers from retrying in step after a shared outage; the lower half
        is cut off so that a retry never comes back immediately.
        """
        draw = (rng or random.Random()).uniform  # noqa: S311 - jitter, not cryptography
        bound = min(self.initial_s, self.max_s)
        while True:
            yield draw(bound / 2, bound)
            bound = min(bound * self.multiplier, self.max_s)

"""When to try a delivery again: exponential backoff with jitter, a cap, a deadline.

``equal`` jitter waits uniformly in [bound/2, bound] (never retries at once; the ingest
path's choice); ``full`` jitter in [0, bound] (spreads a crowd best, AWS's advice for many
clients after a shared outage). The bound starts at ``initial_s`` and grows by ``multiplier``
per attempt up to ``max_s``. Past the deadline a delivery is failed, not retried.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class Backoff:
    """A delivery retry policy (a value)."""

    initial_s: float = 1.0
    max_s: float = 300.0
    multiplier: float = 2.0
    jitter: Literal["equal", "full"] = "equal"
    deadline_s: float = 6 * 3600.0

    def bound_s(self, attempt: int) -> float:
        """The largest wait after the ``attempt``-th failure (1-based)."""
        return min(self.max_s, self.initial_s * self.multiplier ** max(0, attempt - 1))

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after the ``attempt``-th failure."""
        bound = self.bound_s(attempt)
        draw = (rng or random.Random()).uniform  # noqa: S311 - jitter, not cryptography
        return draw(bound / 2, bound) if self.jitter == "equal" else draw(0.0, bound)

"""Siaga's one retry policy: a value of exponential backoff with jitter, a cap and a deadline.

Every retry and restart in Siaga waits by it: the ingest worker's writes, spool drain and
reconnects, its supervised loops (:func:`ingest.supervise.supervise`), the alert engine's
commits and alert writes, the notifier's deliveries, and ``siaga up``'s restarts of its parts.

The bound after the ``n``-th failure is ``initial_s * multiplier ** (n - 1)``, capped at
``max_s``. The delay within it depends on the jitter:

- ``equal`` waits uniformly in [bound/2, bound]: many clients retrying after a shared outage do
  not retry in step, and none comes back at once (the ingest path's choice);
- ``full`` waits uniformly in [0, bound]: spreads a crowd best (AWS's advice for many clients);
- ``none`` waits the bound itself (one process retrying its own database or restarting a child).

The deadline is the caller's budget for all attempts (past it a write goes to the spool, a
delivery fails); None means retrying for as long as it takes.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from typing import Literal

Jitter = Literal["equal", "full", "none"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How to wait between attempts.

    Attributes:
        initial_s: The first delay's upper bound.
        max_s: No delay is longer than this.
        multiplier: Growth of the bound per attempt.
        jitter: How a delay is drawn within its bound (see the module's description).
        deadline_s: Total time budget for all attempts; None for no limit.
    """

    initial_s: float = 0.05
    max_s: float = 5.0
    multiplier: float = 2.0
    jitter: Jitter = "equal"
    deadline_s: float | None = 2.0

    def bound_s(self, attempt: int) -> float:
        """The largest wait after the ``attempt``-th failure (1-based)."""
        try:
            grown = self.initial_s * self.multiplier ** max(0, attempt - 1)
        except OverflowError:  # a loop that retries for ever outgrows any float
            return self.max_s
        return min(self.max_s, grown)

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait after the ``attempt``-th failure (1-based), drawn from ``rng``."""
        bound = self.bound_s(attempt)
        if self.jitter == "none":
            return bound
        draw = (rng or random.Random()).uniform  # noqa: S311 - jitter, not cryptography
        return draw(bound / 2, bound) if self.jitter == "equal" else draw(0.0, bound)

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The successive waits after the first, second, … failure; never ends."""
        source = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        for attempt in count(1):
            yield self.delay_s(attempt, source)

"""The supervisor of secondary loops: log, count, restart with growing backoff, never give up."""

from __future__ import annotations

import pytest

from ingest.retry import RetryPolicy
from ingest.supervise import supervise


@pytest.mark.logged_exceptions
async def test_failures_restart_with_growing_backoff_and_a_return_ends_it() -> None:
    waits: list[float] = []
    failures: list[str] = []
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs <= 4:
            raise RuntimeError(f"bug {runs}")

    async def sleep(delay_s: float) -> None:
        waits.append(delay_s)

    await supervise(
        "health",
        loop,
        restart=RetryPolicy(initial_s=1.0, max_s=4.0, deadline_s=0.001),  # deadline ignored
        on_failure=failures.append,
        sleep=sleep,
        monotonic=lambda: 0.0,
    )
    assert runs == 5
    assert failures == ["health"] * 4
    bounds = [1.0, 2.0, 4.0, 4.0]
    assert all(bound / 2 <= wait <= bound for wait, bound in zip(waits, bounds, strict=True))


@pytest.mark.logged_exceptions
async def test_a_long_healthy_run_resets_the_backoff() -> None:
    waits: list[float] = []
    clock = [0.0]
    runs = 0

    async def loop() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            clock[0] += 120.0  # this run lasted two minutes before failing
        if runs <= 3:
            raise RuntimeError("bug")

    async def sleep(delay_s: float) -> None:
        waits.append(delay_s)

    await supervise(
        "registry-watch",
        loop,
        restart=RetryPolicy(initial_s=1.0, max_s=8.0, deadline_s=None),
        sleep=sleep,
        monotonic=lambda: clock[0],
        healthy_after_s=60.0,
    )
    assert 0.5 <= waits[0] <= 1.0
    assert 1.0 <= waits[1] <= 2.0
    assert 0.5 <= waits[2] <= 1.0  # back to the first delay

"""Secondary loops (health snapshots, registry watch) supervised: a bug there never stops ingest.

Only the data path's own failures end a worker. A secondary loop that raises is logged with
its traceback, counted, and started again after a backoff that grows while it keeps failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ingest.retry import RetryPolicy

log = logging.getLogger(__name__)

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


async def supervise(
    name: str,
    start: LoopFactory,
    *,
    restart: RetryPolicy,
    on_failure: Callable[[str], None] = lambda _name: None,
    healthy_after_s: float = 60.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``start()`` until it returns; restart it with backoff whenever it raises.

    Args:
        name: The loop's name, for logs and the failure callback.
        start: Makes a fresh coroutine of the loop for each run.
        restart: Delays between restarts (its deadline is ignored: a loop is never given up).
        on_failure: Called with ``name`` after each failure (a counter, typically).
        healthy_after_s: A run that lasted this long resets the backoff to its first delay.
        sleep: Waits between restarts (injected in tests).
        monotonic: Clock for run lengths (injected in tests).
    """
    delays = restart.delays()
    while True:
        started = monotonic()
        try:
            await start()
        except Exception:
            if monotonic() - started >= healthy_after_s:
                delays = restart.delays()
            delay_s = next(delays)
            log.exception("%s loop failed; restarting it in %.1f s", name, delay_s)
            on_failure(name)
            await sleep(delay_s)
            continue
        return

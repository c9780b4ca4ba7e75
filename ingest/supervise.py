"""Secondary loops (health snapshots, registry watch) supervised: a bug there never stops ingest.

Only the data path's own failures end a worker. A secondary loop that raises is logged with
its traceback, counted, and started again after a backoff that grows while it keeps failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
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


Spawn = Callable[[str, LoopFactory], "asyncio.Task[None]"]
"""Starts one more supervised task (name, coroutine function) in a :func:`supervised` block."""


@contextlib.asynccontextmanager
async def supervised(
    loops: Mapping[str, LoopFactory],
    *,
    restart: RetryPolicy,
    on_failure: Callable[[str], None] = lambda _name: None,
    task_prefix: str = "siaga",
    healthy_after_s: float = 60.0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> AsyncIterator[Spawn]:
    """Run each loop under :func:`supervise` in one task group while the block runs.

    Leaving the block cancels the loops and waits for them; an exception from the block comes
    out as itself, not wrapped in a group. The block gets a :data:`Spawn` to start more
    supervised tasks (one-off jobs too: :func:`supervise` returns when its job does) that end
    with the block.

    Args:
        loops: Name → coroutine function of each loop.
        restart: Delays between restarts of a loop that raised.
        on_failure: Called with a loop's name after each of its failures.
        task_prefix: Tasks are named ``<task_prefix>.<name>``.
        healthy_after_s: A run that lasted this long resets that loop's backoff.
        sleep: Waits between restarts (injected in tests).
        monotonic: Clock for run lengths (injected in tests).
    """
    error: BaseException | None = None
    async with asyncio.TaskGroup() as group:
        tasks: set[asyncio.Task[None]] = set()

        def spawn(name: str, start: LoopFactory) -> asyncio.Task[None]:
            task = group.create_task(
                supervise(
                    name,
                    start,
                    restart=restart,
                    on_failure=on_failure,
                    healthy_after_s=healthy_after_s,
                    sleep=sleep,
                    monotonic=monotonic,
                ),
                name=f"{task_prefix}.{name}",
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            return task

        for name, start in loops.items():
            spawn(name, start)
        try:
            yield spawn
        # Kept to re-raise below, once the tasks are gone: a group would wrap it.
        except BaseException as exc:  # noqa: BLE001
            error = exc
        finally:
            for task in list(tasks):
                task.cancel()
    if error is not None:
        raise error

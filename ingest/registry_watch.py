"""Picks up registry edits in running workers: no restart to add, rotate or revoke a device."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devices.errors import ConfigError
from devices.registry import Registry
from ingest.filewatch import FileChanges, poll
from ingest.metrics import IngestMetrics

log = logging.getLogger(__name__)


_TICK_S = 0.01


async def _watch_lag(worst: list[float]) -> None:
    """Record in ``worst[0]`` the longest the event loop came late to a 10 ms tick."""
    while True:
        before = time.perf_counter()
        await asyncio.sleep(_TICK_S)
        worst[0] = max(worst[0], time.perf_counter() - before - _TICK_S)


class RegistryWatcher:
    """Reloads the registry when its files change; a broken edit keeps the last good registry.

    The new registry is read and validated in a thread while ingestion goes on with the old
    one, then swapped in at once. The thread shares the interpreter lock, so ingestion slows
    down meanwhile; the longest event-loop stall of each reload is measured (``last_stall_s``).

    Args:
        paths: The files to watch, or a function naming them (a stations file may link a CSV).
        load: Reads and parses them (raises ConfigError on a bad file).
        apply: Called with each newly loaded registry.
        interval_s: How often to look at the files.
        metrics: Where to show each reload's time and stall.
    """

    def __init__(
        self,
        paths: Sequence[Path] | Callable[[], Sequence[Path]],
        load: Callable[[], Registry],
        apply: Callable[[Registry], None],
        interval_s: float,
        metrics: IngestMetrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._changes = FileChanges(paths)
        self._load = load
        self._apply = apply
        self._interval_s = interval_s
        self.reloads = 0
        self.last_load_s = 0.0
        self.last_stall_s = 0.0

    async def check(self) -> bool:
        """Reload if the files changed since the last look; returns whether it reloaded."""
        if not self._changes.changed():
            return False
        worst = [0.0]
        started = time.perf_counter()
        lag = asyncio.create_task(_watch_lag(worst), name="registry-watch.lag")
        # A national registry is a million new objects: their allocation would trigger full
        # cyclic collections (~0.4 s each, holding the interpreter lock) while the thread reads.
        # The collector waits until the new registry is in place (``apply`` may freeze it).
        collecting = gc.isenabled()
        gc.disable()
        try:
            try:
                registry = await asyncio.to_thread(self._load)
            except ConfigError as exc:
                log.error("registry not reloaded, keeping the previous one: %s", exc)
                return False
            finally:
                lag.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lag
            applying = time.perf_counter()
            self._apply(registry)
            done = time.perf_counter()
        finally:
            if collecting:
                gc.enable()
        self.last_load_s = done - started
        self.last_stall_s = max(worst[0], done - applying)
        self.reloads += 1
        if self._metrics is not None:
            self._metrics.registry_load_seconds.set(self.last_load_s)
            self._metrics.registry_stall_seconds.set(self.last_stall_s)
        log.info(
            "registry reloaded: %d stations, %d devices in %.2f s (event loop stalled %.3f s)",
            len(registry.stations()),
            len(registry.devices),
            self.last_load_s,
            self.last_stall_s,
        )
        return True

    async def run(self) -> None:
        """Look every ``interval_s`` until cancelled."""
        await poll(self.check, self._interval_s)

"""Picks up registry edits in running workers: no restart to add, rotate or revoke a device."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from devices.errors import ConfigError
from devices.registry import Registry

log = logging.getLogger(__name__)


def _signature(paths: Sequence[Path]) -> tuple[tuple[int, int] | None, ...]:
    signature: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            status = path.stat()
        except FileNotFoundError:
            signature.append(None)
        else:
            signature.append((status.st_mtime_ns, status.st_size))
    return tuple(signature)


class RegistryWatcher:
    """Reloads the registry when its files change; a broken edit keeps the last good registry.

    Args:
        paths: The files to watch.
        load: Reads and parses them (raises ConfigError on a bad file).
        apply: Called with each newly loaded registry.
        interval_s: How often to look at the files.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        load: Callable[[], Registry],
        apply: Callable[[Registry], None],
        interval_s: float,
    ) -> None:
        self._paths = list(paths)
        self._load = load
        self._apply = apply
        self._interval_s = interval_s
        self._seen = _signature(self._paths)
        self.reloads = 0

    async def check(self) -> bool:
        """Reload if the files changed since the last look; returns whether it reloaded."""
        current = _signature(self._paths)
        if current == self._seen:
            return False
        self._seen = current
        try:
            registry = await asyncio.to_thread(self._load)
        except ConfigError as exc:
            log.error("registry not reloaded, keeping the previous one: %s", exc)
            return False
        self._apply(registry)
        self.reloads += 1
        log.info(
            "registry reloaded: %d stations, %d devices",
            len(registry.stations()),
            len(registry.devices),
        )
        return True

    async def run(self) -> None:
        """Look every ``interval_s`` until cancelled."""
        while True:
            await asyncio.sleep(self._interval_s)
            await self.check()

"""Whether watched files changed, and a loop that looks every so often.

Files edited in place (the station registry, the rules, the notification policy) are reloaded
by running processes. A change is a different modification time or size, or a file that
appeared or vanished; reading the files is left to the caller, who knows how to parse them and
what to keep when an edit is broken.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NoReturn

Signature = tuple[tuple[int, int] | None, ...]
"""Each file's (modification time in ns, size in bytes), None for a file that is absent."""


def signature(paths: Sequence[Path]) -> Signature:
    """What :class:`FileChanges` compares: each file's modification time and size."""
    found: list[tuple[int, int] | None] = []
    for path in paths:
        try:
            status = path.stat()
        except FileNotFoundError:
            found.append(None)
        else:
            found.append((status.st_mtime_ns, status.st_size))
    return tuple(found)


class FileChanges:
    """Tells whether files changed since the last look (the first look is at construction).

    Args:
        paths: The files, or a function naming them (a stations file may link a CSV, so the
            set of files can change too).
    """

    def __init__(self, paths: Sequence[Path] | Callable[[], Sequence[Path]]) -> None:
        self._paths = paths if callable(paths) else (lambda fixed=tuple(paths): fixed)
        self._seen = signature(self._paths())

    def changed(self) -> bool:
        """Whether the files differ from the last look; each change is reported once."""
        current = signature(self._paths())
        if current == self._seen:
            return False
        self._seen = current
        return True


async def poll(
    check: Callable[[], object],
    interval_s: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> NoReturn:
    """Call ``check`` every ``interval_s`` (awaiting it when it is a coroutine) until cancelled.

    Args:
        check: Looks at the files and reloads what changed; it must not raise for a bad edit.
        interval_s: Time between looks.
        sleep: The wait (tests pass their own).
    """
    while True:
        await sleep(interval_s)
        result = check()
        if inspect.isawaitable(result):
            await result

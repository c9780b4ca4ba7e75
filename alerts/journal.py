"""The engine's input journal: what the engine was given since the last snapshot of its state.

The engine (:class:`alerts.engine.Engine`) is deterministic: :meth:`Engine.process` and
:meth:`Engine.tick` depend on nothing but its state and their arguments. So instead of the
state of every station that reported (≈ 900 bytes a station, every station every second at
national load), each checkpoint makes durable the *inputs* since the previous one: the readings
of the engine's stations with the clock they were evaluated at, and each tick's clock (≈ 60
bytes a reading). That is one journal entry, written in the transaction of the checkpoint's
transitions. Now and then (``alerts.snapshot_interval_s``) the state of every key changed
since the last snapshot is saved with the number of the newest entry it covers, and the
entries it covers are deleted.

After a restart the engine restores the snapshot and replays the entries after it in order:
the same state, the same events and the same transitions as before the crash (which the
incident store already holds, and skips).

Entries and the snapshot's mark live beside the engine's state keys (station ids, groups,
``engine:``) in the same key → bytes table, under the ``journal:`` prefix. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from alerts.engine import Engine, Step
from alerts.incidents.errors import IncidentStoreError
from devices.readings import Reading

JOURNAL_VERSION = 1
PREFIX = "journal:"
MARK_KEY = "journal:snapshot"
"""The key whose value is the number of the newest entry the saved state covers (ASCII)."""
_DIGITS = 20


class JournalError(IncidentStoreError):
    """A stored journal entry that cannot be read back (written by a newer Siaga, or damaged)."""


def entry_key(number: int) -> str:
    """The state key of journal entry ``number`` (zero-padded: keys sort as numbers)."""
    return f"{PREFIX}{number:0{_DIGITS}d}"


def is_journal_key(key: str) -> bool:
    """Whether ``key`` is the journal's (an entry or the snapshot's mark), not the engine's."""
    return key.startswith(PREFIX)


class JournalBuffer:
    """The engine's inputs since the last checkpoint, encoded as they come (a few µs a call)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.readings = 0

    def __bool__(self) -> bool:
        return bool(self._parts)

    def record_process(self, readings: Sequence[Reading], now_ns: int) -> None:
        """:meth:`Engine.process` was called with ``readings`` at ``now_ns``."""
        self._parts.append(
            orjson.dumps([now_ns, [[r.station_id, r.ts_ns, r.values, r.seq] for r in readings]])
        )
        self.readings += len(readings)

    def record_tick(self, now_ns: int) -> None:
        """:meth:`Engine.tick` was called at ``now_ns``."""
        self._parts.append(orjson.dumps([now_ns]))

    def take(self) -> bytes | None:
        """One journal entry of everything recorded since the last call (None: nothing)."""
        if not self._parts:
            return None
        body = b'{"v":%d,"ops":[%s]}' % (JOURNAL_VERSION, b",".join(self._parts))
        self._parts = []
        self.readings = 0
        return body


@dataclass
class Replayed:
    """What a replay decided, and how many readings it gave the engine again."""

    step: Step
    readings: int


def replay(engine: Engine, bodies: Iterable[bytes]) -> Replayed:
    """Give ``engine`` again, in order, the inputs the entries recorded; their decisions.

    Raises:
        JournalError: An entry is not a journal entry this version can read.
    """
    step = Step()
    readings = 0
    for body in bodies:
        for op in _ops(body):
            if len(op) == 1:
                step.extend(engine.tick(op[0]))
            else:
                now_ns, rows = op
                readings += len(rows)
                step.extend(engine.process([Reading(*row) for row in rows], now_ns))
    return Replayed(step, readings)


def _ops(body: bytes) -> list[list[Any]]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise JournalError(f"journal entry is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("v") != JOURNAL_VERSION:
        version = document.get("v") if isinstance(document, dict) else None
        raise JournalError(f"journal entry of unknown version {version!r}")
    ops = document.get("ops")
    if not isinstance(ops, list):
        raise JournalError("journal entry without its ops")
    return ops


@dataclass
class Saved:
    """What a store held, split for a restart.

    Attributes:
        states: The engine's own keys (for :meth:`Engine.restore`).
        entries: The entries after the snapshot, oldest first: ``(number, body)``.
        covered: The newest entry the saved state covers (0: none).
        stale: Entries the state already covers but still stored (the next snapshot deletes
            them).
    """

    states: dict[str, bytes] = field(default_factory=dict)
    entries: list[tuple[int, bytes]] = field(default_factory=list)
    covered: int = 0
    stale: list[int] = field(default_factory=list)

    @property
    def next_number(self) -> int:
        """The number the next entry gets."""
        newest = max([self.covered, *(n for n, _ in self.entries), *self.stale])
        return newest + 1


def split(stored: Mapping[str, bytes]) -> Saved:
    """The engine's state, and the journal entries to replay after it.

    Raises:
        JournalError: The snapshot's mark or an entry's key is damaged.
    """
    saved = Saved()
    mark = stored.get(MARK_KEY)
    if mark is not None:
        try:
            saved.covered = int(mark)
        except ValueError:
            raise JournalError(f"journal snapshot mark {mark[:40]!r} is not a number") from None
    entries: list[tuple[int, bytes]] = []
    for key, blob in stored.items():
        if not is_journal_key(key):
            saved.states[key] = blob
            continue
        if key == MARK_KEY:
            continue
        try:
            number = int(key.removeprefix(PREFIX))
        except ValueError:
            raise JournalError(f"journal key {key[:60]!r} has no entry number") from None
        if number <= saved.covered:
            saved.stale.append(number)
        else:
            entries.append((number, blob))
    saved.entries = sorted(entries)
    saved.stale.sort()
    return saved


def snapshot(
    engine_states: Mapping[str, bytes], covered: int, entries: Iterable[int]
) -> dict[str, bytes | None]:
    """The rows of a snapshot: the engine's changed keys, the mark, the covered entries deleted.

    Args:
        engine_states: :meth:`Engine.dirty_state` (every key changed since the last snapshot).
        covered: The newest entry this state includes.
        entries: Entries still stored that it covers (None: delete the row).
    """
    rows: dict[str, bytes | None] = {entry_key(number): None for number in entries}
    rows.update(engine_states)
    rows[MARK_KEY] = str(covered).encode()
    return rows

"""Grouping: many notices for one recipient group become one message.

Alertmanager's timing, driven by an injected clock: a new group waits ``group_wait`` for
company before its first message; later notices join the next message at most every
``group_interval``; while members keep firing and nothing new happens, the group repeats after
``repeat_interval``. Ten stations of one regency crossing WASPADA together make one message.
Every notice added leaves in exactly one (non-repeat) batch: grouping never loses an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from alerts.pipeline.model import Notice

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Timings:
    """When grouped messages leave (seconds; the defaults are the policy file's,
    :class:`~alerts.notify.policy.Policy`)."""

    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float


@dataclass(frozen=True, slots=True)
class Batch:
    """One message's worth of notices for one recipient group.

    Attributes:
        group: The recipient group.
        key: The values of the group-by labels shared by the notices.
        notices: The notices, in arrival order.
        repeat: A reminder of still-firing members, not news.
    """

    group: str
    key: tuple[str, ...]
    notices: tuple[Notice, ...]
    repeat: bool = False


@dataclass(slots=True)
class _Bucket:
    pending: list[Notice] = field(default_factory=list)
    first_pending_ns: int = 0
    last_flush_ns: int | None = None
    firing: dict[int, Notice] = field(default_factory=dict)


def group_key(notice: Notice, group_by: Sequence[str]) -> tuple[str, ...]:
    """The values of ``group_by`` labels of a notice (its bucket within a recipient group)."""
    return tuple(notice.labels.get(label, "") for label in group_by)


class Grouper:
    """The grouping state of every (recipient group, key); all time comes from the caller."""

    def __init__(self, timings: Timings, group_by: Sequence[str] = ("regency", "kind")) -> None:
        self.timings = timings
        self.group_by = tuple(group_by)
        self._buckets: dict[tuple[str, tuple[str, ...]], _Bucket] = {}

    def __len__(self) -> int:
        """Notices waiting to leave."""
        return sum(len(bucket.pending) for bucket in self._buckets.values())

    def add(self, group: str, notice: Notice, now_ns: int) -> None:
        """Queue a notice for ``group``; it leaves with the group's next batch."""
        bucket = self._buckets.setdefault((group, group_key(notice, self.group_by)), _Bucket())
        if not bucket.pending:
            bucket.first_pending_ns = now_ns
        bucket.pending.append(notice)

    def forget(self, incident_ids: Sequence[int]) -> None:
        """Stop repeating these incidents (they were acknowledged)."""
        for bucket in self._buckets.values():
            for incident_id in incident_ids:
                bucket.firing.pop(incident_id, None)

    def next_due_ns(self) -> int | None:
        """When :meth:`due` will next have something to say (None: nothing is waiting)."""
        moments = [self._due_at(bucket) for bucket in self._buckets.values()]
        present = [moment for moment in moments if moment is not None]
        return min(present) if present else None

    def due(self, now_ns: int) -> list[Batch]:
        """The batches whose time has come, and the state advanced past them."""
        batches: list[Batch] = []
        for (group, key), bucket in list(self._buckets.items()):
            due_at = self._due_at(bucket)
            if due_at is None or due_at > now_ns:
                if not bucket.pending and not bucket.firing:
                    del self._buckets[(group, key)]
                continue
            if bucket.pending:
                notices = tuple(bucket.pending)
                bucket.pending.clear()
                for notice in notices:
                    if notice.firing:
                        bucket.firing[notice.incident_id] = notice
                    else:
                        bucket.firing.pop(notice.incident_id, None)
                batches.append(Batch(group, key, notices))
            else:
                batches.append(Batch(group, key, tuple(bucket.firing.values()), repeat=True))
            bucket.last_flush_ns = now_ns
        return batches

    def _due_at(self, bucket: _Bucket) -> int | None:
        timings = self.timings
        if bucket.pending:
            if bucket.last_flush_ns is None:
                return bucket.first_pending_ns + int(timings.group_wait_s * _NS)
            return max(
                bucket.first_pending_ns, bucket.last_flush_ns + int(timings.group_interval_s * _NS)
            )
        if bucket.firing and bucket.last_flush_ns is not None:
            return bucket.last_flush_ns + int(timings.repeat_interval_s * _NS)
        return None

"""Batches: what is stored together and acknowledged together, and when to flush one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from devices import Reading, Reason, Rejection
from ingest.settings import BatchSettings


@dataclass(frozen=True, slots=True)
class StoredRejection:
    """A rejection as stored: the reason plus where it came from.

    Attributes:
        rejection: Reason, detail and station.
        topic: The MQTT topic the message arrived on.
        payload_excerpt: The start of the payload, as text (undecodable bytes escaped).
        received_ns: When the worker received it; the stored point's timestamp.
    """

    rejection: Rejection
    topic: str
    payload_excerpt: str
    received_ns: int


@dataclass(slots=True)
class Batch:
    """Readings and rejections that are written, spooled and acknowledged as one."""

    readings: list[Reading] = field(default_factory=list)
    rejections: list[StoredRejection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.readings) + len(self.rejections)


def excerpt(payload: bytes, limit: int = 512) -> str:
    """The first ``limit`` bytes of a payload as text, with undecodable bytes escaped."""
    text = payload[:limit].decode("utf-8", errors="backslashreplace")
    return text + "…" if len(payload) > limit else text


def serialize_batch(batch: Batch) -> bytes:
    """Encode a batch for the spool (compact JSON, exact floats)."""
    return orjson.dumps(
        {
            "r": [[r.station_id, r.ts_ns, r.seq, r.values] for r in batch.readings],
            "j": [
                [
                    j.rejection.reason.value,
                    j.rejection.detail,
                    j.rejection.station_id,
                    j.topic,
                    j.payload_excerpt,
                    j.received_ns,
                ]
                for j in batch.rejections
            ],
        }
    )


def deserialize_batch(data: bytes) -> Batch:
    """Decode a batch written by :func:`serialize_batch`."""
    document: dict[str, Any] = orjson.loads(data)
    return Batch(
        [Reading(s, ts, values, seq) for s, ts, seq, values in document["r"]],
        [
            StoredRejection(Rejection(Reason(reason), detail, station), topic, text, received)
            for reason, detail, station, topic, text, received in document["j"]
        ],
    )


_BATCH = BatchSettings.model_fields  # the settings tree is the one source of every default


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """When a batch is flushed: at ``max_points`` entries or ``flush_interval_s`` after its first.

    Defaults are those of :class:`~ingest.settings.BatchSettings`.
    """

    max_points: int = _BATCH["max_points"].default
    flush_interval_s: float = _BATCH["flush_interval_s"].default

    @classmethod
    def from_settings(cls, settings: BatchSettings) -> BatchPolicy:
        """The policy a settings section describes."""
        return cls(settings.max_points, settings.flush_interval_s)


class Batcher:
    """Accumulates entries and their acknowledgement tokens; decides when to flush. No I/O.

    Args:
        policy: Size and age bounds.
    """

    def __init__(self, policy: BatchPolicy) -> None:
        self._policy = policy
        self._batch = Batch()
        self._tokens: list[object] = []
        self._opened_at: float | None = None

    def add(
        self,
        readings: Sequence[Reading],
        rejections: Sequence[StoredRejection],
        token: object,
        now_s: float,
    ) -> None:
        """Add one message's outcome and the token that acknowledges it (None for QoS 0)."""
        self.add_many(list(readings), list(rejections), [] if token is None else [token], now_s)

    def add_many(
        self,
        readings: list[Reading],
        rejections: list[StoredRejection],
        tokens: list[object],
        now_s: float,
    ) -> None:
        """Add the outcomes of several messages at once and the tokens that acknowledge them
        (as :meth:`add` for each, in one call: the worker adds a whole chunk)."""
        if self._opened_at is None:
            self._opened_at = now_s
        self._batch.readings += readings
        self._batch.rejections += rejections
        self._tokens += tokens

    @property
    def pending(self) -> int:
        """Entries waiting in the open batch."""
        return len(self._batch)

    @property
    def full(self) -> bool:
        """Whether the open batch reached ``max_points``."""
        return len(self._batch) >= self._policy.max_points

    @property
    def tokens_pending(self) -> int:
        """How many messages of the open batch wait to be acknowledged."""
        return len(self._tokens)

    @property
    def empty(self) -> bool:
        """Whether nothing waits: no entries and no tokens to acknowledge."""
        return self._opened_at is None

    def due(self, now_s: float) -> bool:
        """Whether the open batch should be flushed now."""
        if self._opened_at is None:
            return False
        return (
            len(self._batch) >= self._policy.max_points
            or now_s - self._opened_at >= self._policy.flush_interval_s
        )

    def seconds_until_due(self, now_s: float) -> float | None:
        """How long until the open batch is due by age; None when nothing waits."""
        if self._opened_at is None:
            return None
        return max(0.0, self._opened_at + self._policy.flush_interval_s - now_s)

    def take(self) -> tuple[Batch, list[object]]:
        """Close the open batch and return it with its tokens."""
        batch, tokens = self._batch, self._tokens
        self._batch, self._tokens, self._opened_at = Batch(), [], None
        return batch, tokens

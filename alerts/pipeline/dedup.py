"""Dedup and message ids: the same notice never goes to the same recipient twice.

A message id is derived from what the message carries and to whom, never from the clock or a
counter, so a message rebuilt after a restart has the same id (webhook ``id``, CAP
``identifier``) and receivers can drop the repeat.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Set

from alerts.pipeline.model import Notice


def fresh(group: str, notices: Iterable[Notice], sent: Set[tuple[str, str]]) -> list[Notice]:
    """The notices not yet sent to ``group`` (by ``(group, notice id)``), each once."""
    out: list[Notice] = []
    seen: set[str] = set()
    for notice in notices:
        if (group, notice.id) in sent or notice.id in seen:
            continue
        seen.add(notice.id)
        out.append(notice)
    return out


def message_id(group: str, notice_ids: Iterable[str], *, repeat_at_ns: int | None = None) -> str:
    """The stable id of one group message (the same for all its recipients and channels)."""
    key = "|".join([group, *sorted(notice_ids)])
    if repeat_at_ns is not None:
        key += f"|repeat:{repeat_at_ns}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def delivery_id(message: str, recipient: str, channel: str) -> str:
    """The stable id of one message to one recipient on one channel."""
    key = f"{message}|{recipient}|{channel}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()

"""Alert events as points of the ``alerts`` measurement, and their spool encoding.

The engine's loop gives every event to InfluxDB (or SQLite) as an :class:`AlertRecord`; those
that cannot be written yet wait in the alert spool as one record of several
(:func:`encode_records`).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from alerts.model import AlertEvent
from ingest.storage.base import AlertRecord


def alert_record(event: AlertEvent) -> AlertRecord:
    """The ``alerts`` point of an event (a Grafana annotation)."""
    return AlertRecord(
        ts_ns=event.at_ns,
        station_id=event.subject,
        kind=event.kind.value,
        rule=event.rule,
        level=event.severity.name,
        firing=event.firing,
        late=event.late,
        text=event.detail or f"{event.subject} {event.rule} {event.severity.name}",
        event_id=event.id,
    )


def encode_records(records: Sequence[AlertRecord]) -> bytes:
    """A spool record of alert records."""
    return orjson.dumps(
        [
            [r.ts_ns, r.station_id, r.kind, r.rule, r.level, r.firing, r.late, r.text, r.event_id]
            for r in records
        ]
    )


def decode_records(body: bytes) -> list[AlertRecord]:
    """The inverse of :func:`encode_records`."""
    return [AlertRecord(*row) for row in orjson.loads(body)]

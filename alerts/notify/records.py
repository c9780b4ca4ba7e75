"""The notification store's values and their JSON forms (shared by the SQL and memory stores)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alerts.incidents.records import event_from_json, event_to_json
from alerts.model import IncidentState
from alerts.pipeline.model import Notice

PENDING = "pending"
SENDING = "sending"
DELIVERED = "delivered"
FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Queued:
    """A notice waiting in a recipient group's bucket (survives restarts)."""

    group: str
    notice: Notice
    queued_ns: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to one recipient on one channel, and how its delivery goes.

    Attributes:
        id: Stable: derived from the message id, recipient and channel.
        message_id: The message (webhook ``id``), shared by its recipients and channels.
        status: ``pending`` → ``sending`` → ``delivered`` | ``failed`` (``sending`` again
            after a crash: the at-most-in-flight repeat, with the same ids).
        next_attempt_ns: Not before this.
        deadline_ns: Give up after this.
    """

    id: str
    message_id: str
    group: str
    recipient: str
    channel: str
    language: str
    subject: str
    body: str
    short: str
    payload: dict[str, Any] = field(default_factory=dict)
    status: str = PENDING
    attempts: int = 0
    created_ns: int = 0
    next_attempt_ns: int = 0
    deadline_ns: int = 0
    lease_until_ns: int | None = None
    delivered_ns: int | None = None
    last_error: str | None = None


def notice_json(notice: Notice) -> dict[str, Any]:
    """A notice as JSON."""
    return {
        "id": notice.id,
        "incident_id": notice.incident_id,
        "labels": dict(notice.labels),
        "event": event_to_json(notice.event),
        "state": notice.state.value,
        "previous_state": None if notice.previous_state is None else notice.previous_state.value,
        "reason": notice.reason,
        "step": notice.step,
    }


def notice_from_json(data: dict[str, Any]) -> Notice:
    """The inverse of :func:`notice_json`."""
    previous = data.get("previous_state")
    return Notice(
        id=data["id"],
        incident_id=int(data["incident_id"]),
        labels=dict(data["labels"]),
        event=event_from_json(data["event"]),
        state=IncidentState(data["state"]),
        previous_state=None if previous is None else IncidentState(previous),
        reason=data.get("reason", "transition"),
        step=int(data.get("step", 0)),
    )

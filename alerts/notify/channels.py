"""Channels: the only I/O of notifications, one narrow interface, a registry of kinds.

A channel takes an :class:`Outgoing` message and returns a :class:`SendResult` (delivered, or
``(retryable, error)`` as Alertmanager's notifiers do), or raises a
:class:`~alerts.notify.errors.DeliveryError`. The sender turns both into a delivery status.
URLs may name secrets from the environment as ``${NAME}``; they are expanded at send time
and never logged (logs carry :func:`redact`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

from alerts.notify.errors import PermanentDeliveryError

_SECRET = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to one recipient on one channel.

    Attributes:
        id: The message id, the same on every channel and every retry (webhook ``id``).
        delivery_id: This (message, recipient, channel)'s id.
        recipient: The recipient's name.
        language: ``id`` or ``en``.
        subject: One line.
        body: The long form.
        short: The one-SMS form.
        payload: Structured content for machines (the webhook's JSON besides ``id``).
    """

    id: str
    delivery_id: str
    recipient: str
    language: str
    subject: str
    body: str
    short: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a channel made of one attempt."""

    delivered: bool
    retryable: bool = False
    error: str | None = None
    retry_after_s: float | None = None


DELIVERED = SendResult(delivered=True)


class Channel(Protocol):
    """Something that delivers messages (Apprise, a webhook, an in-memory list)."""

    name: str
    pages: bool

    async def send(self, message: Outgoing) -> SendResult:
        """Deliver one message."""
        ...


def expand_secrets(template: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace ``${NAME}`` with the environment's value.

    Raises:
        PermanentDeliveryError: A named variable is not set (the name is said, never a value).
    """
    env = os.environ if environ is None else environ

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise PermanentDeliveryError(f"environment variable {name} is not set")
        return env[name]

    return _SECRET.sub(value, template)


def redact(url: str) -> str:
    """A URL fit for logs: scheme and host only, never credentials, tokens or paths."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    if _SECRET.search(host):
        host = "<secret>"
    return f"{parts.scheme}://{host}/…" if parts.scheme else "<url>"


class MemoryChannel:
    """A channel that keeps what it was given (tests and dry runs); can be told to fail."""

    def __init__(self, name: str = "memory", *, pages: bool = False) -> None:
        self.name = name
        self.pages = pages
        self.sent: list[Outgoing] = []
        self.fail_next: list[SendResult | Exception] = []

    async def send(self, message: Outgoing) -> SendResult:
        """Record the message, or fail as told."""
        if self.fail_next:
            failure = self.fail_next.pop(0)
            if isinstance(failure, Exception):
                raise failure
            return failure
        self.sent.append(message)
        return DELIVERED

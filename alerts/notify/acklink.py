"""One-click acknowledgement links, signed so that only Siaga could have made them.

A link is ``{api.public_url}/api/v1/incidents/{id}/ack?exp={unix seconds}&sig={hex}`` where
``sig`` is HMAC-SHA256 over ``"ack:{id}:{exp}"`` with the API's key
(``api.secret_key``, else ``api.secret_key_file``). The API verifies it with :func:`verify_ack`
(constant time, not expired) and then asks who is acknowledging: a link in a forwarded message
must not acknowledge in someone's name by itself. Each link works once (the API records its
signature). Without ``api.public_url``, messages name the command ``siaga alerts ack <id>``
instead.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import quote

from alerts.notify.message import AckLink, no_ack_link
from alerts.settings import NotifySettings
from ingest.errors import InputError

_NOTIFY = NotifySettings.model_fields  # the settings tree is the one source of every default


class AckLinkError(InputError):
    """A link that cannot be honoured; ``reason`` is ``forged`` or ``expired``.

    One hostile or stale input: the API answers it and carries on (also a ``ValueError``).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def ack_signature(secret: bytes, incident_id: int, expires_s: int) -> str:
    """The signature of an acknowledgement link."""
    return hmac.new(secret, f"ack:{incident_id}:{expires_s}".encode(), hashlib.sha256).hexdigest()


def verify_ack(
    secret: bytes, incident_id: int, expires_s: int, signature: str, now_s: float | None = None
) -> None:
    """Checks that a link's ``exp`` and ``sig`` are genuine and not yet expired.

    Raises:
        AckLinkError: ``forged`` (the signature does not match) or ``expired``.
    """
    if not hmac.compare_digest(ack_signature(secret, incident_id, expires_s), signature):
        raise AckLinkError("forged", "the link's signature does not match")
    if (time.time() if now_s is None else now_s) >= expires_s:
        raise AckLinkError("expired", "the link has expired")


def signed_ack_links(
    base_url: str | None,
    secret: bytes | None,
    valid_s: float = _NOTIFY["ack_link_valid_s"].default,
    clock: Callable[[], float] = time.time,
) -> AckLink:
    """An ``ack_link`` for messages: signed links when configured, else none."""
    if not base_url or not secret:
        return no_ack_link
    base = base_url.rstrip("/")

    def link(incident_id: int) -> str:
        expires = int(clock() + valid_s)
        signature = ack_signature(secret, incident_id, expires)
        return f"{base}/api/v1/incidents/{incident_id}/ack?exp={expires}&sig={quote(signature)}"

    return link

"""One-click acknowledgement links, signed so that only Siaga could have made them.

A link is ``{base}/api/v1/incidents/{id}/ack?exp={unix seconds}&sig={hex}`` where ``sig`` is
HMAC-SHA256 over ``"ack:{id}:{exp}"`` with ``notify.ack_secret``. The API verifies it with
:func:`verify_ack` (constant time, not expired) and then asks who is acknowledging (a link in a
forwarded message must not acknowledge in someone's name by itself). Without a base URL and a
secret, messages name the command ``siaga alerts ack <id>`` instead.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from urllib.parse import quote

from alerts.notify.message import AckLink, no_ack_link
from alerts.settings import NotifySettings

_NOTIFY = NotifySettings.model_fields  # the settings tree is the one source of every default


def ack_signature(secret: bytes, incident_id: int, expires_s: int) -> str:
    """The signature of an acknowledgement link."""
    return hmac.new(secret, f"ack:{incident_id}:{expires_s}".encode(), hashlib.sha256).hexdigest()


def verify_ack(
    secret: bytes, incident_id: int, expires_s: int, signature: str, now_s: float | None = None
) -> bool:
    """Whether a link's ``exp`` and ``sig`` are genuine and not yet expired."""
    if (time.time() if now_s is None else now_s) >= expires_s:
        return False
    return hmac.compare_digest(ack_signature(secret, incident_id, expires_s), signature)


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

"""Signed one-click acknowledgement links: HMAC-SHA256, expiring, single use, naming the recipient.

A link carries ``incident id``, ``recipient``, ``expiry`` and a random ``nonce``, signed with the
deployment's secret key. Pure: signing and verifying need no I/O; single use is enforced by the
API, which records each nonce it has honoured (table ``ack_link_uses``).

The notification pipeline builds links with :func:`ack_link`; the API verifies them with
:func:`verify_ack_token`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from ingest.errors import InputError

ACK_PATH = "/api/v1/ack/"


class AckLinkError(InputError):
    """A link that cannot be honoured; ``reason`` is ``malformed``, ``forged`` or ``expired``.

    One hostile or stale input: the API answers it and carries on (also a ``ValueError``).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AckClaim:
    """What a verified link says: who may acknowledge which incident, until when."""

    incident_id: int
    recipient: str
    expires_s: int
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())


def sign_ack_token(
    incident_id: int, recipient: str, expires: datetime, key: bytes, nonce: str | None = None
) -> str:
    """A token for :func:`ack_link`; ``expires`` must carry a UTC offset."""
    if expires.utcoffset() is None:
        raise ValueError("expires needs a UTC offset")
    if not recipient:
        raise ValueError("an acknowledgement link must name its recipient")
    claim = {
        "i": incident_id,
        "r": recipient,
        "e": int(expires.timestamp()),
        "n": nonce or secrets.token_urlsafe(12),
    }
    payload = _b64(json.dumps(claim, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_signature(key, payload)}"


def ack_link(
    incident_id: int, recipient: str, expires: datetime, *, key: bytes, base_url: str
) -> str:
    """A signed URL that acknowledges ``incident_id`` in the name of ``recipient``.

    Args:
        incident_id: The incident store's id.
        recipient: Who the link is sent to; the acknowledgement is recorded in this name.
        expires: When the link stops working (with a UTC offset).
        key: The deployment's secret (``ApiSettings.resolve_secret_key()``).
        base_url: Where people reach the API (``api.public_url``).
    """
    token = sign_ack_token(incident_id, recipient, expires, key)
    return f"{base_url.rstrip('/')}{ACK_PATH}{token}"


def verify_ack_token(token: str, key: bytes, now_s: float) -> AckClaim:
    """The claim of a genuine, unexpired token.

    Raises:
        AckLinkError: The token is malformed, its signature is wrong, or it has expired.
    """
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature or len(token) > 2048 or not token.isascii():
        raise AckLinkError("malformed", "not an acknowledgement link")
    if not hmac.compare_digest(_signature(key, payload), signature):
        raise AckLinkError("forged", "the link's signature does not match")
    try:
        claim = json.loads(_unb64(payload))
        result = AckClaim(
            incident_id=int(claim["i"]),
            recipient=str(claim["r"]),
            expires_s=int(claim["e"]),
            nonce=str(claim["n"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise AckLinkError("malformed", "the link's contents are unreadable") from exc
    if now_s >= result.expires_s:
        raise AckLinkError("expired", "the link has expired")
    return result

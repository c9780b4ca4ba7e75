"""A JSON webhook for other systems, signed with HMAC-SHA256.

Each POST carries ``Content-Type: application/json`` and:

- ``X-Siaga-Id``: the message id (also ``id`` in the body); the same on every retry and after a
  restart, so receivers drop repeats by it.
- ``X-Siaga-Timestamp``: seconds since the epoch when this attempt was signed (also
  ``timestamp`` in the body, so the signature covers it); refuse old ones to stop replays.
- ``X-Siaga-Signature``: ``sha256=`` + hex HMAC-SHA256 of the exact body bytes with the shared
  secret. Check it with a constant-time comparison over the raw body before parsing it.

2xx is delivered; 408, 425, 429 and 5xx are retried (``Retry-After`` honoured); other 4xx fail.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping

import httpx
import orjson
from pydantic import SecretStr

from alerts.notify.channels import DELIVERED, Outgoing, SendResult, expand_secrets, redact
from alerts.notify.errors import PermanentDeliveryError, RetryableDeliveryError
from alerts.settings import NotifySettings

SIGNATURE_HEADER = "X-Siaga-Signature"
TIMESTAMP_HEADER = "X-Siaga-Timestamp"
ID_HEADER = "X-Siaga-Id"
_RETRYABLE_STATUS = frozenset({408, 425, 429})
_NOTIFY = NotifySettings.model_fields  # the settings tree is the one source of every default


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for a body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, signature: str) -> bool:
    """Whether ``signature`` is the right one for ``body`` (constant time)."""
    return hmac.compare_digest(sign(secret, body), signature)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class WebhookChannel:
    """POST signed JSON to one URL.

    Args:
        name: The channel's name.
        url: The endpoint (may name ``${VAR}`` secrets).
        secret: The HMAC key.
        client: A shared ``httpx.AsyncClient`` (its lifetime is the caller's).
        timeout_s: Per attempt.
        clock: Seconds since the epoch (injected for tests).
        environ: Where ``${VAR}`` values come from.
    """

    pages = False

    def __init__(
        self,
        name: str,
        url: str,
        secret: SecretStr,
        client: httpx.AsyncClient,
        *,
        timeout_s: float = _NOTIFY["webhook_timeout_s"].default,
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._url = url
        self._secret = secret
        self._client = client
        self._timeout_s = timeout_s
        self._clock = clock
        self._environ = environ

    def __repr__(self) -> str:
        return f"WebhookChannel({self.name!r}, {redact(self._url)!r})"

    def body(self, message: Outgoing, timestamp: int) -> bytes:
        """The exact bytes that are signed and sent."""
        document = {
            "id": message.id,
            "timestamp": timestamp,
            "recipient": message.recipient,
            "language": message.language,
            "subject": message.subject,
            "text": message.body,
            "short": message.short,
            **message.payload,
        }
        return orjson.dumps(document)

    async def send(self, message: Outgoing) -> SendResult:
        """POST once; classify the outcome."""
        timestamp = int(self._clock())
        body = self.body(message, timestamp)
        headers = {
            "Content-Type": "application/json",
            ID_HEADER: message.id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self._secret.get_secret_value().encode(), body),
        }
        url = expand_secrets(self._url, self._environ)
        try:
            response = await self._client.post(
                url, content=body, headers=headers, timeout=self._timeout_s
            )
        except httpx.HTTPError as exc:
            raise RetryableDeliveryError(
                f"{self.name}: {type(exc).__name__} posting to {redact(self._url)}"
            ) from None
        status = response.status_code
        if 200 <= status < 300:
            return DELIVERED
        error = f"{self.name}: HTTP {status} from {redact(self._url)}"
        if status in _RETRYABLE_STATUS or status >= 500:
            return SendResult(False, True, error, _retry_after(response))
        raise PermanentDeliveryError(error)

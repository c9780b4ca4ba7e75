"""Notification errors.

::

    SiagaError
     └── NotifyError
          ├── PolicyError              config/alerts.yaml cannot be used (also a ConfigError)
          └── DeliveryError            a channel could not deliver (``retryable`` says if later may)
               ├── RetryableDeliveryError   timeouts, 5xx, 429, connection refused
               └── PermanentDeliveryError   4xx, malformed URL, missing secret
"""

from __future__ import annotations

from ingest.errors import ConfigError, SiagaError


class NotifyError(SiagaError):
    """Root of notification errors."""


class PolicyError(NotifyError, ConfigError):
    """The notification policy file cannot be used; the message names the entry at fault."""


class DeliveryError(NotifyError):
    """A channel could not deliver a message."""

    retryable = True

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RetryableDeliveryError(DeliveryError):
    """Trying again later may work."""


class PermanentDeliveryError(DeliveryError):
    """Trying again will not help (the message is marked failed)."""

    retryable = False

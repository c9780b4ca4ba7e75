"""The errors of ingest's boundaries: the message source, storage and the spool.

Part of the one exception tree drawn in :mod:`devices.errors`, whose root classes are
re-exported here. Storage errors are judged once, by :func:`classify_storage_error`.
"""

from __future__ import annotations

from dataclasses import dataclass

from devices.errors import ConfigError, InputError, SiagaError

__all__ = [
    "BrokerUnsuitableError",
    "ConfigError",
    "ConnectRefusedError",
    "ConnectionLostError",
    "InputError",
    "PermanentStorageError",
    "RetryableStorageError",
    "SiagaError",
    "SourceError",
    "SpoolError",
    "SpoolFullError",
    "StorageError",
    "StorageVerdict",
    "classify_storage_error",
]


class SourceError(SiagaError):
    """The message source failed."""


class ConnectionLostError(SourceError):
    """The connection to the broker dropped."""


class ConnectRefusedError(SourceError):
    """The broker refused the connection; the message carries its reason."""


class BrokerUnsuitableError(ConnectRefusedError):
    """The broker cannot serve the worker as configured (QoS, shared subscriptions, ...).

    Retrying cannot help: the worker stops with this message rather than run without its
    promise that nothing acknowledged is lost.
    """


class StorageError(SiagaError):
    """The storage backend failed.

    Attributes:
        retry_after_s: How long the server asked us to wait (``Retry-After``), when it did.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RetryableStorageError(StorageError):
    """A failure that may pass: timeouts, server errors, connection refused."""


class PermanentStorageError(StorageError):
    """A failure that repeating the request cannot fix.

    Attributes:
        status: The HTTP status, when there was one.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class StorageVerdict:
    """What to do about a storage failure: the one judgement the worker acts on.

    Attributes:
        retryable: Whether the same request may succeed later by itself.
        kind: A short label for metrics and logs (``unavailable``, ``auth``, ``refused``...).
        retry_after_s: The server's own wait, when it gave one (overrides the backoff's).
    """

    retryable: bool
    kind: str
    retry_after_s: float | None = None


_STATUS_KINDS = {401: "auth", 403: "auth", 404: "not_found", 413: "too_large"}


def classify_storage_error(exc: StorageError) -> StorageVerdict:
    """Judge a storage failure once: retryable or permanent, its kind, and any Retry-After."""
    if isinstance(exc, PermanentStorageError):
        kind = "refused" if exc.status is None else _STATUS_KINDS.get(exc.status, "refused")
        return StorageVerdict(retryable=False, kind=kind, retry_after_s=exc.retry_after_s)
    return StorageVerdict(retryable=True, kind="unavailable", retry_after_s=exc.retry_after_s)


class SpoolError(SiagaError):
    """The on-disk spool failed."""


class SpoolFullError(SpoolError):
    """The spool reached its disk budget; nothing more can be made durable there."""

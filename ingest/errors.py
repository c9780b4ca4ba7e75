"""Siaga's exception tree. Errors from libraries are translated once, at each boundary.

    SiagaError
    ├── ConfigError            the settings or a referenced file are unusable (start-up only)
    ├── SourceError            the message source (MQTT) failed
    │   ├── ConnectionLostError     the connection dropped; reconnect
    │   └── ConnectRefusedError     the broker said no (bad credentials, not authorised)
    ├── StorageError           the storage backend failed
    │   ├── RetryableStorageError   timeouts, 5xx, connection refused: try again later
    │   └── PermanentStorageError   4xx: retrying the same request cannot succeed
    └── SpoolError             the on-disk spool failed
        └── SpoolFullError          the spool reached its disk budget

Bad input is never an exception: it becomes a :class:`devices.Rejection` with a reason.
"""

from __future__ import annotations


class SiagaError(Exception):
    """Base of every error Siaga raises on purpose."""


class ConfigError(SiagaError):
    """The configuration is unusable; the message names the key and the problem."""


class SourceError(SiagaError):
    """The message source failed."""


class ConnectionLostError(SourceError):
    """The connection to the broker dropped."""


class ConnectRefusedError(SourceError):
    """The broker refused the connection; the message carries its reason."""


class StorageError(SiagaError):
    """The storage backend failed."""


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


class SpoolError(SiagaError):
    """The on-disk spool failed."""


class SpoolFullError(SpoolError):
    """The spool reached its disk budget; nothing more can be made durable there."""

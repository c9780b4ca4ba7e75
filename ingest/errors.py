"""Siaga's exception tree. Errors from libraries are translated once, at each boundary.

The root lives in :mod:`devices.errors` (``devices`` and ``simulators`` must not import
``ingest``) and is re-exported here; classes of other packages are drawn by module path::

    SiagaError                      devices.errors
    ├── ConfigError                 settings or a referenced file are unusable (start-up only)
    │   ├── devices.stations.StationFileError       a station file entry
    │   ├── devices.registry.RegistryFileError      a registry (devices.yaml) entry
    │   ├── simulators.scenario.ScenarioError       a scenario file key
    │   ├── simulators.replay.ReplayError           a line of a file to replay
    │   ├── simulators.encoding.EncodingError       a station that cannot be simulated
    │   ├── alerts.rules.config.RulesFileError      a rules file key (also ValueError)
    │   ├── alerts.backtest.BacktestError           a line of a CSV to backtest
    │   └── alerts.notify.errors.PolicyError        a notification policy entry (also NotifyError)
    ├── InputError                  one input: a message (stored rejection) or a request (4xx)
    │   ├── devices.timestamps.TimestampError       a timestamp that is not a UTC instant
    │   ├── devices.readings_csv.ReadingsCsvError   a line of a recorded series (CSV)
    │   ├── devices.scopes.ScopeError               a scope the registry does not know
    │   ├── devices.formats.units.UnitError         a quantity or unit conversion
    │   │   └── devices.formats.units.NonFiniteError
    │   ├── devices.formats.native._NonFiniteError  NaN or Infinity in JSON
    │   ├── devices.formats.senml._PackError        a SenML pack RFC 8428 says to reject
    │   ├── ingest.lineprotocol.LineProtocolError   a value line protocol cannot carry
    │   ├── alerts.acklinks.AckLinkError            a malformed, forged or expired ack link
    │   ├── dashboards.api.accounts.AccountError    a user or key change that cannot be made
    │   └── dashboards.api.guard.TooLargeError      a request body above api.max_body_bytes
    ├── SourceError                 the message source (MQTT) failed
    │   ├── ConnectionLostError         the connection dropped; reconnect
    │   ├── ConnectRefusedError         the broker said no (credentials, authorisation)
    │   │   └── BrokerUnsuitableError       it cannot keep Siaga's promise: do not retry
    │   └── ingest.mqtt.codec.ProtocolError         bytes that are not MQTT 5
    ├── StorageError                the storage backend failed (judged by classify_storage_error)
    │   ├── RetryableStorageError       timeouts, 5xx, 429, connection refused: try again later
    │   └── PermanentStorageError       4xx: retrying the same request cannot succeed
    ├── SpoolError                  the on-disk spool failed
    │   └── SpoolFullError              the spool reached its disk budget
    ├── alerts.incidents.errors.IncidentStoreError  the incident database failed
    │   ├── alerts.incidents.errors.IncidentNotFoundError   no incident has that id
    │   ├── alerts.incidents.errors.LeadershipLostError     another engine took the leader lock
    │   └── alerts.journal.JournalError                     a stored journal entry is unreadable
    ├── alerts.notify.errors.NotifyError            notifications (drawn in alerts.notify.errors)
    │   ├── alerts.notify.errors.PolicyError        (see ConfigError)
    │   ├── alerts.notify.errors.DeliveryError      a channel could not deliver
    │   │   ├── alerts.notify.errors.RetryableDeliveryError   later may work
    │   │   └── alerts.notify.errors.PermanentDeliveryError   it will not
    │   └── alerts.notify.sqlstore.NotifyStoreError the notification database failed
    ├── alerts.notify.cap.CapInvalidError           a CAP document the schema refuses (a bug)
    ├── dashboards.grafana.push.PushError           Grafana unreachable or refusing
    ├── simulators.runner.RunError                  a simulation that cannot start or finish
    ├── simulators.wire.WireError                   the fleet publisher's broker connection failed
    ├── simulators.commands.CommandError            a `siaga simulate` usage problem
    ├── ops.errors.ServerError                      a local server would not start or answer
    │   ├── ops.supervisor.PartFailedError          a part of `siaga up` could not start
    │   └── ops.datadir.AlreadyRunningError         another `siaga up` holds the data directory
    └── ops.devicectl.DeviceAdminError              a `siaga devices` command that cannot run

Bad input is never an exception that leaves the pipeline: it becomes a
:class:`devices.Rejection` with a reason. Several classes are also ``ValueError`` or
``RuntimeError`` (second base) for the parsers and callers that expect those.
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

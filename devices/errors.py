"""Siaga's exception tree: its root here, because every package may import ``devices``.

``devices`` and ``simulators`` (which must not import ``ingest``) root their own errors here
too; :mod:`ingest.errors` re-exports these classes beside its own. Errors from libraries are
translated once, at each boundary. Classes outside this module are drawn by module path::

    SiagaError                      (this module)
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
    │   ├── alerts.notify.acklink.AckLinkError      a forged or expired ack link
    │   ├── dashboards.api.accounts.AccountError    a user or key change that cannot be made
    │   └── dashboards.api.guard.TooLargeError      a request body above api.max_body_bytes
    ├── ingest.errors.SourceError                   the message source (MQTT) failed
    │   ├── ingest.errors.ConnectionLostError       the connection dropped; reconnect
    │   ├── ingest.errors.ConnectRefusedError       the broker said no (credentials, authorisation)
    │   │   └── ingest.errors.BrokerUnsuitableError  it cannot keep Siaga's promise: do not retry
    │   └── ingest.mqtt.codec.ProtocolError         bytes that are not MQTT 5
    ├── ingest.errors.StorageError                  the storage backend failed (judged once:
    │                                               ingest.errors.classify_storage_error)
    │   ├── ingest.errors.RetryableStorageError     timeouts, 5xx, 429, refused: try again later
    │   └── ingest.errors.PermanentStorageError     4xx: retrying the same request cannot succeed
    ├── ingest.errors.SpoolError                    the on-disk spool failed
    │   └── ingest.errors.SpoolFullError            the spool reached its disk budget
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


class SiagaError(Exception):
    """Base of every error Siaga raises on purpose."""


class ConfigError(SiagaError):
    """The configuration is unusable; the message names the key and the problem."""


class InputError(SiagaError, ValueError):
    """One input is unusable, never a crash: a message's content ends as a stored, counted
    rejection; a request's (an acknowledgement link, an account change) as a 4xx answer.

    Also a ValueError, as the parsers it is raised from (json hooks, converters) expect.
    """

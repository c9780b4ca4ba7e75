"""The incident store's errors (under :class:`ingest.errors.SiagaError`)."""

from __future__ import annotations

from ingest.errors import SiagaError


class IncidentStoreError(SiagaError):
    """The incident database failed (unreachable, or a statement failed)."""


class IncidentNotFoundError(IncidentStoreError):
    """No incident has the id asked for."""


class LeadershipLostError(IncidentStoreError):
    """This engine no longer holds the leader lock: it must stop emitting at once."""

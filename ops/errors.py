"""Errors of running Siaga (local servers, the supervisor); part of :mod:`ingest.errors`' tree."""

from __future__ import annotations

from ingest.errors import SiagaError


class ServerError(SiagaError):
    """A local server could not be started or reached."""

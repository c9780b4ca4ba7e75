"""The narrow interfaces the API reads and changes alerting through.

:class:`IncidentStore` is the incident store's people's side (contract 3), defined once in
:class:`alerts.incidents.ports.IncidentQueries`; :class:`NotifyReader` the notification
store's, defined once in :class:`alerts.notify.store.NotifyQueries`. The SQL stores and their
in-memory twins (``alerts/incidents/memory.py``, ``alerts/notify/memory.py``) satisfy both
structurally.
"""

from __future__ import annotations

from alerts.incidents.ports import IncidentQueries as IncidentStore
from alerts.notify.store import NotifyQueries as NotifyReader

__all__ = ["IncidentStore", "NotifyReader"]

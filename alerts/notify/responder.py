"""What the inbound halves of Telegram and SMS share: the stores they act through, the clock,
leadership, counters, and carrying out a press in the incident's own time zone."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from alerts.model import Incident
from alerts.notify.chat import IncidentActions, Outcome, Person, Press, SilenceBook, act
from alerts.notify.chatstore import ChatStore
from alerts.notify.localtime import Zone, zone_for
from devices.stations import StationRegistry


class Responder:
    """The base of :class:`~alerts.notify.telegram.TelegramBot` and
    :class:`~alerts.notify.gammu_sms.SmsInbox`.

    Args:
        store: Links, handled updates, state.
        incidents: The incident store.
        silences: The notification store.
        registry: Stations (each incident's time zone).
        clock: Nanoseconds since the epoch.
        is_leader: Only the leader reads its channel.
    """

    def __init__(
        self,
        store: ChatStore,
        incidents: IncidentActions,
        silences: SilenceBook,
        *,
        registry: Callable[[], StationRegistry],
        clock: Callable[[], int] = time.time_ns,
        is_leader: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._incidents = incidents
        self._silences = silences
        self._registry = registry
        self._clock = clock
        self._is_leader = is_leader
        self.counts: Counter[str] = Counter()

    def _zone(self, incident: Incident | None) -> Zone:
        return zone_for(self._registry().get(incident.subject) if incident else None)

    async def carry_out(
        self, press: Press, person: Person | None, *, via: str, least_role: str, silence_s: float
    ) -> Outcome:
        """Act on a press (see :func:`alerts.notify.chat.act`) and count the verdict."""
        incident = await self._incidents.get(press.incident_id)
        outcome = await act(
            press,
            person,
            self._incidents,
            self._silences,
            now_ns=self._clock(),
            zone=self._zone(incident),
            via=via,
            least_role=least_role,
            silence_s=silence_s,
            provinces=self._registry().provinces(),
        )
        verdict = "refused" if outcome.refused else "acted" if outcome.changed else "repeated"
        self.counts[verdict] += 1
        return outcome

"""The inbound half of two-way channels: who pressed or replied, may they, and what it does.

Telegram button presses and SMS replies end here. The pure part decides: :func:`parse_callback`
and :func:`parse_sms_reply` read what arrived (the only places that do), :func:`refusal` says
why someone may not act (unlinked, role too low, incident outside their regencies), and
:func:`status_lines` says what a message shows after the act. :func:`act` then changes the
incident through the incident store, exactly once: an acknowledgement already recorded is never
overwritten (the store's ``only_if_new``), so a replayed callback or SMS answers "already
acknowledged" and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from alerts.incidents.errors import IncidentNotFoundError
from alerts.model import Incident
from alerts.notify.localtime import Zone, clock_time
from alerts.pipeline.silence import Matcher, Silence
from devices.scopes import DEPLOYMENT, Scope

CALLBACK_MAX_BYTES = 64
ROLE_RANKS = {"viewer": 0, "operator": 1, "admin": 2}
"""The API's roles (``dashboards.api.accounts.Role``) by power; this package may not import it."""


class Action(StrEnum):
    """What a button (or a reply) asks for; the value is its one-letter code in callback data."""

    ACK = "a"
    CLAIM = "c"
    MUTE = "m"


BUTTONS: dict[Action, str] = {
    Action.ACK: "Akui",
    Action.CLAIM: "Saya tangani",
    Action.MUTE: "Bisukan 1 jam",
}


@dataclass(frozen=True, slots=True)
class Press:
    """One action on one incident."""

    action: Action
    incident_id: int


@dataclass(frozen=True, slots=True)
class Person:
    """The Siaga user an account or a number is linked to.

    Attributes:
        username: The user.
        role: ``viewer``, ``operator`` or ``admin``.
        scope: The regencies they may act on (devices/scopes.py): the user's own scope.
    """

    username: str
    role: str
    scope: Scope = DEPLOYMENT


def callback_data(press: Press) -> str:
    """``a:42``: the button's ``callback_data`` (Telegram allows 64 bytes)."""
    data = f"{press.action.value}:{press.incident_id}"
    if len(data.encode()) > CALLBACK_MAX_BYTES:
        raise ValueError(f"callback data over {CALLBACK_MAX_BYTES} bytes: {data!r}")
    return data


_CALLBACK = re.compile(r"^([acm]):([1-9][0-9]{0,17})$")


def parse_callback(data: str | None) -> Press | None:
    """The press a button's data stands for; None for anything Siaga did not make."""
    if not data or len(data.encode()) > CALLBACK_MAX_BYTES:
        return None
    match = _CALLBACK.match(data)
    if match is None:
        return None
    return Press(Action(match.group(1)), int(match.group(2)))


_REPLY = re.compile(r"^\s*(AKUI|ACK)\s*#?\s*([0-9]{1,18})\s*[.!]?\s*$", re.IGNORECASE)


def parse_sms_reply(text: str) -> Press | None:
    """``AKUI 42`` (any case, ``#`` allowed, ``ACK`` too) → acknowledge incident 42."""
    match = _REPLY.match(text)
    if match is None or int(match.group(2)) == 0:
        return None
    return Press(Action.ACK, int(match.group(2)))


def refusal(
    person: Person | None,
    incident: Incident | None,
    incident_id: int,
    least_role: str,
    provinces: Mapping[str, str] | None = None,
) -> str | None:
    """Why ``person`` may not act on the incident (in Indonesian), or None when they may.

    ``provinces`` (regency -> province, the registry's) places the incident's regency for a
    person whose scope is a province.
    """
    if person is None:
        return (
            "Akun ini belum terhubung ke pengguna Siaga. Buat kode di halaman Profil Siaga "
            "(/profil, Hubungkan Telegram), lalu kirim /link KODE ke bot ini."
        )
    if ROLE_RANKS.get(person.role, -1) < ROLE_RANKS[least_role]:
        return (
            f"{person.username}: peran '{person.role}' hanya boleh melihat; "
            f"menindaklanjuti insiden perlu peran '{least_role}'."
        )
    if incident is None:
        return f"Insiden #{incident_id} tidak ada."
    regency = incident.labels.get("regency", "")
    if not person.scope.allows(regency, provinces or {}):
        return (
            f"{person.username}: insiden #{incident_id} di {regency or '-'}, di luar wilayah Anda."
        )
    return None


class IncidentActions(Protocol):
    """The incident store's part that people's actions use."""

    async def get(self, incident_id: int) -> Incident | None:
        """One incident."""
        ...

    async def acknowledge(
        self, incident_id: int, by: str, comment: str, at_ns: int, *, only_if_new: bool = False
    ) -> Incident:
        """Record an acknowledgement (with ``only_if_new``, never over an earlier one)."""
        ...

    async def assign(self, incident_id: int, assignee: str | None, at_ns: int) -> Incident:
        """Assign an incident."""
        ...


class SilenceBook(Protocol):
    """The notification store's silences."""

    async def add_silence(self, silence: Silence) -> Silence:
        """Store a silence."""
        ...

    async def silences(self, now_ns: int | None = None) -> list[Silence]:
        """Silences not yet ended."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an action did: the answer for the person, and whether anything changed."""

    answer: str
    changed: bool
    incident: Incident | None = None
    refused: bool = False


def mute_matchers(incident: Incident) -> list[Matcher]:
    """What "Bisukan 1 jam" silences: this incident's subject and rule."""
    station = incident.labels.get("station") or incident.subject
    return [Matcher(name="station", value=station), Matcher(name="rule", value=incident.rule)]


async def act(
    press: Press,
    person: Person | None,
    incidents: IncidentActions,
    silences: SilenceBook,
    *,
    now_ns: int,
    zone: Zone,
    via: str,
    least_role: str,
    silence_s: float,
    provinces: Mapping[str, str] | None = None,
) -> Outcome:
    """Carry out a press for ``person``, or say why not (nothing changes then).

    Args:
        press: The action and incident.
        person: Who pressed (None: not linked).
        incidents: The incident store.
        silences: The notification store.
        now_ns: The moment of the press as Siaga received it.
        zone: The time zone answers and message lines are written in.
        via: ``telegram`` or ``sms``: in the acknowledgement's comment.
        least_role: The least role that may act (``telegram.act_role``, ``sms.act_role``).
        silence_s: How long a mute lasts (``telegram.silence_s``).
        provinces: The registry's regency -> province (a province-wide person's scope).
    """
    incident = await incidents.get(press.incident_id)
    reason = refusal(person, incident, press.incident_id, least_role, provinces)
    if reason is not None or person is None or incident is None:
        return Outcome(reason or "", changed=False, incident=incident, refused=True)
    try:
        if press.action is Action.ACK:
            return await _acknowledge(press, person, incidents, now_ns=now_ns, zone=zone, via=via)
        if press.action is Action.CLAIM:
            if incident.assignee == person.username:
                return Outcome("Sudah ditangani oleh Anda.", changed=False, incident=incident)
            changed = await incidents.assign(press.incident_id, person.username, now_ns)
            return Outcome(f"#{incident.id} kini ditangani oleh {person.username}.", True, changed)
    except IncidentNotFoundError:
        return Outcome(f"Insiden #{press.incident_id} tidak ada.", changed=False, refused=True)
    return await _mute(incident, person, silences, now_ns=now_ns, zone=zone, silence_s=silence_s)


async def _acknowledge(
    press: Press, person: Person, incidents: IncidentActions, *, now_ns: int, zone: Zone, via: str
) -> Outcome:
    done = await incidents.acknowledge(
        press.incident_id, person.username, f"via {via}", now_ns, only_if_new=True
    )
    ack = done.acknowledged
    if ack is not None and ack.by == person.username and ack.at_ns == now_ns:
        return Outcome(f"Diakui: #{done.id}, {clock_time(now_ns, zone)}.", True, done)
    if ack is None:  # pragma: no cover - the store always records or keeps one
        return Outcome("Belum tercatat; coba lagi.", changed=False, incident=done)
    when = clock_time(ack.at_ns, zone)
    return Outcome(f"Sudah diakui oleh {ack.by} pukul {when}.", changed=False, incident=done)


async def _mute(
    incident: Incident,
    person: Person,
    silences: SilenceBook,
    *,
    now_ns: int,
    zone: Zone,
    silence_s: float,
) -> Outcome:
    matchers = mute_matchers(incident)
    ends = now_ns + int(silence_s * 1e9)
    for existing in await silences.silences(now_ns):
        # A replayed press (or a second person's) within the same hour adds no second silence.
        if existing.matchers == matchers and existing.ends_ns >= ends - int(silence_s * 1e9 / 6):
            until = clock_time(existing.ends_ns, zone)
            return Outcome(f"Sudah dibisukan sampai {until}.", changed=False, incident=incident)
    await silences.add_silence(
        Silence(
            matchers=matchers,
            starts_ns=now_ns,
            ends_ns=ends,
            created_by=person.username,
            comment=f"Bisukan {silence_s / 3600:g} jam (Telegram), insiden #{incident.id}",
        )
    )
    until = clock_time(ends, zone)
    return Outcome(f"Dibisukan sampai {until}.", changed=True, incident=incident)


def status_lines(
    incidents: Sequence[Incident],
    zone: Zone,
    *,
    numbered: bool,
    silences: Sequence[Silence] = (),
    now_ns: int = 0,
) -> list[str]:
    """What a posted message gains once people acted: who acknowledged and when, who handles
    it, and until when it is silenced (a mute of this incident in force at ``now_ns``)."""
    lines = []
    for incident in incidents:
        tag = f"#{incident.id} " if numbered else ""
        if incident.acknowledged is not None:
            ack = incident.acknowledged
            when = clock_time(ack.at_ns, zone)
            lines.append(f"\u2705 {tag}Diakui oleh {ack.by}, {when}")
        if incident.assignee:
            lines.append(f"\U0001f477 {tag}Ditangani oleh {incident.assignee}")
        matchers = mute_matchers(incident)
        muted = [
            s for s in silences if s.matchers == matchers and s.starts_ns <= now_ns < s.ends_ns
        ]
        if muted:
            last = max(muted, key=lambda s: s.ends_ns)
            until = clock_time(last.ends_ns, zone)
            lines.append(f"\U0001f515 {tag}Dibisukan sampai {until} oleh {last.created_by}")
    return lines

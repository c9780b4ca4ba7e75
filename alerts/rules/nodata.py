"""No data: a station silent for several of its reporting intervals, grouped per regency.

Silence is judged on each station's own clock: its newest reading's time advanced by the wall
time since that reading arrived (the engine hands the rule that reading's arrival as
``last_seen_ns`` and judges a group at one wall-clock moment, which is the same). A live station
is silent ``missed_intervals`` after its newest reading; a replay or a backlog that keeps coming
is never silent, whatever its lag; a station never seen counts from the engine's start.
An overdue station waits ``group_wait_s`` for the rest of its regency: when every station of
the regency is overdue (a cut in the regency's network, a gateway down) one grouped event with
``subject = regency:<name>`` and the list of ``stations`` fires instead of one per station (groups
listed in the rules file, e.g. the stations behind one gateway, group the same way). It
clears when fewer than half of them are still silent; the stragglers then fire on their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from alerts.model import AlertEvent, EventKind
from alerts.rules.config import NoDataRule
from devices.levels import Level

NS_PER_S = 1_000_000_000
RULE = "no_data"


@dataclass(frozen=True, slots=True)
class Member:
    """One station of a group as the rule sees it at a tick.

    Attributes:
        station_id: The station.
        last_seen_ns: Its newest reading's time on the wall clock, i.e. when it arrived (the
            engine's start when never seen).
        interval_s: Its reporting interval.
        firing: Whether its own no-data incident fires.
        rule: Its settings.
    """

    station_id: str
    last_seen_ns: int
    interval_s: float
    firing: bool
    rule: NoDataRule


def overdue_since_ns(member: Member) -> int:
    """When the station became overdue (may be in the future)."""
    return member.last_seen_ns + int(member.rule.missed_intervals * member.interval_s * NS_PER_S)


def _silence(station_id: str, now_ns: int, last_seen_ns: int) -> str:
    minutes = (now_ns - last_seen_ns) / (60 * NS_PER_S)
    return f"{station_id}: no reading for {minutes:.0f} min"


def evaluate_group(
    group: str,
    members: Sequence[Member],
    group_firing: bool,
    now_ns: int,
) -> tuple[set[str], bool, list[AlertEvent]]:
    """Judge a regency's stations at ``now_ns``.

    Args:
        group: The group's subject, ``regency:<name>`` or a listed group's name.
        members: Its stations in scope (their own rule settings).
        group_firing: Whether the grouped incident fires.
        now_ns: The moment judged.

    Returns:
        The stations whose own incident fires afterwards, whether the group fires, and the
        events (a station or the group firing or clearing).
    """
    events: list[AlertEvent] = []
    overdue = [m for m in members if m.rule.enabled and overdue_since_ns(m) <= now_ns]
    groupable = len(members) >= max((m.rule.group_min_stations for m in members), default=2)
    everyone = groupable and len(overdue) == len(members)
    firing = {m.station_id for m in members if m.firing}
    if everyone and not group_firing:
        # The group takes over from the stations that already fired on their own.
        for member in members:
            if member.firing:
                text = f"{member.station_id}: silent with its whole regency ({group})"
                events.append(_event(member.station_id, now_ns, False, text))
        firing.clear()
        stations = tuple(sorted(m.station_id for m in members))
        newest = max(m.last_seen_ns for m in members)
        minutes = (now_ns - newest) / (60 * NS_PER_S)
        text = f"{group}: all {len(stations)} stations silent for {minutes:.0f} min"
        events.append(_event(group, now_ns, True, text, stations))
        return firing, True, events
    # Stations come back one by one: the group holds while half of them are still silent, and
    # the stragglers left then fire on their own.
    if group_firing and 2 * len(overdue) < len(members):
        stations = tuple(sorted(m.station_id for m in members))
        events.append(_event(group, now_ns, False, f"{group}: stations report again", stations))
        group_firing = False
    if group_firing:
        return firing, True, events
    overdue_ids = {m.station_id for m in overdue}
    for member in members:
        if member.station_id in firing and member.station_id not in overdue_ids:
            # Cleared by a reading; the engine normally clears it on arrival already.
            firing.discard(member.station_id)
            events.append(_event(member.station_id, now_ns, False, f"{member.station_id}: back"))
        elif member.station_id in overdue_ids and member.station_id not in firing:
            wait_ns = 0 if not groupable else int(member.rule.group_wait_s * NS_PER_S)
            if now_ns - overdue_since_ns(member) >= wait_ns:
                firing.add(member.station_id)
                text = _silence(member.station_id, now_ns, member.last_seen_ns)
                events.append(_event(member.station_id, now_ns, True, text))
    return firing, False, events


def _event(
    subject: str, now_ns: int, firing: bool, text: str, stations: tuple[str, ...] = ()
) -> AlertEvent:
    return AlertEvent(
        at_ns=now_ns,
        subject=subject,
        kind=EventKind.NO_DATA,
        rule=RULE,
        firing=firing,
        severity=Level.NORMAL,
        stations=stations,
        detail=text,
    )

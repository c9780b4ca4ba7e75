"""Messages for people, rendered from Jinja2 templates in Bahasa Indonesia or English.

One message carries a batch (one group's notices): a subject, a long body (e-mail, Telegram,
webhook ``text``) and a short form that fits one SMS. Each notice names its station, river and
regency, the level in the region's own label scheme, the value, the trend in cm/h, the time in
the station's own zone, what to do, and for an upstream warning the expected arrival. Every
message leaves room for an acknowledgement: ``ack_url`` (the API supplies signed links) or, by
default, the command ``siaga alerts ack <id>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jinja2

from alerts.model import AlertEvent, EventKind, IncidentState
from alerts.notify.localtime import Zone, clock_time, local_time, zone_for
from alerts.notify.sms import clip, fits_one_sms, to_gsm7
from alerts.pipeline.model import Notice
from devices.levels import Level, label, thresholds_at
from devices.stations import Station, StationRegistry

Language = Literal["id", "en"]
AckLink = Callable[[int], str | None]
TEMPLATES = Path(__file__).parent / "templates"
_HAZARDS = frozenset({EventKind.LEVEL, EventKind.UPSTREAM, EventKind.RATE, EventKind.FORECAST})


def no_ack_link(_incident_id: int) -> str | None:
    """The default: no web link (the template then names the CLI command)."""
    return None


@dataclass(frozen=True, slots=True)
class Rendered:
    """One message in one language."""

    subject: str
    body: str
    short: str


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,  # noqa: S701 - plain text for SMS and chat, never HTML
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def level_label(station: Station | None, level: Level, at_ns: int) -> str:
    """The level as the station's region names it (``Siaga 1`` for AWAS at a Jakarta gate)."""
    scheme = "bnpb"
    if station is not None:
        thresholds = thresholds_at(station.thresholds, at_ns)
        if thresholds is not None:
            scheme = thresholds.scheme
    return label(level, scheme)


# A river name that already says "river" in the local language is written as it is.
_RIVER_WORDS = ("Sungai ", "Kali ", "Way ", "Krueng ", "Batang ", "Bengawan ", "Air ")


def subject_name(subject: str, registry: StationRegistry) -> str:
    """What people call an event's subject: the station's name, a group's regency or gateway."""
    station = registry.get(subject)
    if station is not None:
        return station.name
    kind, _, rest = subject.partition(":")
    if kind == "regency" and rest:
        return rest
    if kind == "gateway" and rest:
        return f"gateway {rest}"
    return subject


def event_context(
    event: AlertEvent,
    registry: StationRegistry,
    zones: dict[str, str] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    resolved: bool | None = None,
) -> dict[str, Any]:
    """What a template knows about one event: names, never ids; local time; the level's label.

    Args:
        event: The event (an incident's last one, or a notice's).
        registry: Station names, rivers, regencies and label schemes.
        zones: Regency -> zone overrides (see :func:`zone_for`).
        labels: The incident's labels, for a subject the registry no longer knows.
        resolved: Whether the incident is resolved (default: the event no longer fires).
    """
    labels = labels or {}
    station = registry.get(event.subject)
    # An upstream incident's rule names its source (``upstream:<station>``) when the event
    # does not (the engine's confirmation of a pending incident carries no source).
    source = event.source
    if source is None and event.kind is EventKind.UPSTREAM:
        source = event.rule.partition(":")[2] or None
    zone = zone_for(station, zones)
    expected = event.expected_at_ns
    river = (station.river if station else labels.get("river")) or None
    firing = event.firing if resolved is None else not resolved
    hazard = firing and event.kind in _HAZARDS
    previous = (
        event.previous if event.previous is not None and event.previous != event.severity else None
    )
    window = event.expected_range_ns
    return {
        "kind": str(event.kind),
        "rule": event.rule,
        "station": event.subject,
        "station_name": subject_name(event.subject, registry),
        "is_station": station is not None,
        "river": river,
        "river_is_named": river is not None and river.startswith(_RIVER_WORDS),
        "regency": station.regency if station else labels.get("regency", "-"),
        "level": event.severity.name,
        "level_label": level_label(station, event.severity, event.at_ns),
        "previous_label": (
            level_label(station, previous, event.at_ns) if previous is not None else None
        ),
        "rising": event.previous is None or event.severity > event.previous,
        "falling": event.trend_cm_h is not None and event.trend_cm_h < 0,
        "fault": event.rule.partition(":")[2],
        "value_cm": None if event.value is None else f"{event.value:.0f}",
        "trend_cm_h": None if event.trend_cm_h is None else f"{event.trend_cm_h:+.0f}",
        "time": local_time(event.at_ns, zone),
        "clock": clock_time(event.at_ns, zone),
        "zone": zone.abbreviation,
        "resolved": not firing,
        "hazard": hazard,
        # Which of a batch's notices names the subject line: the worst hazard, then trouble.
        "rank": (10 + int(event.severity)) if hazard else (5 if firing else 0),
        "late": event.late,
        "source_name": subject_name(source, registry) if source else None,
        "expected": local_time(expected, zone) if expected else None,
        "expected_clock": clock_time(expected, zone) if expected else None,
        "stations": [subject_name(s, registry) for s in event.stations],
        # A forecast's interval: when its bounds cross the level, as times of day.
        "coverage_pct": event.coverage_pct,
        "range_from": _time_of_day(window[0], zone) if window else None,
        "range_until": _time_of_day(window[1], zone) if window else None,
        "range_open": event.range_open,
        "observed": _observed(station, event),
    }


def _time_of_day(ts_ns: int, zone: Zone) -> str:
    """``13:00``: the clock time without the zone (the sentence names it once)."""
    return clock_time(ts_ns, zone).partition(" ")[0]


def _observed(station: Station | None, event: AlertEvent) -> bool:
    """Whether the event's value already stands at its level (a forecast superseded by fact)."""
    if station is None or event.value is None:
        return False
    thresholds = thresholds_at(station.thresholds, event.at_ns)
    return thresholds is not None and thresholds.level_of(event.value) >= event.severity


def item_context(
    notice: Notice,
    registry: StationRegistry,
    ack_link: AckLink,
    zones: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What a template knows about one notice: its event, its incident and how to acknowledge."""
    context = event_context(
        notice.event,
        registry,
        zones,
        labels=notice.labels,
        resolved=notice.state is IncidentState.RESOLVED or not notice.event.firing,
    )
    context.update(
        incident_id=notice.incident_id,
        ack_url=ack_link(notice.incident_id),
        reason=notice.reason,
    )
    return context


def phrases(language: Language) -> Any:
    """The language's phrase macros (``summary``, ``advice``, ``headline``…) as callables."""
    return _phrases(language)


@cache
def _phrases(language: Language) -> Any:
    return _environment().get_template(f"{language}/phrases.j2").module


def summarise(
    event: AlertEvent,
    language: Language,
    registry: StationRegistry,
    *,
    zones: dict[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    resolved: bool | None = None,
) -> str:
    """One event as one sentence for people, in ``language``, with station names.

    Incidents store the event's facts (kind, levels, value, trend, source, expected arrival,
    stations), not a sentence: each reader gets the summary in their own language.
    """
    context = event_context(event, registry, zones, labels=labels, resolved=resolved)
    return str(_phrases(language).summary(context)).strip()


def advice(level: Level, language: Language) -> str:
    """What to do at ``level``, in ``language``."""
    return str(_phrases(language).advice(level.name)).strip()


def render(
    notices: Sequence[Notice],
    language: Language,
    registry: StationRegistry,
    *,
    ack_link: AckLink = no_ack_link,
    zones: dict[str, str] | None = None,
    repeat: bool = False,
) -> Rendered:
    """Render one batch for one language.

    The short form lists as many notices as fit one SMS and counts the rest.
    """
    if not notices:
        raise ValueError("nothing to render: a message needs at least one notice")
    items = [item_context(n, registry, ack_link, zones) for n in notices]
    firing = [n for n in notices if n.event.firing and n.event.kind is not EventKind.NO_DATA]
    top = max((n.event.severity for n in firing), default=Level.NORMAL)
    regencies = sorted({item["regency"] for item in items})
    context: dict[str, Any] = {
        "items": items,
        "top": top.name,
        "top_label": items[0]["level_label"] if len(items) == 1 else top.name.capitalize(),
        "regencies": regencies,
        "repeat": repeat,
        "reason": notices[0].reason,
        "late": all(item["late"] for item in items),
    }
    env = _environment()
    subject = env.get_template(f"{language}/subject.txt.j2").render(context).strip()
    body = env.get_template(f"{language}/long.txt.j2").render(context).strip()
    short_template = env.get_template(f"{language}/short.txt.j2")

    def short_form(shown: int) -> str:
        return to_gsm7(
            short_template.render(context, shown=items[:shown], more=len(items) - shown).strip()
        )

    shown = most_that_fit(len(items), lambda count: fits_one_sms(short_form(count)))
    return Rendered(subject=subject, body=body, short=clip(short_form(shown)))


def most_that_fit(count: int, fits: Callable[[int], bool]) -> int:
    """The most of ``count`` items whose short form fits one SMS (1 when not even one does).

    All of them first (the usual case: one render); else a binary search over the forms that
    count the rest ("+N more"), whose length grows with the items shown: log2(n) renders
    instead of n (a national surge's batches hold hundreds of notices).
    """
    if count <= 1 or fits(count):
        return max(count, 1)
    low, high = 1, count - 1  # the answer is low when nothing larger fits
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low

"""Messages for people, rendered from Jinja2 templates in Bahasa Indonesia or English.

One message carries a batch (one group's notices): a subject, a long body (e-mail, Telegram,
webhook ``text``) and a short form that fits one SMS. Each notice names its station, river and
regency, the level in the region's own label scheme, the value, the trend in cm/h, the time in
the station's own zone, what to do, and for an upstream warning the expected arrival. Every
message leaves room for an acknowledgement: ``ack_url`` (the API supplies signed links) or, by
default, the command ``siaga alerts ack <id>``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jinja2

from alerts.model import EventKind, IncidentState
from alerts.notify.localtime import clock_time, local_time, zone_for
from alerts.notify.sms import clip, fits_one_sms, to_gsm7
from alerts.pipeline.model import Notice
from devices.levels import Level, label, thresholds_at
from devices.stations import Station, StationRegistry

Language = Literal["id", "en"]
AckLink = Callable[[int], str | None]
TEMPLATES = Path(__file__).parent / "templates"


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


def item_context(
    notice: Notice,
    registry: StationRegistry,
    ack_link: AckLink,
    zones: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What a template knows about one notice."""
    event = notice.event
    station = registry.get(event.subject)
    zone = zone_for(station, zones)
    source = registry.get(event.source) if event.source else None
    expected = event.expected_at_ns
    return {
        "incident_id": notice.incident_id,
        "kind": str(event.kind),
        "rule": event.rule,
        "station": event.subject,
        "station_name": station.name if station else event.subject,
        "river": (station.river if station else notice.labels.get("river")) or "-",
        "regency": station.regency if station else notice.labels.get("regency", "-"),
        "level": event.severity.name,
        "level_label": level_label(station, event.severity, event.at_ns),
        "previous_label": (
            level_label(station, event.previous, event.at_ns) if event.previous else None
        ),
        "value_cm": None if event.value is None else f"{event.value:.0f}",
        "trend_cm_h": None if event.trend_cm_h is None else f"{event.trend_cm_h:+.0f}",
        "time": local_time(event.at_ns, zone),
        "clock": clock_time(event.at_ns, zone),
        "zone": zone.abbreviation,
        "resolved": notice.state is IncidentState.RESOLVED or not event.firing,
        "late": event.late,
        "source_name": source.name if source else event.source,
        "expected": local_time(expected, zone) if expected else None,
        "expected_clock": clock_time(expected, zone) if expected else None,
        "stations": list(event.stations),
        "detail": event.detail,
        "ack_url": ack_link(notice.incident_id),
        "reason": notice.reason,
    }


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

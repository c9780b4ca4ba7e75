"""CAP 1.2 (OASIS Common Alerting Protocol) documents for public flood alerts.

One document per transition of a public-hazard incident (``level``, ``rate``, ``upstream``,
``forecast``): the first is ``Alert``, later ones ``Update``, and the incident's resolution
``Cancel``, each ``references`` every earlier document of the incident
(``sender,identifier,sent`` triples). A gauge reading past a threshold is ``Observed``; an
upstream wave still on its way, or a forecast crossing, is ``Likely`` with ``onset`` at the
expected arrival. Each document has an ``id-ID`` and an
``en-US`` info block and a circle around the station. Operational incidents (no data, sensor
faults) are for staff, not the public, and get no CAP document.

Every document is validated against the official schema (``schema/CAP-v1.2.xsd``, vendored
with its OASIS licence) before it is stored or sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from xml.etree import ElementTree as ET

import xmlschema

from alerts.model import EventKind, IncidentState
from alerts.notify.localtime import Zone, zone_for
from alerts.notify.message import Language, advice, event_context, phrases
from alerts.pipeline.model import Notice
from alerts.settings import NotifySettings
from devices.levels import Level
from devices.stations import StationRegistry
from ingest.errors import SiagaError

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
SCHEMA_PATH = Path(__file__).parent / "schema" / "CAP-v1.2.xsd"
PUBLIC_KINDS = frozenset({EventKind.LEVEL, EventKind.RATE, EventKind.UPSTREAM, EventKind.FORECAST})
_EXPECTED = frozenset({EventKind.UPSTREAM, EventKind.FORECAST})
"""Kinds about water still to come: CAP ``certainty`` Likely, ``urgency`` Expected, an onset."""
_NOTIFY = NotifySettings.model_fields  # the settings tree is the one source of every default

_SEVERITY = {
    Level.AWAS: "Extreme",
    Level.SIAGA: "Severe",
    Level.WASPADA: "Moderate",
    Level.NORMAL: "Minor",
}
_RESPONSE = {
    Level.AWAS: "Evacuate",
    Level.SIAGA: "Prepare",
    Level.WASPADA: "Monitor",
    Level.NORMAL: "AllClear",
}


_LANGUAGES: tuple[tuple[Language, str], ...] = (("id", "id-ID"), ("en", "en-US"))


class CapInvalidError(SiagaError):
    """A CAP document failed schema validation (a bug in this module, never bad input)."""


@dataclass(frozen=True, slots=True)
class CapReference:
    """An earlier document of the same incident, for ``references``."""

    identifier: str
    sent: str


@dataclass(frozen=True, slots=True)
class CapDocument:
    """A built, validated CAP document."""

    identifier: str
    incident_id: int
    msg_type: str
    sent: str
    sent_ns: int
    station: str
    headline: str
    xml: str


@cache
def schema() -> xmlschema.XMLSchema:
    """The OASIS CAP 1.2 schema (parsed once)."""
    return xmlschema.XMLSchema(SCHEMA_PATH)


def cap_time(ts_ns: int, offset_h: int = 0) -> str:
    """A CAP date-time: seconds, with an explicit offset (``Z`` is not allowed)."""
    moment = datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC)
    local = moment.astimezone(Zone("", offset_h).tzinfo)
    text = local.strftime("%Y-%m-%dT%H:%M:%S%z")
    return f"{text[:-2]}:{text[-2:]}"


def identifier_for(notice: Notice) -> str:
    """The stable CAP identifier of a notice's document (the same after any restart)."""
    digest = hashlib.blake2b(notice.id.encode(), digest_size=10).hexdigest()
    return f"siaga-{notice.incident_id}-{digest}"


def wants_cap(notice: Notice) -> bool:
    """Whether a notice makes a CAP document (public hazards; not escalations or reminders)."""
    return notice.event.kind in PUBLIC_KINDS and notice.reason == "transition"


def build_cap(
    notice: Notice,
    registry: StationRegistry,
    previous: Sequence[CapReference],
    *,
    sender: str,
    sent_ns: int,
    radius_km: float = _NOTIFY["cap_radius_km"].default,
    status: str = _NOTIFY["cap_status"].default,
) -> CapDocument:
    """The CAP document for one transition, validated.

    Args:
        notice: The transition.
        registry: For the station's name, place and label scheme.
        previous: Earlier documents of the same incident, oldest first.
        sender: The sender id (e.g. ``siaga@bpbd.example.go.id``).
        sent_ns: When it is issued (stable: pass the transition's commit time).
        radius_km: The area circle around the station.
        status: ``Actual``, or ``Exercise``/``Test`` for drills.

    Raises:
        CapInvalidError: The schema refused the document.
    """
    event = notice.event
    station = registry.get(event.subject)
    zone = zone_for(station)
    resolved = notice.state is IncidentState.RESOLVED or not event.firing
    msg_type = "Cancel" if resolved and previous else ("Update" if previous else "Alert")
    identifier = identifier_for(notice)
    sent = cap_time(sent_ns, zone.offset_h)
    it = event_context(event, registry, labels=notice.labels, resolved=resolved)

    alert = ET.Element("alert", xmlns=CAP_NS)
    for tag, text in (
        ("identifier", identifier),
        ("sender", sender),
        ("sent", sent),
        ("status", status),
        ("msgType", msg_type),
        ("scope", "Public"),
    ):
        ET.SubElement(alert, tag).text = text
    if previous:
        ET.SubElement(alert, "references").text = " ".join(
            f"{sender},{ref.identifier},{ref.sent}" for ref in previous
        )
    ET.SubElement(alert, "incidents").text = f"siaga-incident-{notice.incident_id}"
    headline = ""
    for language, cap_language in _LANGUAGES:
        words = phrases(language)
        info = ET.SubElement(alert, "info")
        ET.SubElement(info, "language").text = cap_language
        ET.SubElement(info, "category").text = "Met"
        ET.SubElement(info, "event").text = str(words.event_name)
        ET.SubElement(info, "responseType").text = (
            "AllClear" if resolved else _RESPONSE[event.severity]
        )
        upstream = event.kind in _EXPECTED
        ET.SubElement(info, "urgency").text = (
            "Past" if resolved else ("Expected" if upstream else "Immediate")
        )
        ET.SubElement(info, "severity").text = _SEVERITY[event.severity]
        ET.SubElement(info, "certainty").text = "Likely" if upstream else "Observed"
        ET.SubElement(info, "effective").text = cap_time(event.at_ns, zone.offset_h)
        if upstream and event.expected_at_ns and not resolved:
            ET.SubElement(info, "onset").text = cap_time(event.expected_at_ns, zone.offset_h)
        line = str(words.headline(it)).strip()
        headline = headline or line
        ET.SubElement(info, "senderName").text = "Siaga"
        ET.SubElement(info, "headline").text = line
        ET.SubElement(
            info, "description"
        ).text = f"{str(words.summary(it)).strip()} ({str(words.place(it)).strip()})"
        ET.SubElement(info, "instruction").text = advice(
            Level.NORMAL if resolved else event.severity, language
        )
        if station is not None:
            area = ET.SubElement(info, "area")
            ET.SubElement(area, "areaDesc").text = (
                f"{station.name}, {station.district + ', ' if station.district else ''}"
                f"{station.regency}"
            )
            ET.SubElement(
                area, "circle"
            ).text = f"{station.latitude:.4f},{station.longitude:.4f} {radius_km:g}"
    xml = ET.tostring(alert, encoding="unicode", xml_declaration=False)
    document = '<?xml version="1.0" encoding="UTF-8"?>\n' + xml
    errors = list(schema().iter_errors(document))
    if errors:
        raise CapInvalidError(f"CAP document {identifier} is not valid CAP 1.2: {errors[0]}")
    return CapDocument(
        identifier=identifier,
        incident_id=notice.incident_id,
        msg_type=msg_type,
        sent=sent,
        sent_ns=sent_ns,
        station=event.subject,
        headline=headline,
        xml=document,
    )

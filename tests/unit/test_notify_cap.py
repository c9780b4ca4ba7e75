from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from alerts.model import AlertEvent, EventKind, IncidentState
from alerts.notify.cap import CAP_NS, CapReference, build_cap, schema, wants_cap
from alerts.pipeline.model import Notice, labels_of
from devices.levels import Level
from tests.unit.test_notify_message import REGISTRY, level_notice, ns

NS = {"cap": CAP_NS}
SENDER = "siaga@bpbd.example.go.id"


def fields(xml: str) -> ET.Element:
    return ET.fromstring(xml.split("\n", 1)[1])


def test_first_document_is_an_observed_alert_in_two_languages() -> None:
    notice = level_notice("ciliwung-katulampa", Level.AWAS)
    doc = build_cap(notice, REGISTRY, [], sender=SENDER, sent_ns=notice.event.at_ns)
    root = fields(doc.xml)
    assert doc.msg_type == "Alert"
    assert root.findtext("cap:msgType", namespaces=NS) == "Alert"
    assert root.find("cap:references", NS) is None
    assert root.findtext("cap:sent", namespaces=NS) == "2020-09-21T18:10:00+07:00"
    infos = root.findall("cap:info", NS)
    assert [i.findtext("cap:language", namespaces=NS) for i in infos] == ["id-ID", "en-US"]
    assert {i.findtext("cap:certainty", namespaces=NS) for i in infos} == {"Observed"}
    assert {i.findtext("cap:severity", namespaces=NS) for i in infos} == {"Extreme"}
    assert "Siaga 1" in (infos[0].findtext("cap:headline", namespaces=NS) or "")
    circle = infos[0].findtext("cap:area/cap:circle", namespaces=NS) or ""
    assert circle.endswith(" 5")
    assert schema().is_valid(doc.xml)


def test_updates_and_cancel_reference_the_chain() -> None:
    first = level_notice("ciliwung-depok", Level.WASPADA)
    second = level_notice("ciliwung-depok", Level.SIAGA, "2020-09-21T12:00:00+00:00")
    end = level_notice(
        "ciliwung-depok", Level.NORMAL, "2020-09-22T00:00:00+00:00", state=IncidentState.RESOLVED
    )
    a = build_cap(first, REGISTRY, [], sender=SENDER, sent_ns=first.event.at_ns)
    refs = [CapReference(a.identifier, a.sent)]
    b = build_cap(second, REGISTRY, refs, sender=SENDER, sent_ns=second.event.at_ns)
    refs.append(CapReference(b.identifier, b.sent))
    c = build_cap(end, REGISTRY, refs, sender=SENDER, sent_ns=end.event.at_ns)
    assert (a.msg_type, b.msg_type, c.msg_type) == ("Alert", "Update", "Cancel")
    references = fields(c.xml).findtext("cap:references", namespaces=NS)
    assert references == f"{SENDER},{a.identifier},{a.sent} {SENDER},{b.identifier},{b.sent}"
    assert len({a.identifier, b.identifier, c.identifier}) == 3


def test_identifier_is_stable_for_the_same_notice() -> None:
    notice = level_notice("tl-tanjung", Level.SIAGA)
    one = build_cap(notice, REGISTRY, [], sender=SENDER, sent_ns=notice.event.at_ns)
    two = build_cap(notice, REGISTRY, [], sender=SENDER, sent_ns=notice.event.at_ns)
    assert one.xml == two.xml
    assert one.sent.endswith("+08:00")  # Tabalong: WITA


def test_upstream_warning_is_likely_with_onset() -> None:
    event = AlertEvent(
        at_ns=ns("2020-09-21T11:10:00+00:00"),
        subject="ciliwung-manggarai",
        kind=EventKind.UPSTREAM,
        rule="upstream:ciliwung-depok",
        firing=True,
        severity=Level.SIAGA,
        source="ciliwung-depok",
        expected_at_ns=ns("2020-09-21T17:10:00+00:00"),
    )
    notice = Notice("up", 3, labels_of(event, IncidentState.FIRING), event, IncidentState.FIRING)
    assert wants_cap(notice)
    root = fields(build_cap(notice, REGISTRY, [], sender=SENDER, sent_ns=event.at_ns).xml)
    info = root.find("cap:info", NS)
    assert info is not None
    assert info.findtext("cap:certainty", namespaces=NS) == "Likely"
    assert info.findtext("cap:urgency", namespaces=NS) == "Expected"
    assert info.findtext("cap:onset", namespaces=NS) == "2020-09-22T00:10:00+07:00"


def test_a_forecast_warning_is_likely_with_its_expected_crossing_as_onset() -> None:
    event = AlertEvent(
        at_ns=ns("2026-01-29T02:00:00+00:00"),
        subject="tl-tanjung",
        kind=EventKind.FORECAST,
        rule="forecast",
        firing=True,
        severity=Level.SIAGA,
        value=430.0,
        expected_at_ns=ns("2026-01-29T08:30:00+00:00"),
    )
    notice = Notice("fc", 5, labels_of(event, IncidentState.FIRING), event, IncidentState.FIRING)
    assert wants_cap(notice)
    doc = build_cap(notice, REGISTRY, [], sender=SENDER, sent_ns=event.at_ns)
    info = fields(doc.xml).find("cap:info", NS)
    assert info is not None
    assert info.findtext("cap:certainty", namespaces=NS) == "Likely"
    assert info.findtext("cap:onset", namespaces=NS) == "2026-01-29T16:30:00+08:00"  # WITA
    description = info.findtext("cap:description", namespaces=NS) or ""
    assert description.startswith(
        "PRAKIRAAN: muka air di Pos Duga Air Tanjung diperkirakan mencapai SIAGA sekitar pukul "
        "16.30 WITA; kini 430 cm"
    )
    headline = info.findtext("cap:headline", namespaces=NS) or ""
    assert headline == "Prakiraan Siaga: banjir di Pos Duga Air Tanjung"
    assert schema().is_valid(doc.xml)


def test_operational_incidents_make_no_cap() -> None:
    event = AlertEvent(0, "regency:Jember", EventKind.NO_DATA, "no_data", True, Level.WASPADA)
    notice = Notice("nd", 4, labels_of(event, IncidentState.FIRING), event, IncidentState.FIRING)
    assert not wants_cap(notice)


def test_schema_refuses_a_broken_document() -> None:
    notice = level_notice("ciliwung-katulampa", Level.AWAS)
    doc = build_cap(notice, REGISTRY, [], sender=SENDER, sent_ns=notice.event.at_ns)
    broken = doc.xml.replace("<msgType>Alert</msgType>", "<msgType>Alarm</msgType>")
    assert not schema().is_valid(broken)
    with pytest.raises(Exception, match=r"msgType|Alarm"):
        schema().validate(broken)

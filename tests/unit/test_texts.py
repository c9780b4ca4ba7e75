"""Every text for people, in both languages: station names never ids, Indonesian without English.

Each kind of event, firing and resolved, at every station of the seed registry, through every
form it takes: the incident summary, the e-mail (subject and body), the SMS and CAP's info blocks.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from alerts.model import AlertEvent, EventKind, IncidentState
from alerts.notify.cap import CAP_NS, build_cap, wants_cap
from alerts.notify.message import render, summarise
from alerts.pipeline.model import Notice, labels_of
from devices.levels import Level
from devices.stations import load_stations
from tests.textcheck import english_in, english_words, ids_in

REGISTRY = load_stations(Path(__file__).parents[2] / "config" / "stations.yaml")
T = 1_741_600_000 * 1_000_000_000
HOUR = 3600 * 1_000_000_000
STATIONS = [s.id for s in REGISTRY.stations()]
CASES = list(itertools.product((True, False), ("id", "en")))


def events(station: str, firing: bool) -> list[AlertEvent]:
    other = next(s for s in STATIONS if s != station)
    level = Level.AWAS if firing else Level.NORMAL
    return [
        AlertEvent(T, station, EventKind.LEVEL, "level", firing, level, Level.SIAGA, 431.4, 3.2),
        AlertEvent(
            T,
            station,
            EventKind.UPSTREAM,
            f"upstream:{other}",
            firing,
            Level.SIAGA if firing else Level.NORMAL,
            value=410.0,
            source=other,
            expected_at_ns=T + 8 * HOUR if firing else None,
        ),
        AlertEvent(
            T, station, EventKind.RATE, "rate:rise_1h", firing, Level.WASPADA, None, 300.0, 55.0
        ),
        AlertEvent(
            T, station, EventKind.RATE, "rate:fall", firing, Level.WASPADA, None, 300.0, -40.0
        ),
        AlertEvent(T, station, EventKind.NO_DATA, "no_data", firing, Level.NORMAL),
        AlertEvent(
            T,
            "regency:Tulang Bawang",
            EventKind.NO_DATA,
            "no_data",
            firing,
            Level.NORMAL,
            stations=(station, other),
        ),
        *(
            AlertEvent(
                T, station, EventKind.SENSOR_FAULT, f"sensor_fault:{f}", firing, Level.NORMAL
            )
            for f in ("flatline", "spike", "battery")
        ),
        # A forecast warning (its interval closed, then open-ended), and its withdrawal with the
        # river far below the level or already at it (superseded by the observation).
        *(
            AlertEvent(
                T,
                station,
                EventKind.FORECAST,
                "forecast",
                firing,
                Level.SIAGA,
                Level.WASPADA if firing else Level.SIAGA,
                value,
                expected_at_ns=T + 5 * HOUR if firing else None,
                expected_range_ns=(T + 4 * HOUR, T + 7 * HOUR) if firing else None,
                range_open=open_ended,
                coverage_pct=80 if firing else None,
            )
            for value, open_ended in ((120.0, False), (900.0, True))
        ),
        # Incidents confirmed after their pending time: only the kind, rule and level are known.
        *(
            AlertEvent(T, station, kind, rule, True, Level.SIAGA)
            for kind, rule in (
                (EventKind.LEVEL, "level"),
                (EventKind.UPSTREAM, f"upstream:{other}"),
                (EventKind.RATE, "rate:rise_1h"),
                (EventKind.NO_DATA, "no_data"),
                (EventKind.SENSOR_FAULT, "sensor_fault:spike"),
                (EventKind.FORECAST, "forecast"),
            )
        ),
    ]


def said_well(text: str, language: str) -> None:
    """Names, no ids, no empty values; Indonesian without English."""
    assert text
    assert ids_in(text, REGISTRY) == [], text
    assert "None" not in text, text
    if language == "id":
        assert english_in(text, REGISTRY) == [], text


def notices(firing: bool) -> list[Notice]:
    state = IncidentState.FIRING if firing else IncidentState.RESOLVED
    return [
        Notice(f"n{i}", i, labels_of(e, state), e, state)
        for i, e in enumerate(e for s in STATIONS for e in events(s, firing))
    ]


def test_every_kind_is_checked() -> None:
    station = STATIONS[0]
    for firing in (True, False):
        assert {e.kind for e in events(station, firing)} == set(EventKind)


def test_the_english_words_include_the_ones_people_saw() -> None:
    assert {"rose", "expected", "upstream"} <= english_words()


@pytest.mark.parametrize(
    ("firing", "language"), list(itertools.product((True, False), ("id", "en")))
)
def test_summaries_name_stations_and_speak_one_language(firing: bool, language: str) -> None:
    for notice in notices(firing):
        said_well(summarise(notice.event, language, REGISTRY, labels=notice.labels), language)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("firing", "language"), list(itertools.product((True, False), ("id", "en")))
)
def test_messages_name_stations_and_speak_one_language(firing: bool, language: str) -> None:
    batch = notices(firing)
    # One notice at a time (each subject) and the whole batch (a grouped e-mail).
    for group in [*([n] for n in batch), batch]:
        for reason in ("transition", "reminder", "escalation"):
            rendered = render(
                [dataclasses.replace(n, reason=reason) for n in group],
                language,  # type: ignore[arg-type]
                REGISTRY,
            )
            for text in (rendered.subject, rendered.body, rendered.short):
                said_well(text, language)


def test_the_subject_never_runs_the_product_into_the_level() -> None:
    for notice in notices(True):
        subject = render([notice], "id", REGISTRY).subject
        assert subject.startswith("[Siaga] "), subject
        assert " — " in subject, subject
        assert not subject.startswith("Siaga:")


def test_cap_documents_in_both_languages() -> None:
    for notice in (n for n in notices(True) + notices(False) if wants_cap(n)):
        document = build_cap(notice, REGISTRY, [], sender="siaga@bpbd.example", sent_ns=T)
        for info in ET.fromstring(document.xml).iter(f"{{{CAP_NS}}}info"):
            language = info.findtext(f"{{{CAP_NS}}}language")
            texts = [
                info.findtext(f"{{{CAP_NS}}}{tag}") or ""
                for tag in ("headline", "description", "instruction")
            ]
            for text in texts:
                said_well(text, "id" if language == "id-ID" else "en")


def test_the_check_sees_what_it_looks_for() -> None:
    # The checks themselves must be able to fail.
    assert ids_in("tb-menggala rose to Awas (AWAS) at 430.6 cm", REGISTRY) == ["tb-menggala"]
    assert english_in("upstream: air rose to Awas, expected at 12:00", REGISTRY) == [
        "expected",
        "rose",
        "upstream",
    ]
    assert english_in("Pos Duga Air Menggala naik ke Awas", REGISTRY) == []

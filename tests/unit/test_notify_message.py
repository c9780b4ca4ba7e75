from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.model import AlertEvent, EventKind, IncidentState
from alerts.notify.localtime import WIB, WIT, WITA, zone_for
from alerts.notify.message import most_that_fit, render, summarise
from alerts.notify.sms import clip, fits_one_sms, gsm7_septets
from alerts.pipeline.model import Notice, labels_of
from devices.levels import Level, thresholds_at
from devices.stations import StaticRegistry, load_stations

REGISTRY = load_stations(Path(__file__).parents[2] / "config" / "stations.yaml")


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000


def level_notice(
    station: str,
    severity: Level,
    at: str = "2020-09-21T11:10:00+00:00",
    *,
    incident_id: int = 7,
    state: IncidentState = IncidentState.FIRING,
    late: bool = False,
) -> Notice:
    found = REGISTRY.get(station)
    assert found is not None
    event = AlertEvent(
        at_ns=ns(at),
        subject=station,
        kind=EventKind.LEVEL,
        rule="level",
        firing=state is IncidentState.FIRING,
        severity=severity,
        previous=Level.NORMAL,
        value=220.0,
        trend_cm_h=180.0,
        late=late,
    )
    return Notice(
        id=f"{station}-{severity.name}",
        incident_id=incident_id,
        labels=labels_of(event, state, regency=found.regency, river=found.river or ""),
        event=event,
        state=state,
    )


def test_jakarta_gate_message_in_indonesian_uses_the_local_label_and_wib() -> None:
    rendered = render([level_notice("ciliwung-katulampa", Level.AWAS)], "id", REGISTRY)
    assert rendered.subject == "[Siaga] SIAGA 1 — Bendung Katulampa: 220 cm"
    assert (
        "Bendung Katulampa naik ke Siaga 1 (sebelumnya Siaga 4): 220 cm, laju +180 cm/jam, "
        "2020-09-21 18:10 WIB." in rendered.body
    )
    assert "Sungai Ciliwung" in rendered.body
    assert "Segera evakuasi" in rendered.body
    assert "siaga alerts ack 7" in rendered.body
    assert fits_one_sms(rendered.short)


def test_english_message_and_ack_link() -> None:
    rendered = render(
        [level_notice("ciliwung-katulampa", Level.SIAGA)],
        "en",
        REGISTRY,
        ack_link=lambda incident: f"https://siaga.example/ack/{incident}?sig=abc",
    )
    assert "Siaga 2" in rendered.body
    assert "What to do: Prepare evacuation" in rendered.body
    assert "https://siaga.example/ack/7?sig=abc" in rendered.body
    assert "https://siaga.example/ack/7?sig=abc" in rendered.short


def test_tabalong_is_on_wita() -> None:
    rendered = render([level_notice("tl-tanjung", Level.WASPADA)], "id", REGISTRY)
    assert "2020-09-21 19:10 WITA" in rendered.body
    assert "Waspada" in rendered.body


def test_zones_by_longitude() -> None:
    station = REGISTRY.get("ciliwung-katulampa")
    assert station is not None
    assert zone_for(station) is WIB
    assert zone_for(station.model_copy(update={"regency": "X", "longitude": 119.4})) is WITA
    assert zone_for(station.model_copy(update={"regency": "X", "longitude": 140.7})) is WIT
    assert zone_for(station, {"Kota Bogor": "WIT"}) is WIT


def test_upstream_warning_names_the_arrival() -> None:
    event = AlertEvent(
        at_ns=ns("2020-09-21T11:10:00+00:00"),
        subject="ciliwung-depok",
        kind=EventKind.UPSTREAM,
        rule="upstream:ciliwung-katulampa",
        firing=True,
        severity=Level.AWAS,
        source="ciliwung-katulampa",
        expected_at_ns=ns("2020-09-21T14:10:00+00:00"),
    )
    notice = Notice("u1", 9, labels_of(event, IncidentState.FIRING), event, IncidentState.FIRING)
    rendered = render([notice], "id", REGISTRY)
    assert (
        "Kiriman air dari Bendung Katulampa (Siaga 1) diperkirakan tiba di Pos Pantau Depok "
        "sekitar 2020-09-21 21:10 WIB." in rendered.body
    )
    assert "Katulampa" in rendered.body
    assert rendered.subject == (
        "[Siaga] SIAGA 1 — Pos Pantau Depok: kiriman air dari Bendung Katulampa"
    )


def test_the_subject_says_which_kind_of_alert_it_is() -> None:
    # A level and a fast rise at one station are two incidents: their subjects must differ.
    def subject(kind: EventKind, language: str, state: IncidentState = IncidentState.FIRING) -> str:
        event = AlertEvent(
            at_ns=ns("2020-09-21T11:10:00+00:00"),
            subject="tb-menggala",
            kind=kind,
            rule=kind.value,
            firing=state is IncidentState.FIRING,
            severity=Level.WASPADA,
        )
        notice = Notice("n", 3, labels_of(event, state), event, state)
        return render([notice], language, REGISTRY).subject

    # The product's name in brackets, the level in capitals after it: never "Siaga: … Siaga".
    name = "Pos Duga Air Menggala"
    assert subject(EventKind.LEVEL, "id") == f"[Siaga] WASPADA — {name}: Waspada"
    assert subject(EventKind.RATE, "id") == f"[Siaga] WASPADA — {name}: air naik cepat"
    assert subject(EventKind.NO_DATA, "id") == f"[Siaga] TANPA DATA — {name}: tidak mengirim data"
    assert subject(EventKind.SENSOR_FAULT, "id") == (
        f"[Siaga] GANGGUAN SENSOR — {name}: gangguan sensor"
    )
    assert subject(EventKind.RATE, "en") == f"[Siaga] WASPADA — {name}: rising fast"
    assert subject(EventKind.NO_DATA, "en", IncidentState.RESOLVED) == (
        f"[Siaga] RESOLVED — {name}: reports again"
    )


def test_resolved_and_late_are_said() -> None:
    resolved = level_notice("tb-menggala", Level.NORMAL, state=IncidentState.RESOLVED)
    assert "kembali Normal" in render([resolved], "id", REGISTRY).body
    late = render([level_notice("tb-menggala", Level.SIAGA, late=True)], "en", REGISTRY)
    assert late.subject.startswith("[Siaga] [Late] ")
    assert "[LATE: delayed data from" in late.body


def test_many_stations_in_one_message_and_short_form_counts_the_rest() -> None:
    notices = [
        level_notice(s.id, Level.WASPADA, incident_id=i)
        for i, s in enumerate(REGISTRY.stations())
        if s.regency == "Tulang Bawang"
    ]
    rendered = render(notices, "id", REGISTRY)
    for notice in notices:
        station = REGISTRY.get(notice.event.subject)
        assert station is not None
        assert station.name in rendered.body
    assert fits_one_sms(rendered.short)
    assert "+" in rendered.short


def test_nothing_to_render_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        render([], "id", REGISTRY)


def test_gsm7_counts() -> None:
    assert gsm7_septets("abc") == 3
    assert gsm7_septets("€") == 2
    assert gsm7_septets("日本") is None
    assert fits_one_sms("a" * 160)
    assert not fits_one_sms("a" * 161)


@settings(max_examples=50)
@given(st.text(min_size=1, max_size=60), st.integers(min_value=1, max_value=12))
def test_short_form_always_fits_one_sms(name: str, count: int) -> None:
    stations = [
        s.model_copy(update={"id": f"s{i}", "name": name.replace("\\", "") or "x"})
        for i, s in enumerate([REGISTRY.stations()[0]] * count)
    ]
    registry = StaticRegistry(stations)
    notices = [
        Notice(
            f"n{i}",
            i,
            {},
            AlertEvent(0, f"s{i}", EventKind.LEVEL, "level", True, Level.AWAS),
            IncidentState.FIRING,
        )
        for i in range(count)
    ]
    for language in ("id", "en"):
        assert fits_one_sms(render(notices, language, registry).short)
    assert fits_one_sms(clip(name * 20))


def test_the_shipped_policy_is_valid_and_routes_every_seed_regency() -> None:
    from alerts.notify.policy import load_policy  # noqa: PLC0415
    from alerts.pipeline.route import route  # noqa: PLC0415

    policy = load_policy(Path(__file__).parents[2] / "config" / "alerts.yaml")
    for station in REGISTRY.stations():
        groups = route(
            {"regency": station.regency, "river": station.river or "", "severity": "SIAGA"},
            policy.routes,
            policy.default_groups,
        )
        assert groups != ("pusdalops",), station.id


@given(
    lengths=st.lists(st.integers(min_value=5, max_value=60), min_size=1, max_size=300),
    suffix=st.integers(min_value=0, max_value=20),
    limit=st.integers(min_value=0, max_value=400),
)
def test_the_search_for_the_short_form_finds_what_trying_each_count_would(
    lengths: list[int], suffix: int, limit: int
) -> None:
    # A short form's length: what each shown notice adds, plus "+N more" when some are not.
    def fits(shown: int) -> bool:
        return sum(lengths[:shown]) + (suffix if shown < len(lengths) else 0) <= limit

    linear = next((k for k in range(len(lengths), 0, -1) if fits(k)), 1)
    assert most_that_fit(len(lengths), fits) == linear


def test_a_forecast_warning_says_it_is_a_forecast_with_the_station_name() -> None:
    found = REGISTRY.get("tb-menggala")
    assert found is not None
    event = AlertEvent(
        at_ns=ns("2025-03-12T05:00:00+00:00"),
        subject="tb-menggala",
        kind=EventKind.FORECAST,
        rule="forecast",
        firing=True,
        severity=Level.SIAGA,
        previous=Level.WASPADA,
        value=301.0,
        expected_at_ns=ns("2025-03-12T07:00:00+00:00"),
        expected_range_ns=(ns("2025-03-12T06:00:00+00:00"), ns("2025-03-12T08:30:00+00:00")),
        coverage_pct=80,
        detail="a log line: messages are rendered from the facts, never from it",
    )
    notice = Notice(
        id="f",
        incident_id=9,
        labels=labels_of(event, IncidentState.FIRING, regency=found.regency, river="x"),
        event=event,
        state=IncidentState.FIRING,
    )
    indonesian = render([notice], "id", REGISTRY)
    assert indonesian.subject == (
        "[Siaga] PRAKIRAAN SIAGA — Pos Duga Air Menggala: "
        "diperkirakan mencapai Siaga pukul 14.00 WIB"
    )
    assert (
        "PRAKIRAAN: muka air di Pos Duga Air Menggala diperkirakan mencapai SIAGA sekitar "
        "pukul 14.00 WIB (80 %: 13.00–15.30); kini 301 cm"  # noqa: RUF001 - an en dash
    ) in indonesian.body
    assert "Siapkan evakuasi" in indonesian.body
    assert "Pos Duga Air Menggala prakiraan Siaga pukul 14:00 WIB" in indonesian.short
    english = render([notice], "en", REGISTRY)
    assert english.subject == (
        "[Siaga] FORECAST SIAGA — Pos Duga Air Menggala: expected to reach Siaga around 14:00 WIB"
    )
    assert (
        "FORECAST: the water at Pos Duga Air Menggala is expected to reach SIAGA around "
        "2025-03-12 14:00 WIB (80 %: 13:00–15:30); now 301 cm"  # noqa: RUF001 - an en dash
    ) in english.body
    assert "Prepare evacuation" in english.body
    assert "forecast Siaga by 14:00 WIB" in english.short


@pytest.mark.parametrize(
    ("observed", "indonesian", "english"),
    [
        (
            True,
            "PRAKIRAAN: SIAGA kini teramati di Pos Duga Air Menggala; prakiraan digantikan "
            "pengamatan",
            "FORECAST: SIAGA is now observed at Pos Duga Air Menggala; the observation "
            "supersedes the forecast",
        ),
        (
            False,
            "PRAKIRAAN: Pos Duga Air Menggala tidak lagi diperkirakan mencapai SIAGA",
            "FORECAST: Pos Duga Air Menggala is no longer expected to reach SIAGA",
        ),
    ],
)
def test_a_withdrawn_forecast_says_whether_the_river_came_or_not(
    observed: bool, indonesian: str, english: str
) -> None:
    station = REGISTRY.get("tb-menggala")
    assert station is not None
    at_ns = ns("2025-03-12T05:00:00+00:00")
    thresholds = thresholds_at(station.thresholds, at_ns)
    assert thresholds is not None
    siaga_cm = thresholds.siaga_cm
    event = AlertEvent(
        at_ns=at_ns,
        subject="tb-menggala",
        kind=EventKind.FORECAST,
        rule="forecast",
        firing=False,
        severity=Level.SIAGA,
        previous=Level.SIAGA,
        value=siaga_cm + 5 if observed else siaga_cm - 80,
    )
    assert summarise(event, "id", REGISTRY).startswith(indonesian)
    assert summarise(event, "en", REGISTRY).startswith(english)

"""The residents' page in values: public flags, plain words, stale data, trend, forecast."""

from __future__ import annotations

from alerts.model import AlertEvent, EventKind, Incident, IncidentState
from dashboards.public.config import PublicRegency
from dashboards.public.model import UNKNOWN, ago, build_page, trend_of
from devices.levels import Level, Thresholds
from ingest.storage.base import LatestReading, MetricSpan
from tests.alerting import HOUR_NS, MINUTE_NS, T0, registry, station

NOW = T0 + 10 * HOUR_NS
REGISTRY = registry(
    station("tb-menggala", regency="Tulang Bawang", river="Way Tulang Bawang", interval_s=900),
    station("tb-banjar-agung", regency="Tulang Bawang", river="Way Tulang Bawang"),
    station("tb-hidden", regency="Tulang Bawang"),
    station(
        "gate",
        regency="Tulang Bawang",
        thresholds=[Thresholds(waspada_cm=750, siaga_cm=850, awas_cm=950, scheme="jakarta-gates")],
    ),
    station("jakarta", regency="Jakarta Selatan"),
)
TB = PublicRegency(
    slug="tulang-bawang",
    regency="Tulang Bawang",
    public=True,
    title="Tulang Bawang",
    hide=["tb-hidden"],
)


def reading(station_id: str, minutes_ago: float, value: float) -> LatestReading:
    return LatestReading(station_id, NOW - int(minutes_ago * MINUTE_NS), {"water_level_cm": value})


def upstream(subject: str, source: str, expected_ns: int) -> Incident:
    event = AlertEvent(
        at_ns=NOW - 5 * MINUTE_NS,
        subject=subject,
        kind=EventKind.UPSTREAM,
        rule="upstream",
        firing=True,
        severity=Level.SIAGA,
        source=source,
        expected_at_ns=expected_ns,
    )
    return Incident(
        id=9,
        subject=subject,
        rule="upstream",
        kind=EventKind.UPSTREAM,
        state=IncidentState.FIRING,
        severity=Level.SIAGA,
        opened_ns=NOW - 5 * MINUTE_NS,
        updated_ns=NOW,
        last_event=event,
    )


def test_only_the_public_regency_s_gauges_are_shown() -> None:
    built = build_page(TB, REGISTRY, latest={}, spans={}, incidents=[], now_ns=NOW)
    assert [r.station_id for r in built.rivers] == ["tb-menggala", "tb-banjar-agung", "gate"]
    closed = TB.model_copy(update={"public": False})
    assert build_page(closed, REGISTRY, latest={}, spans={}, incidents=[], now_ns=NOW).rivers == []
    only = TB.model_copy(update={"stations": ["gate"]})
    assert [s.id for s in only.shown(REGISTRY)] == ["gate"]


def test_the_state_in_words_with_the_gate_s_own_label_rising_and_what_to_do() -> None:
    latest = {"tb-menggala": reading("tb-menggala", 10, 310), "gate": reading("gate", 5, 870)}
    spans = {
        "tb-menggala": MetricSpan("tb-menggala", NOW - HOUR_NS, 280, NOW - 10 * MINUTE_NS, 310)
    }
    built = build_page(TB, REGISTRY, latest=latest, spans=spans, incidents=[], now_ns=NOW)
    menggala, banjar, gate = built.rivers
    assert (menggala.word, menggala.level, menggala.stale) == ("Awas", Level.AWAS, False)
    assert menggala.trend == "naik"
    assert round(menggala.trend_cm_h or 0) == 36
    assert menggala.advice.startswith("Segera mengungsi")
    assert menggala.observed == "1 Jan 16:50 WIB"
    assert menggala.observed_ago == "10 menit lalu"
    assert menggala.bar_percent == 310 / (300 / 0.8) * 100
    assert (gate.word, gate.local_label) == ("Siaga", "Siaga 2")
    assert (banjar.word, banjar.stale, banjar.observed) == (UNKNOWN, True, None)
    assert built.worst is Level.AWAS


def test_an_old_reading_is_never_the_state_now() -> None:
    # Menggala reports every 15 min: older than 3 intervals (45 min) is no longer the state now.
    old = {"tb-menggala": reading("tb-menggala", 46, 310)}
    (menggala, *_) = build_page(TB, REGISTRY, latest=old, spans={}, incidents=[], now_ns=NOW).rivers
    assert (menggala.word, menggala.level, menggala.stale) == (UNKNOWN, None, True)
    assert menggala.value_cm == 310  # kept for the "last reading" line, not shown as current
    assert menggala.observed_ago == "46 menit lalu"
    recent = {"tb-menggala": reading("tb-menggala", 44, 310)}
    (fresh, *_) = build_page(TB, REGISTRY, latest=recent, spans={}, incidents=[], now_ns=NOW).rivers
    assert (fresh.word, fresh.stale) == ("Awas", False)
    # A floor: never stale sooner than stale_floor_s, however often a station reports.
    (floored, *_) = build_page(
        TB, REGISTRY, latest=old, spans={}, incidents=[], now_ns=NOW, stale_floor_s=3600
    ).rivers
    assert floored.stale is False


def test_water_on_its_way_is_the_forecast_and_a_warning() -> None:
    expected = NOW + 3 * HOUR_NS
    incidents = [upstream("tb-menggala", "tb-banjar-agung", expected)]
    latest = {"tb-menggala": reading("tb-menggala", 1, 120)}
    built = build_page(TB, REGISTRY, latest=latest, spans={}, incidents=incidents, now_ns=NOW)
    assert built.rivers[0].forecast == (
        "Kiriman air dari tb-banjar-agung (Siaga di hulu) diperkirakan tiba sekitar 20:00 WIB."
    )
    (warning,) = built.warnings
    assert warning.level is Level.SIAGA
    assert "diperkirakan tiba sekitar 20:00 WIB" in warning.text
    assert built.state["warnings"] == [
        {"station": "tb-menggala", "level": "SIAGA", "text": warning.text}
    ]
    elsewhere = [upstream("jakarta", "tb-menggala", expected)]
    assert (
        build_page(TB, REGISTRY, latest={}, spans={}, incidents=elsewhere, now_ns=NOW).warnings
        == []
    )


def test_trend_and_age_words() -> None:
    assert trend_of(None) == (None, None)
    assert trend_of(MetricSpan("x", 0, 100, 2 * MINUTE_NS, 150)) == (None, None)  # too short
    assert trend_of(MetricSpan("x", 0, 100, HOUR_NS, 101))[0] == "tetap"
    assert trend_of(MetricSpan("x", 0, 100, HOUR_NS, 90))[0] == "turun"
    assert [ago(s) for s in (30, 600, 4 * 3600, 3 * 86400)] == [
        "baru saja",
        "10 menit lalu",
        "4 jam lalu",
        "3 hari lalu",
    ]

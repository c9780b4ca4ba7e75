"""What the residents' page says, as plain values: pure, no I/O (tested directly).

For each public gauge: the state in the four words residents know (Normal, Waspada, Siaga,
Awas; the gate's own label beside it where it differs), rising or falling, the expected arrival
of water from upstream when the engine has warned of one, what to do, and the reading's time.
A reading older than the station's stale limit is never shown as the state now: the word is
"Tidak diketahui" and the card says how old the last reading is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from alerts.model import EventKind, Incident, IncidentState
from alerts.notify.localtime import WIB, Zone, clock_time, zone_for
from dashboards.public.config import WATER_LEVEL, PublicRegency
from dashboards.settings import PublicSettings
from devices.levels import Level, label, thresholds_at
from devices.stations import Station, StationRegistry
from ingest.storage.base import LatestReading, MetricSpan

NS = 1_000_000_000
_PUBLIC = PublicSettings.model_fields  # the settings tree: one source of defaults
WORDS = {Level.NORMAL: "Normal", Level.WASPADA: "Waspada", Level.SIAGA: "Siaga", Level.AWAS: "Awas"}
UNKNOWN = "Tidak diketahui"
ADVICE = {
    Level.NORMAL: "Aman. Tetap waspada bila hujan deras di hulu.",
    Level.WASPADA: "Air mulai naik. Pantau kabar dari RT/kelurahan; simpan dokumen dan barang "
    "berharga di tempat tinggi.",
    Level.SIAGA: "Bersiap mengungsi: siapkan tas siaga (dokumen, obat, senter, air minum); "
    "dahulukan lansia, anak dan penyandang disabilitas.",
    Level.AWAS: "Segera mengungsi ke tempat tinggi atau posko pengungsian. Matikan listrik. "
    "Jangan menyeberangi arus.",
}
ADVICE_UNKNOWN = "Data alat ukur tidak diperbarui. Ikuti informasi BPBD dan aparat setempat."
SHORT_ADVICE = {
    Level.WASPADA: "pantau air, amankan barang berharga",
    Level.SIAGA: "bersiap mengungsi",
    Level.AWAS: "segera mengungsi",
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des")


def friendly(ts_ns: int, zone: Zone) -> str:
    """``8 Des 03:59 WIB``: a date residents read at a glance (the year only when needed)."""
    moment = datetime.fromtimestamp(ts_ns / NS, tz=UTC).astimezone(zone.tzinfo)
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment:%H:%M} {zone.abbreviation}"


STEADY_CM_H = 2.0
"""Within this many cm/h either way the water is called steady."""


@dataclass(frozen=True, slots=True)
class RiverState:
    """One gauge as residents see it."""

    station_id: str
    name: str
    river: str
    level: Level | None
    word: str
    local_label: str | None
    value_cm: float | None
    observed: str | None
    observed_ago: str | None
    stale: bool
    trend: str | None
    trend_cm_h: float | None
    thresholds_cm: tuple[float, float, float] | None
    advice: str
    forecast: str | None

    @property
    def css(self) -> str:
        """The card's colour class."""
        return "unknown" if self.level is None else self.level.name.lower()

    @property
    def bar_percent(self) -> float:
        """The water's height on the card's bar, with Awas at 80 % of it."""
        if self.value_cm is None or self.thresholds_cm is None:
            return 0.0
        top = self.thresholds_cm[2] / 0.8
        return max(0.0, min(100.0, 100.0 * self.value_cm / top))

    @property
    def tick_percents(self) -> tuple[float, float, float]:
        """Where Waspada, Siaga and Awas start on the bar."""
        if self.thresholds_cm is None:
            return (0.0, 0.0, 0.0)
        top = self.thresholds_cm[2] / 0.8
        waspada, siaga, awas = (100.0 * t / top for t in self.thresholds_cm)
        return (waspada, siaga, awas)


@dataclass(frozen=True, slots=True)
class Warning:
    """An active public warning."""

    station_id: str
    level: Level
    text: str
    since: str

    @property
    def css(self) -> str:
        """The banner's colour class."""
        return self.level.name.lower()


@dataclass(frozen=True, slots=True)
class PageModel:
    """One regency's page."""

    slug: str
    title: str
    contact: str
    rivers: list[RiverState]
    warnings: list[Warning]
    built: str
    built_iso: str
    newest: str | None
    zone: str
    cap_url: str | None
    state: dict[str, object] = field(default_factory=dict)

    @property
    def worst(self) -> Level | None:
        """The highest level among current readings."""
        levels = [r.level for r in self.rivers if r.level is not None]
        return max(levels) if levels else None


def ago(seconds: float) -> str:
    """``5 menit lalu``, ``3 jam lalu``, ``2 hari lalu``."""
    if seconds < 90:
        return "baru saja"
    if seconds < 5400:
        return f"{round(seconds / 60)} menit lalu"
    if seconds < 36 * 3600:
        return f"{round(seconds / 3600)} jam lalu"
    return f"{round(seconds / 86400)} hari lalu"


def trend_of(span: MetricSpan | None) -> tuple[str | None, float | None]:
    """``naik``/``turun``/``tetap`` and cm/h from the first and last value of a window."""
    if span is None or span.last_ns - span.first_ns < 5 * 60 * NS:
        return None, None
    rate = (span.last - span.first) / ((span.last_ns - span.first_ns) / (3600 * NS))
    if rate > STEADY_CM_H:
        return "naik", rate
    if rate < -STEADY_CM_H:
        return "turun", rate
    return "tetap", rate


def stale_after_s(station: Station, intervals: float, floor_s: float) -> float:
    """How old a reading may be and still be the state now."""
    return max(intervals * station.interval_s, floor_s)


def forecasts(
    incidents: Iterable[Incident], registry: StationRegistry, now_ns: int
) -> dict[str, str]:
    """Per station, the expected arrival of water the engine warned of (upstream incidents)."""
    found: dict[str, tuple[int, str]] = {}
    for incident in incidents:
        event = incident.last_event
        if (
            event is None
            or incident.state is not IncidentState.FIRING
            or event.kind is not EventKind.UPSTREAM
            or event.expected_at_ns is None
            or event.expected_at_ns < now_ns - 3600 * NS
        ):
            continue
        station = registry.get(incident.subject)
        source = registry.get(event.source) if event.source else None
        zone = zone_for(station)
        where = f" dari {source.name}" if source else " dari hulu"
        text = (
            f"Kiriman air{where} ({WORDS[event.severity]} di hulu) diperkirakan tiba "
            f"sekitar {clock_time(event.expected_at_ns, zone)}."
        )
        earlier = found.get(incident.subject)
        if earlier is None or event.expected_at_ns < earlier[0]:
            found[incident.subject] = (event.expected_at_ns, text)
    return {subject: text for subject, (_, text) in found.items()}


def river_state(
    station: Station,
    latest: LatestReading | None,
    span: MetricSpan | None,
    forecast: str | None,
    now_ns: int,
    *,
    stale_intervals: float,
    stale_floor_s: float,
) -> RiverState:
    """One gauge's card."""
    zone = zone_for(station)
    value = None if latest is None else latest.values.get(WATER_LEVEL)
    observed_ns = None if latest is None or value is None else latest.ts_ns
    thresholds = thresholds_at(station.thresholds, observed_ns if observed_ns else now_ns)
    limit_s = stale_after_s(station, stale_intervals, stale_floor_s)
    stale = observed_ns is None or (now_ns - observed_ns) / NS > limit_s
    level = None
    local = None
    if not stale and thresholds is not None and value is not None:
        level = thresholds.level_of(value)
        own = label(level, thresholds.scheme)
        local = own if own != WORDS[level] else None
    trend, rate = (None, None) if stale else trend_of(span)
    return RiverState(
        station_id=station.id,
        name=station.name,
        river=station.river or "",
        level=level,
        word=WORDS[level] if level is not None else UNKNOWN,
        local_label=local,
        value_cm=value,
        observed=None if observed_ns is None else friendly(observed_ns, zone),
        observed_ago=None if observed_ns is None else ago((now_ns - observed_ns) / NS),
        stale=stale,
        trend=trend,
        trend_cm_h=rate,
        thresholds_cm=None
        if thresholds is None
        else (thresholds.waspada_cm, thresholds.siaga_cm, thresholds.awas_cm),
        advice=ADVICE[level] if level is not None else ADVICE_UNKNOWN,
        forecast=forecast,
    )


def warnings_of(
    incidents: Iterable[Incident], shown: Mapping[str, Station], now_ns: int
) -> list[Warning]:
    """Active warnings at the page's stations (level, fast rise, upstream water), worst first."""
    found = []
    for incident in incidents:
        event = incident.last_event
        station = shown.get(incident.subject)
        if (
            station is None
            or event is None
            or incident.state is not IncidentState.FIRING
            or event.kind not in {EventKind.LEVEL, EventKind.RATE, EventKind.UPSTREAM}
            or incident.severity < Level.WASPADA
        ):
            continue
        zone = zone_for(station)
        word = WORDS[incident.severity]
        if event.kind is EventKind.UPSTREAM and event.expected_at_ns:
            text = (
                f"{station.name}: {word}. Kiriman air dari hulu diperkirakan tiba sekitar "
                f"{clock_time(event.expected_at_ns, zone)}."
            )
        elif event.kind is EventKind.RATE:
            text = f"{station.name}: air naik cepat ({word})."
        else:
            text = f"{station.name}: {word}, {SHORT_ADVICE[incident.severity]}."
        found.append(
            Warning(station.id, incident.severity, text, friendly(incident.opened_ns, zone))
        )
    found.sort(key=lambda w: (-int(w.level), w.station_id))
    del now_ns
    return found


def build_page(
    regency: PublicRegency,
    registry: StationRegistry,
    *,
    latest: Mapping[str, LatestReading],
    spans: Mapping[str, MetricSpan],
    incidents: Sequence[Incident],
    now_ns: int,
    stale_intervals: float = _PUBLIC["stale_intervals"].default,
    stale_floor_s: float = _PUBLIC["stale_floor_s"].default,
    cap_url: str | None = None,
) -> PageModel:
    """A regency's page from the newest readings, the trend window and the active incidents."""
    stations = regency.shown(registry)
    shown = {s.id: s for s in stations}
    ahead = forecasts(incidents, registry, now_ns)
    rivers = [
        river_state(
            s,
            latest.get(s.id),
            spans.get(s.id),
            ahead.get(s.id),
            now_ns,
            stale_intervals=stale_intervals,
            stale_floor_s=stale_floor_s,
        )
        for s in stations
    ]
    zone: Zone = zone_for(stations[0]) if stations else WIB
    observed = [latest[s.id].ts_ns for s in stations if s.id in latest]
    newest = max(observed) if observed else None
    warnings = warnings_of(incidents, shown, now_ns)
    state: dict[str, object] = {
        "regency": regency.regency,
        "built": friendly(now_ns, zone),
        "rivers": [
            {
                "station": r.station_id,
                "name": r.name,
                "river": r.river,
                "level": r.level.name if r.level is not None else None,
                "word": r.word,
                "value_cm": r.value_cm,
                "observed": r.observed,
                "stale": r.stale,
                "trend": r.trend,
                "forecast": r.forecast,
            }
            for r in rivers
        ],
        "warnings": [
            {"station": w.station_id, "level": w.level.name, "text": w.text} for w in warnings
        ],
    }
    return PageModel(
        slug=regency.slug,
        title=regency.title,
        contact=regency.contact,
        rivers=rivers,
        warnings=warnings,
        built=friendly(now_ns, zone),
        built_iso=f"{now_ns // NS}",
        newest=None if newest is None else friendly(newest, zone),
        zone=zone.abbreviation,
        cap_url=cap_url,
        state=state,
    )

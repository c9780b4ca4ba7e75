"""Pure conversions from the stores' values to the API's shapes: no I/O, tested directly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from alerts.model import Incident, IncidentState, Transition
from alerts.notify.message import (
    Language,
    advice,
    event_context,
    level_label,
    phrases,
    subject_name,
    summarise,
)
from alerts.pipeline.silence import Silence
from dashboards.api.schemas import (
    AckPublic,
    HealthPublic,
    IncidentPublic,
    LinkPublic,
    MatcherSchema,
    RejectionPublic,
    SilencePublic,
    StationHealthPublic,
    StationPublic,
    ThresholdsPublic,
    TransitionPublic,
    WindowPublic,
)
from devices.health import StationHealth, time_basis
from devices.levels import LABEL_SCHEMES, Level, label, thresholds_at
from devices.stations import Station, StationRegistry
from ingest.batch import StoredRejection
from ingest.storage.base import LatestReading, MetricSpan, WindowStat

NS = 1_000_000_000
WATER_LEVEL = "water_level_cm"
WINDOW_SECONDS = {"1m": 60, "10m": 600, "1h": 3600, "1d": 86400}
# A span shorter than this says too little about a trend.
MIN_TREND_SPAN_NS = 5 * 60 * NS
# Trend windows of back-dated stations start on this grid, so that stations share a query.
TREND_GRID_NS = 5 * 60 * NS


def to_datetime(ts_ns: int) -> datetime:
    """Nanoseconds since the epoch as an aware UTC datetime (microsecond precision)."""
    return datetime.fromtimestamp(ts_ns // 1000 / 1_000_000, tz=UTC)


def to_ns(moment: datetime) -> int:
    """An aware datetime as nanoseconds since the epoch (naive ones are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000


def trend_cm_h(span: MetricSpan | None) -> float | None:
    """Change per hour between the first and last reading of a span (None when too short)."""
    if span is None or span.last_ns - span.first_ns < MIN_TREND_SPAN_NS:
        return None
    return round((span.last - span.first) * 3600 * NS / (span.last_ns - span.first_ns), 2)


def trend_backfill(
    latest: Mapping[str, LatestReading],
    spans: Mapping[str, MetricSpan],
    window_ns: int,
    max_queries: int,
) -> dict[int, list[str]]:
    """Stations whose trend needs a window ending at their own newest reading, by its start.

    A trend over the last ``window_ns`` of the clock says nothing about a station whose newest
    readings are older (a replay, a back-dated backlog, a gauge that reports hourly): its window
    ends at its newest water level instead. Starts fall on a 5-minute grid so that stations
    share a query; at most ``max_queries`` starts (the newest first) keep the cost bounded.
    """
    starts: dict[int, list[str]] = {}
    for station_id, reading in latest.items():
        if WATER_LEVEL not in reading.values:
            continue
        span = spans.get(station_id)
        if span is not None and span.last_ns - span.first_ns >= MIN_TREND_SPAN_NS:
            continue
        start_ns = (reading.ts_ns - window_ns) // TREND_GRID_NS * TREND_GRID_NS
        starts.setdefault(start_ns, []).append(station_id)
    return {start: starts[start] for start in sorted(starts, reverse=True)[:max_queries]}


def health_public(health: StationHealth | None) -> HealthPublic | None:
    """Device health for the API."""
    if health is None:
        return None
    return HealthPublic.model_validate(_health_fields(health))


def _health_fields(health: StationHealth) -> dict[str, object]:
    return {
        "last_seen": to_datetime(health.last_seen_ns) if health.last_seen_ns else None,
        "readings_24h": health.readings_24h,
        "expected_24h": health.expected_24h,
        "completeness_pct": health.completeness_pct,
        "missing_by_seq": health.missing_by_seq,
        "clock_skew_s": health.clock_skew_s,
        "time_basis": time_basis(health.clock_skew_s),
        "battery_v": health.battery_v,
        "battery_pct": health.battery_pct,
        "rssi_dbm": health.rssi_dbm,
        "snr_db": health.snr_db,
    }


def station_health_public(health: StationHealth) -> StationHealthPublic:
    """One station's device health, naming the station."""
    return StationHealthPublic.model_validate(
        {"station": health.station_id, **_health_fields(health)}
    )


def upstream_links(stations: Sequence[Station]) -> dict[str, list[LinkPublic]]:
    """For each station, the stations whose water reaches it and how long that takes."""
    found: dict[str, list[LinkPublic]] = {}
    for station in stations:
        for link in station.downstream:
            found.setdefault(link.station, []).append(
                LinkPublic(station=station.id, travel_min=link.travel_min)
            )
    return found


def is_stale(stale_s: float | None, interval_s: float, stale_after_intervals: float) -> bool:
    """No reading at all, or none for more than the allowed report intervals."""
    return stale_s is None or stale_s > interval_s * stale_after_intervals


def station_public(
    station: Station,
    *,
    latest: LatestReading | None,
    health: StationHealth | None,
    span: MetricSpan | None,
    upstream: Sequence[LinkPublic],
    now_ns: int,
    stale_after_intervals: float,
) -> StationPublic:
    """A station with its newest reading, level in its region's scheme, trend and staleness."""
    value = latest.values.get(WATER_LEVEL) if latest else None
    ts_ns = latest.ts_ns if latest else None
    thresholds = thresholds_at(station.thresholds, ts_ns if ts_ns is not None else now_ns)
    level: Level | None = None
    if thresholds is not None and value is not None:
        level = thresholds.level_of(value)
    stale_s = (now_ns - ts_ns) / NS if ts_ns is not None else None
    return StationPublic(
        id=station.id,
        name=station.name,
        regency=station.regency,
        river=station.river,
        latitude=station.latitude,
        longitude=station.longitude,
        interval_s=station.interval_s,
        level=level.name if level is not None else None,  # type: ignore[arg-type]
        level_label=label(level, thresholds.scheme) if level is not None and thresholds else None,
        value_cm=value,
        ts=to_datetime(ts_ns) if ts_ns is not None else None,
        values=dict(latest.values) if latest else {},
        trend_cm_h=trend_cm_h(span),
        stale_s=stale_s,
        stale=is_stale(stale_s, station.interval_s, stale_after_intervals),
        health=health_public(health),
        thresholds=ThresholdsPublic(
            waspada_cm=thresholds.waspada_cm,
            siaga_cm=thresholds.siaga_cm,
            awas_cm=thresholds.awas_cm,
            scheme=thresholds.scheme,
            inclusive=thresholds.inclusive,
            labels={lv.name: text for lv, text in LABEL_SCHEMES[thresholds.scheme].items()},  # type: ignore[misc]
        )
        if thresholds is not None
        else None,
        downstream=[
            LinkPublic(station=d.station, travel_min=d.travel_min) for d in station.downstream
        ],
        upstream=list(upstream),
    )


def window_public(stat: WindowStat) -> WindowPublic:
    """One window."""
    return WindowPublic(
        ts=to_datetime(stat.start_ns), mean=stat.mean, min=stat.min, max=stat.max, count=stat.count
    )


def raw_public(ts_ns: int, value: float) -> WindowPublic:
    """One raw reading as a window of one."""
    return WindowPublic(ts=to_datetime(ts_ns), mean=value, min=value, max=value, count=1)


def _transition_public(
    transition: Transition, registry: StationRegistry, language: Language
) -> TransitionPublic:
    event = transition.event
    return TransitionPublic(
        previous_state=transition.previous_state,
        state=transition.state,
        at=to_datetime(event.at_ns),
        level=event.severity.name,  # type: ignore[arg-type]
        value=event.value,
        detail=summarise(
            event, language, registry, resolved=transition.state is IncidentState.RESOLVED
        ),
        late=event.late,
    )


def incident_public(
    incident: Incident,
    schemes: Mapping[str, str] | None = None,
    *,
    registry: StationRegistry,
    language: Language = "id",
) -> IncidentPublic:
    """An incident for the API; ``schemes`` maps a station to its label scheme.

    Its summary is rendered from the last event's facts in ``language``, with station names
    from ``registry`` (incidents store facts, not sentences).
    """
    station = incident.labels.get("station", incident.subject)
    scheme = (schemes or {}).get(station)
    event = incident.last_event
    ack = incident.acknowledged
    resolved = incident.state is IncidentState.RESOLVED
    return IncidentPublic(
        id=incident.id,
        subject=incident.subject,
        rule=incident.rule,
        kind=incident.kind,
        state=incident.state,
        level=incident.severity.name,  # type: ignore[arg-type]
        level_label=label(incident.severity, scheme) if scheme else None,
        opened=to_datetime(incident.opened_ns),
        updated=to_datetime(incident.updated_ns),
        resolved=to_datetime(incident.resolved_ns) if incident.resolved_ns is not None else None,
        acknowledged=AckPublic(by=ack.by, at=to_datetime(ack.at_ns), comment=ack.comment)
        if ack
        else None,
        assignee=incident.assignee,
        labels=dict(incident.labels),
        station_name=subject_name(incident.subject, registry),
        detail=summarise(event, language, registry, labels=incident.labels, resolved=resolved)
        if event
        else "",
        value=event.value if event else None,
        expected_at=to_datetime(event.expected_at_ns)
        if event and event.expected_at_ns is not None
        else None,
        transitions=[_transition_public(t, registry, language) for t in incident.transitions],
    )


def ack_view(incident: Incident, registry: StationRegistry, language: Language) -> dict[str, Any]:
    """What the acknowledgement page shows of an incident, in ``language``, with names."""
    event = incident.last_event
    resolved = incident.state is IncidentState.RESOLVED
    view: dict[str, Any] = {
        "id": incident.id,
        "station_name": subject_name(incident.subject, registry),
        "level": incident.severity.name,
        "level_label": incident.severity.name.capitalize(),
        "hazard": False,
        "summary": "",
        "place": "",
        "advice": "",
        "acknowledged_by": incident.acknowledged.by if incident.acknowledged else None,
    }
    if event is not None:
        it = event_context(event, registry, labels=incident.labels, resolved=resolved)
        words = phrases(language)
        view.update(
            level_label=level_label(registry.get(event.subject), incident.severity, event.at_ns),
            hazard=it["hazard"],
            summary=summarise(event, language, registry, labels=incident.labels, resolved=resolved),
            place=str(words.place(it)).strip() if it["is_station"] else "",
            advice=advice(incident.severity, language) if it["hazard"] else "",
        )
    return view


def silence_public(silence: Silence) -> SilencePublic:
    """A silence for the API."""
    return SilencePublic(
        id=silence.id,
        matchers=[MatcherSchema(name=m.name, value=m.value, op=m.op) for m in silence.matchers],
        starts=to_datetime(silence.starts_ns),
        ends=to_datetime(silence.ends_ns),
        created_by=silence.created_by,
        comment=silence.comment,
        regencies=None if silence.regencies is None else sorted(silence.regencies),
    )


def rejection_public(stored: StoredRejection) -> RejectionPublic:
    """A rejection for the API."""
    return RejectionPublic(
        received=to_datetime(stored.received_ns),
        reason=stored.rejection.reason.value,
        station=stored.rejection.station_id,
        detail=stored.rejection.detail,
        topic=stored.topic,
        payload=stored.payload_excerpt,
    )

"""What the three dashboards share: datasources, level colours, thresholds, alert annotations."""

from __future__ import annotations

import math
import re
import typing
from typing import Self

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard as model

from devices.levels import Level, Thresholds, label, thresholds_at
from devices.stations import Station
from ingest.storage.base import TELEMETRY

INFLUX_TYPE = "influxdb"
PROMETHEUS_TYPE = "prometheus"
ALERTS = "alerts"  # measurement of alert events (team contract 1)
DEVICE_HEALTH = "device_health"
REJECTED = "rejected"
WATER_LEVEL = "water_level_cm"
RAIN = "rain_mm"

LEVEL_COLOURS: dict[Level, str] = {
    Level.NORMAL: "green",
    Level.WASPADA: "yellow",
    Level.SIAGA: "orange",
    Level.AWAS: "red",
}
__all__ = ["TELEMETRY"]


def influx_ref(uid: str) -> model.DataSourceRef:
    """The InfluxDB datasource, by its fixed uid."""
    return model.DataSourceRef(type_val=INFLUX_TYPE, uid=uid)


def prometheus_ref(uid: str) -> model.DataSourceRef:
    """The Prometheus datasource, by its fixed uid."""
    return model.DataSourceRef(type_val=PROMETHEUS_TYPE, uid=uid)


def quote_string(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ref_id(station_id: str) -> str:
    """A panel target id for a station (Grafana wants letters, digits and underscores)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", station_id)


def in_force(station: Station, at_ns: int) -> Thresholds | None:
    """The station's threshold version in force at ``at_ns``."""
    return thresholds_at(station.thresholds, at_ns)


def threshold_steps(thresholds: Thresholds) -> dash.ThresholdsConfig:
    """Grafana threshold steps for the four levels.

    Grafana colours a value by the highest step it *reaches* (``>=``). For a station whose
    boundaries are exclusive (``> 200`` starts the next level) each step starts at the next
    float above the boundary, so a value equal to it keeps the lower colour, as the rules do.
    """

    def start(boundary: float) -> float:
        return boundary if thresholds.inclusive else math.nextafter(boundary, math.inf)

    steps = [
        model.Threshold(value=None, color=LEVEL_COLOURS[Level.NORMAL]),
        model.Threshold(value=start(thresholds.waspada_cm), color=LEVEL_COLOURS[Level.WASPADA]),
        model.Threshold(value=start(thresholds.siaga_cm), color=LEVEL_COLOURS[Level.SIAGA]),
        model.Threshold(value=start(thresholds.awas_cm), color=LEVEL_COLOURS[Level.AWAS]),
    ]
    return dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps)


def describe_thresholds(thresholds: Thresholds) -> str:
    """One line naming each level's start in the station's own label scheme."""
    sign = "≥" if thresholds.inclusive else ">"
    parts = [
        f"{label(level, thresholds.scheme)} {sign} {cm:g} cm"
        for level, cm in (
            (Level.WASPADA, thresholds.waspada_cm),
            (Level.SIAGA, thresholds.siaga_cm),
            (Level.AWAS, thresholds.awas_cm),
        )
    ]
    since = "" if thresholds.valid_from is None else f" (since {thresholds.valid_from.isoformat()})"
    return ", ".join(parts) + since


def level_mappings() -> list[model.ValueMapping]:
    """Canonical level names coloured like the thresholds (tables of alert events)."""
    options = {
        level.name: model.ValueMappingResult(text=level.name, color=LEVEL_COLOURS[level])
        for level in Level
    }
    return [model.ValueMap(options=options)]


class InfluxAnnotationQuery(model.AnnotationQuery):
    """An InfluxQL annotation (Grafana's documented InfluxDB annotation fields).

    The SDK's ``AnnotationQuery`` models only the built-in Grafana annotation source, so the
    InfluxDB fields (``query``, ``textColumn``, ``tagsColumn``) are added here. Grafana's
    InfluxDB plugin migrates these top-level fields into its query target when it loads them.
    """

    def __init__(self, query: str, text_column: str, tags_column: str, **kwargs: typing.Any):
        super().__init__(**kwargs)
        self.query = query
        self.text_column = text_column
        self.tags_column = tags_column

    def to_json(self) -> dict[str, object]:
        """The annotation as Grafana stores it."""
        payload = super().to_json()
        payload["query"] = self.query
        payload["textColumn"] = self.text_column
        payload["tagsColumn"] = self.tags_column
        return payload


class AlertAnnotation(cogbuilder.Builder[model.AnnotationQuery]):
    """Alert events (measurement ``alerts``) as annotations, optionally for one station."""

    def __init__(self, datasource: model.DataSourceRef, station_regex: str | None = None):
        where = "$timeFilter"
        if station_regex is not None:
            where = f'"station" =~ /^{station_regex}$/ AND $timeFilter'
        query = (
            f'SELECT "text", "station", "level", "kind", "rule", "firing" FROM "{ALERTS}" '
            f"WHERE {where}"
        )
        self._internal = InfluxAnnotationQuery(
            query=query,
            text_column="text",
            tags_column="station,level,kind",
            name="Siaga alerts",
            datasource=datasource,
            enable=True,
            hide=False,
            icon_color="red",
        )

    def build(self) -> InfluxAnnotationQuery:
        """The annotation."""
        return self._internal

    def name(self, name: str) -> Self:
        """Its name in the dashboard's annotation toggles."""
        self._internal.name = name
        return self

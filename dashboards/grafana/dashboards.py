"""The three dashboards, built from the station registry with Grafana's typed builders.

- Regional overview: a stat per station coloured by its own thresholds, the active alerts, a map.
- Station detail: water level with its threshold bands, rain, battery, RSSI, completeness.
- Ingest health: readings/s, rejections by reason, spool depth, reading lag.

Every InfluxQL query here is run against a real ``influxd`` by the integration tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import geomap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

from dashboards.grafana.common import (
    ALERTS,
    DEVICE_HEALTH,
    LEVEL_COLOURS,
    RAIN,
    REJECTED,
    TELEMETRY,
    WATER_LEVEL,
    AlertAnnotation,
    describe_thresholds,
    in_force,
    influx_ref,
    level_mappings,
    prometheus_ref,
    quote_string,
    ref_id,
    threshold_steps,
)
from dashboards.grafana.influxql import InfluxQL
from devices.levels import Level
from devices.stations import Station

OVERVIEW_UID = "siaga-overview"
STATION_UID = "siaga-station"
INGEST_UID = "siaga-ingest"
TAGS = ["siaga"]
_WIDTH = 24


@dataclass(frozen=True, slots=True)
class Datasources:
    """The fixed uids the dashboards refer to (the provisioning files create them)."""

    influx_uid: str
    prometheus_uid: str

    @property
    def influx(self) -> model.DataSourceRef:
        """The InfluxDB datasource."""
        return influx_ref(self.influx_uid)

    @property
    def prometheus(self) -> model.DataSourceRef:
        """The Prometheus datasource."""
        return prometheus_ref(self.prometheus_uid)


def _base(title: str, uid: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("browser")
        .time("now-24h", "now")
        .refresh("1m")
        .readonly()
    )


def _gauges(stations: Sequence[Station]) -> list[Station]:
    return [s for s in stations if WATER_LEVEL in s.metrics]


# -- regional overview ---------------------------------------------------------------------------


def station_stat(station: Station, ds: Datasources, at_ns: int) -> stat.Panel:
    """The station's current value: water level coloured by its thresholds, or rain."""
    panel = (
        stat.Panel()
        .title(station.name)
        .datasource(ds.influx)
        .height(4)
        .span(6)
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]))
        .no_value("no data")
    )
    where = f'"station" = {quote_string(station.id)} AND $timeFilter'
    if WATER_LEVEL in station.metrics:
        thresholds = in_force(station, at_ns)
        panel = panel.unit("suffix: cm").with_target(
            InfluxQL(
                f'SELECT last("{WATER_LEVEL}") FROM "{TELEMETRY}" WHERE {where} '
                "GROUP BY time($__interval) fill(none)"
            )
            .ref_id("A")
            .datasource(ds.influx)
        )
        if thresholds is not None:
            panel = panel.thresholds(threshold_steps(thresholds)).description(
                f"{station.id}: {describe_thresholds(thresholds)}"
            )
        return panel
    return (
        panel.unit("suffix: mm")
        .description(f"{station.id}: rain in the selected range")
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["sum"]))
        .with_target(
            InfluxQL(
                f'SELECT sum("{RAIN}") FROM "{TELEMETRY}" WHERE {where} '
                "GROUP BY time($__interval) fill(none)"
            )
            .ref_id("A")
            .datasource(ds.influx)
        )
    )


def station_regex(stations: Sequence[Station]) -> str:
    """An InfluxQL regex literal matching exactly these station ids (ids are ``[A-Za-z0-9_.-]``:
    only the dot needs escaping)."""
    ids = "|".join(s.id.replace(".", "\\.") for s in sorted(stations, key=lambda s: s.id))
    return f"/^({ids})$/"


def active_alerts_table(ds: Datasources, stations: Sequence[Station] | None = None) -> table.Panel:
    """Alert events still firing: each (station, rule)'s newest event, kept when it fires (of
    ``stations`` only, when given: a regency's dashboard)."""
    only = "" if stations is None else f' AND "station" =~ {station_regex(stations)}'
    query = (
        'SELECT "station", "rule", "kind", "level", "text", "late", "event_id" FROM ('
        f'SELECT "firing", "text", "late", "event_id", "kind", "level" FROM "{ALERTS}" '
        f'WHERE $timeFilter{only} GROUP BY "station", "rule" ORDER BY time DESC LIMIT 1'
        ') WHERE "firing" = true ORDER BY time DESC'
    )
    return (
        table.Panel()
        .title("Active alerts")
        .description(
            "Per station and rule, the newest alert event in the range when it is still firing "
            "(measurement alerts). Incidents and acknowledgements live in Siaga's web UI."
        )
        .datasource(ds.influx)
        .height(8)
        .span(_WIDTH)
        .mappings(level_mappings())
        .no_value("no active alerts")
        .with_target(InfluxQL(query).ref_id("A").table().datasource(ds.influx))
    )


def station_map(stations: Sequence[Station], ds: Datasources, at_ns: int) -> geomap.Panel:
    """A marker per gauge at its registered position, coloured by its level now.

    InfluxDB holds no coordinates, so each gauge's query adds its own as constants (``x * 0 +
    latitude``); one layer per gauge, filtered to its query, lets each marker use its own
    station's thresholds (a field override per query).
    """
    gauges = _gauges(stations)
    panel = (
        geomap.Panel()
        .title("Stations")
        .description("Marker colour: the level of the latest water level under the thresholds")
        .datasource(ds.influx)
        .height(12)
        .span(_WIDTH)
    )
    if gauges:
        lat = sum(s.latitude for s in gauges) / len(gauges)
        lon = sum(s.longitude for s in gauges) / len(gauges)
        view = geomap.MapViewConfig().id("coords").lat(round(lat)).lon(round(lon)).zoom(5)
        panel = panel.view(view)
    layers: list[cogbuilder.Builder[common.MapLayerOptions]] = []
    for station in gauges:
        target = ref_id(station.id)
        value = f'last("{WATER_LEVEL}")'
        panel = panel.with_target(
            InfluxQL(
                f'SELECT {value} AS "{WATER_LEVEL}", {value} * 0 + {station.latitude!r} AS '
                f'"latitude", {value} * 0 + {station.longitude!r} AS "longitude" '
                f'FROM "{TELEMETRY}" WHERE "station" = {quote_string(station.id)} AND $timeFilter'
            )
            .ref_id(target)
            .table()
            .datasource(ds.influx)
        )
        thresholds = in_force(station, at_ns)
        if thresholds is not None:
            panel = panel.override_by_query(
                target,
                [
                    model.DynamicConfigValue(
                        id_val="thresholds", value=threshold_steps(thresholds).build()
                    )
                ],
            )
        layers.append(
            common_builders.MapLayerOptions()
            .type("markers")
            .name(station.id)
            .location(
                common_builders.FrameGeometrySource()
                .mode(common.FrameGeometrySourceMode.COORDS)
                .latitude("latitude")
                .longitude("longitude")
            )
            .filter_data({"id": "byRefId", "options": target})
            .tooltip(True)
            .config(
                {
                    "showLegend": False,
                    "style": {
                        "color": {"field": WATER_LEVEL, "fixed": LEVEL_COLOURS[Level.NORMAL]},
                        "size": {"fixed": 8, "min": 4, "max": 16},
                        "text": {"fixed": station.name, "mode": "fixed"},
                    },
                }
            )
        )
    return panel.layers(layers)


def overview(
    stations: Sequence[Station],
    ds: Datasources,
    at_ns: int,
    *,
    uid: str = OVERVIEW_UID,
    title: str = "Siaga: regional overview",
    regency: str | None = None,
) -> dash.Dashboard:
    """Regional overview: stat per station, active alerts, the map (of one regency's stations
    when ``regency`` names it: its alerts only)."""
    board = _base(
        title,
        uid,
        "Every station of the registry, coloured by its own thresholds; generated by "
        "`siaga dashboards build`: do not edit by hand."
        if regency is None
        else f"The stations of {regency}, coloured by their own thresholds; generated by "
        "`siaga dashboards push`: do not edit by hand.",
    ).annotation(AlertAnnotation(ds.influx))
    board = board.with_panel(active_alerts_table(ds, None if regency is None else stations))
    board = board.with_panel(station_map(stations, ds, at_ns))
    by_regency: dict[str, list[Station]] = {}
    for station in stations:
        by_regency.setdefault(station.regency, []).append(station)
    for name in sorted(by_regency):
        board = board.with_row(dash.Row(name))
        for station in sorted(by_regency[name], key=lambda s: s.id):
            board = board.with_panel(station_stat(station, ds, at_ns))
    return board


# -- station detail ------------------------------------------------------------------------------


def _series(
    title: str, metric: str, aggregate: str, ds: Datasources, measurement: str = TELEMETRY
) -> timeseries.Panel:
    return (
        timeseries.Panel()
        .title(title)
        .datasource(ds.influx)
        .height(8)
        .span(12)
        .with_target(
            InfluxQL(
                f'SELECT {aggregate}("{metric}") FROM "{measurement}" '
                'WHERE "station" =~ /^$station$/ AND $timeFilter '
                'GROUP BY time($__interval), "station" fill(none)'
            )
            .ref_id("A")
            .alias("$tag_station")
            .datasource(ds.influx)
        )
    )


def water_level_panel(stations: Sequence[Station], ds: Datasources, at_ns: int) -> timeseries.Panel:
    """Water level with the threshold bands of the selected station as coloured regions."""
    panel = (
        _series("Water level", WATER_LEVEL, "mean", ds)
        .span(_WIDTH)
        .height(10)
        .unit("suffix: cm")
        .thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(
                common.GraphTresholdsStyleMode.LINE_AND_AREA
            )
        )
        .description("Bands: the thresholds in force when the dashboards were built")
    )
    for station in _gauges(stations):
        thresholds = in_force(station, at_ns)
        if thresholds is None:
            continue
        # Series are named by station ($tag_station): each gets its own bands.
        panel = panel.override_by_name(
            station.id,
            [
                model.DynamicConfigValue(
                    id_val="thresholds", value=threshold_steps(thresholds).build()
                ),
                model.DynamicConfigValue(
                    id_val="custom.thresholdsStyle", value={"mode": "line+area"}
                ),
            ],
        )
    return panel


def station_detail(
    stations: Sequence[Station],
    ds: Datasources,
    at_ns: int,
    *,
    uid: str = STATION_UID,
    title: str = "Siaga: station detail",
) -> dash.Dashboard:
    """Station detail, with template variables for regency and station (the regencies of
    ``stations``: one, on a regency's own dashboard)."""
    regencies = sorted({s.regency for s in stations}) or ["-"]
    regency = (
        dash.CustomVariable("regency")
        .label("Regency")
        .values(",".join(r.replace(",", "\\,") for r in regencies))
        .current(
            model.VariableOption(text=regencies[0], value=regencies[0])
            if regencies
            else model.VariableOption()
        )
    )
    station = (
        dash.QueryVariable("station")
        .label("Station")
        .datasource(ds.influx)
        .query(
            f'SHOW TAG VALUES FROM "{TELEMETRY}" WITH KEY = "station" '
            'WHERE "regency" =~ /^$regency$/'
        )
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )
    return (
        _base(
            title,
            uid,
            "One station's water level with its threshold bands, rain and device health; "
            "generated by `siaga dashboards build`.",
        )
        .with_variable(regency)
        .with_variable(station)
        .annotation(AlertAnnotation(ds.influx, "$station"))
        .with_panel(water_level_panel(stations, ds, at_ns))
        .with_panel(
            _series("Rain", RAIN, "sum", ds)
            .unit("suffix: mm")
            .draw_style(common.GraphDrawStyle.BARS)
        )
        .with_panel(_series("Battery", "battery_v", "mean", ds).unit("volt"))
        .with_panel(_series("Signal (RSSI)", "rssi_dbm", "mean", ds).unit("dBm"))
        .with_panel(
            _series("Completeness (24 h)", "completeness_pct", "last", ds, DEVICE_HEALTH)
            .unit("percent")
            .min(0)
            .max(100)
        )
    )


# -- ingest health -------------------------------------------------------------------------------


def _prometheus(title: str, ds: Datasources, *queries: tuple[str, str]) -> timeseries.Panel:
    panel = timeseries.Panel().title(title).datasource(ds.prometheus).height(8).span(12)
    for number, (expr, legend) in enumerate(queries):
        panel = panel.with_target(
            prometheus.Dataquery()
            .expr(expr)
            .legend_format(legend)
            .ref_id(chr(ord("A") + number))
            .datasource(ds.prometheus)
        )
    return panel


PROMETHEUS_QUERIES = {
    "readings": "sum(rate(siaga_readings_stored_total[$__rate_interval]))",
    "received": "sum(rate(siaga_messages_received_total[$__rate_interval]))",
    "rejections": "sum by (reason) (rate(siaga_rejections_total[$__rate_interval]))",
    "spool": "sum(siaga_spool_records)",
    "lag_p50": (
        "histogram_quantile(0.5, sum by (le) (rate(siaga_reading_lag_seconds_bucket"
        "[$__rate_interval])))"
    ),
    "lag_p99": (
        "histogram_quantile(0.99, sum by (le) (rate(siaga_reading_lag_seconds_bucket"
        "[$__rate_interval])))"
    ),
}


def ingest_health(ds: Datasources) -> dash.Dashboard:
    """Ingest health from the workers' Prometheus metrics and the ``rejected`` measurement."""
    q = PROMETHEUS_QUERIES
    return (
        _base(
            "Siaga: ingest health",
            INGEST_UID,
            "The ingest workers' own metrics (Prometheus) and the stored rejections (InfluxDB); "
            "generated by `siaga dashboards build`.",
        )
        .annotation(AlertAnnotation(ds.influx))
        .with_panel(
            _prometheus(
                "Readings per second", ds, (q["readings"], "stored"), (q["received"], "messages")
            ).unit("reqps")
        )
        .with_panel(
            _prometheus("Rejections by reason (workers)", ds, (q["rejections"], "{{reason}}"))
        )
        .with_panel(_prometheus("Spool depth (batches)", ds, (q["spool"], "batches")))
        .with_panel(
            _prometheus(
                "Reading lag (reading time → durable)",
                ds,
                (q["lag_p50"], "p50"),
                (q["lag_p99"], "p99"),
            ).unit("s")
        )
        .with_panel(
            timeseries.Panel()
            .title("Rejections by reason (stored)")
            .datasource(ds.influx)
            .height(8)
            .span(12)
            .draw_style(common.GraphDrawStyle.BARS)
            .with_target(
                InfluxQL(
                    f'SELECT count("detail") FROM "{REJECTED}" WHERE $timeFilter '
                    'GROUP BY time($__interval), "reason" fill(none)'
                )
                .ref_id("A")
                .alias("$tag_reason")
                .datasource(ds.influx)
            )
        )
        .with_panel(
            table.Panel()
            .title("Latest rejections")
            .datasource(ds.influx)
            .height(8)
            .span(12)
            .with_target(
                InfluxQL(
                    'SELECT "reason", "station", "topic", "detail", "payload" '
                    f'FROM "{REJECTED}" WHERE $timeFilter ORDER BY time DESC LIMIT 100'
                )
                .ref_id("A")
                .table()
                .datasource(ds.influx)
            )
        )
    )

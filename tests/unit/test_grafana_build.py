"""The Grafana tree: deterministic, registry-driven, and readable back into the SDK's types."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.models.dashboard import Dashboard
from pydantic import SecretStr
from typer.testing import CliRunner

from dashboards.grafana.build import DATASOURCES_FILE, PROVIDERS_FILE, build_tree, dashboard_json
from dashboards.grafana.dashboards import PROMETHEUS_QUERIES
from dashboards.grafana.influxql import InfluxQLQuery, expand_macros
from dashboards.settings import GrafanaSettings
from devices.registry import Registry, load_registry
from ingest.metrics import IngestMetrics
from ingest.settings import InfluxSettings
from siaga.cli import app
from tests.conftest import REPO_ROOT

JAN_2025 = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp()) * 10**9
JUL_2025 = int(datetime(2025, 7, 1, tzinfo=UTC).timestamp()) * 10**9


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


def tree(at_ns: int = JUL_2025, **influx: Any) -> dict[str, bytes]:
    return build_tree(registry().stations(), GrafanaSettings(), InfluxSettings(**influx), at_ns)


def board(uid: str, at_ns: int = JUL_2025) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(tree(at_ns)[f"json/{uid}.json"])
    return data


def panels(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in data["panels"] if p["type"] != "row"]


def test_same_registry_same_bytes() -> None:
    assert tree() == tree()
    assert sorted(tree()) == [
        "json/siaga-ingest.json",
        "json/siaga-overview.json",
        "json/siaga-station.json",
        PROVIDERS_FILE,
        DATASOURCES_FILE,
    ]


@pytest.mark.parametrize("uid", ["siaga-overview", "siaga-station", "siaga-ingest"])
def test_json_loads_back_into_the_sdk_types(uid: str) -> None:
    data = board(uid)
    model = Dashboard.from_json(data)
    again = dashboard_json(model)
    # The SDK's AnnotationQuery models Grafana's built-in annotations only: InfluxDB's fields
    # (query, textColumn, tagsColumn) are ours and are the one thing the round trip drops.
    influx_fields = {"query", "textColumn", "tagsColumn"}
    for annotation in data["annotations"]["list"]:
        assert influx_fields <= set(annotation)
    stripped = json.loads(json.dumps(data))
    for annotation in stripped["annotations"]["list"]:
        for name in influx_fields:
            del annotation[name]
    assert again == stripped
    targets = [t for p in model.panels or [] for t in getattr(p, "targets", None) or []]
    influx = [t for t in targets if isinstance(t, InfluxQLQuery)]
    assert influx, "InfluxQL targets come back as the typed InfluxQLQuery variant"
    assert all(t.query.startswith(("SELECT", "SHOW")) for t in influx)


def test_a_stat_per_station_coloured_by_its_own_thresholds() -> None:
    stats = {p["title"]: p for p in panels(board("siaga-overview")) if p["type"] == "stat"}
    stations = registry().stations()
    assert set(stats) == {s.name for s in stations}
    manggarai = (
        stats["Manggarai water gate"]
        if "Manggarai water gate" in stats
        else next(p for t, p in stats.items() if "Manggarai" in t)
    )
    steps = manggarai["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 750.0, 850.0, 950.0]  # inclusive: ≥ 950
    assert [s["color"] for s in steps] == ["green", "yellow", "orange", "red"]
    katulampa = next(p for t, p in stats.items() if "Katulampa" in t)
    exclusive = [s["value"] for s in katulampa["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    # "> 200" is Siaga 1: a level of exactly 200 keeps the lower colour.
    assert exclusive[3] == math.nextafter(200.0, math.inf)
    assert exclusive[3] > 200.0


def test_threshold_bands_follow_the_version_in_force() -> None:
    def menggala_steps(at_ns: int) -> list[float | None]:
        (water,) = [p for p in panels(board("siaga-station", at_ns)) if p["title"] == "Water level"]
        (override,) = [
            o for o in water["fieldConfig"]["overrides"] if o["matcher"]["options"] == "tb-menggala"
        ]
        (thresholds,) = [p for p in override["properties"] if p["id"] == "thresholds"]
        return [s["value"] for s in thresholds["value"]["steps"]]

    assert menggala_steps(JAN_2025) == [None, 250.0, 350.0, 450.0]
    assert menggala_steps(JUL_2025) == [None, 230.0, 330.0, 430.0]  # valid from 2025-06-01


def test_map_has_a_marker_layer_per_gauge_at_its_position() -> None:
    (geomap,) = [p for p in panels(board("siaga-overview")) if p["type"] == "geomap"]
    gauges = [s for s in registry().stations() if "water_level_cm" in s.metrics]
    layers = geomap["options"]["layers"]
    assert [layer["name"] for layer in layers] == sorted(s.id for s in gauges)
    by_ref = {t["refId"]: t["query"] for t in geomap["targets"]}
    for layer in layers:
        ref = layer["filterData"]["options"]
        assert layer["location"] == {
            "mode": "coords",
            "latitude": "latitude",
            "longitude": "longitude",
        }
        assert ref in by_ref
    overrides = {o["matcher"]["options"] for o in geomap["fieldConfig"]["overrides"]}
    assert overrides == set(by_ref)


def test_station_detail_has_regency_and_station_variables() -> None:
    variables = {v["name"]: v for v in board("siaga-station")["templating"]["list"]}
    assert set(variables) == {"regency", "station"}
    regencies = variables["regency"]["query"].split(",")
    assert regencies == sorted({s.regency for s in registry().stations()})
    assert "$regency" in variables["station"]["query"]
    titles = {p["title"] for p in panels(board("siaga-station"))}
    assert {"Water level", "Rain", "Battery", "Signal (RSSI)", "Completeness (24 h)"} <= titles


def test_every_dashboard_annotates_alert_events() -> None:
    for uid in ("siaga-overview", "siaga-station", "siaga-ingest"):
        (annotation,) = board(uid)["annotations"]["list"]
        assert 'FROM "alerts"' in annotation["query"]
        assert annotation["datasource"] == {"type": "influxdb", "uid": "siaga-influxdb"}


def test_ingest_health_reads_metrics_the_worker_exports() -> None:
    exported = {
        sample.name for family in IngestMetrics().registry.collect() for sample in family.samples
    }
    for expr in PROMETHEUS_QUERIES.values():
        for name in re.findall(r"siaga_\w+", expr):
            assert name in exported, name
    data = board("siaga-ingest")
    assert {t["datasource"]["type"] for p in panels(data) for t in p["targets"]} == {
        "prometheus",
        "influxdb",
    }


def test_datasources_have_fixed_uids_and_no_secret_values() -> None:
    plain = yaml.safe_load(tree()[DATASOURCES_FILE])
    assert [d["uid"] for d in plain["datasources"]] == ["siaga-influxdb", "siaga-prometheus"]
    influx = plain["datasources"][0]
    assert influx["type"] == "influxdb"
    assert influx["jsonData"] == {"version": "InfluxQL", "dbName": "siaga", "httpMode": "GET"}
    assert "secureJsonData" not in influx
    with_password = tree(username="grafana", password=SecretStr("hunter2-secret"))
    assert b"hunter2-secret" not in with_password[DATASOURCES_FILE]
    source = yaml.safe_load(with_password[DATASOURCES_FILE])["datasources"][0]
    assert source["user"] == "grafana"
    assert source["secureJsonData"] == {"password": "${SIAGA_INFLUX__PASSWORD}"}
    with_token = tree(token=SecretStr("tok-secret"))
    assert b"tok-secret" not in with_token[DATASOURCES_FILE]
    source = yaml.safe_load(with_token[DATASOURCES_FILE])["datasources"][0]
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"] == {"httpHeaderValue1": "Token ${SIAGA_INFLUX__TOKEN}"}
    providers = yaml.safe_load(tree()[PROVIDERS_FILE])["providers"]
    assert providers[0]["folderUid"] == "siaga"
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards/siaga"


def test_macros_expand_as_grafana_does() -> None:
    query = (
        'SELECT mean("x") FROM "t" WHERE "station" =~ /^$station$/ AND "r" = \'${regency}\' '
        "AND $timeFilter GROUP BY time($__interval) -- $__interval_ms [[station]]"
    )
    assert expand_macros(
        query,
        from_ms=1000,
        to_ms=2000,
        interval_s=60,
        variables={"station": "a.b/c", "regency": "Way Kanan"},
    ) == (
        'SELECT mean("x") FROM "t" WHERE "station" =~ /^a\\.b\\/c$/ AND "r" = \'Way Kanan\' '
        "AND time >= 1000ms and time <= 2000ms GROUP BY time(60s) -- 60000 a.b/c"
    )
    assert expand_macros("alias $tag_station", from_ms=0, to_ms=0, interval_s=1) == (
        "alias $tag_station"
    )
    with pytest.raises(KeyError):
        expand_macros("$station", from_ms=0, to_ms=0, interval_s=1)


def test_cli_build_writes_the_same_tree(tmp_path: Path) -> None:
    runner = CliRunner()
    args = [
        "dashboards",
        "build",
        "--at",
        "2025-07-01",
        "--config",
        str(REPO_ROOT / "config/siaga.yaml"),
    ]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert first.exit_code == second.exit_code == 0, first.output
    files = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    assert [str(f) for f in files] == sorted(tree())
    for relative in files:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()
    assert (tmp_path / "a" / "json/siaga-overview.json").read_bytes() == tree()[
        "json/siaga-overview.json"
    ]


@pytest.mark.parametrize("uid", ["siaga-overview", "siaga-station", "siaga-ingest"])
def test_panel_ids_are_unique(uid: str) -> None:
    ids = [p["id"] for p in board(uid)["panels"]]
    assert len(set(ids)) == len(ids)
    assert ids == list(range(1, len(ids) + 1))

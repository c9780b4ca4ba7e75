"""The provisioning tree Grafana mounts: datasources, a dashboard provider, dashboard JSON.

:func:`build_tree` is pure: the same registry, settings and moment give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.grafana.common import WATER_LEVEL
from dashboards.grafana.dashboards import Datasources, ingest_health, overview, station_detail
from dashboards.grafana.regions import RegencyFolder, national_index, regency_folders
from dashboards.settings import GrafanaSettings
from devices.stations import Station
from ingest.settings import InfluxSettings

DATASOURCES_FILE = "provisioning/datasources/siaga.yaml"
PROVIDERS_FILE = "provisioning/dashboards/siaga.yaml"


def datasources(grafana: GrafanaSettings) -> Datasources:
    """The fixed datasource uids the dashboards refer to."""
    return Datasources(grafana.influx_datasource_uid, grafana.prometheus_datasource_uid)


def dashboards(
    stations: Sequence[Station],
    grafana: GrafanaSettings,
    at_ns: int,
    provinces: Mapping[str, str] | None = None,
) -> list[Dashboard]:
    """The deployment's three dashboards, threshold bands from the versions in force at
    ``at_ns``. Past ``grafana.overview_max_stations`` gauges the overview is the national
    index (alerts, and a link to each regency's own overview, by province)."""
    ds = datasources(grafana)
    ordered = sorted(stations, key=lambda s: s.id)
    gauges = sum(1 for s in ordered if WATER_LEVEL in s.metrics)
    boards = [
        national_index(ordered, provinces or {}, ds).build()
        if gauges > grafana.overview_max_stations
        else overview(ordered, ds, at_ns).build(),
        station_detail(ordered, ds, at_ns).build(),
        ingest_health(ds).build(),
    ]
    for board in boards:
        _number_panels(board)
    return boards


def regencies(
    stations: Sequence[Station], provinces: Mapping[str, str], grafana: GrafanaSettings, at_ns: int
) -> list[RegencyFolder]:
    """A folder per regency with its overview and station detail (pushed, with permissions)."""
    folders = regency_folders(stations, provinces, datasources(grafana), at_ns)
    for folder in folders:
        for board in folder.dashboards:
            _number_panels(board)
    return folders


def _number_panels(board: Dashboard) -> None:
    """Give every panel and row a unique id, in layout order (links and the editor use them)."""
    number = 0
    for panel in board.panels or []:
        number += 1
        panel.id_val = number
        for inner in getattr(panel, "panels", None) or []:
            number += 1
            inner.id_val = number


def dashboard_json(board: Dashboard) -> dict[str, Any]:
    """A dashboard as plain JSON data."""
    data: dict[str, Any] = json.loads(json.dumps(board, cls=JSONEncoder))
    return data


def _json_bytes(data: object) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _yaml_bytes(header: str, data: object) -> bytes:
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return (header + body).encode()


def datasources_document(grafana: GrafanaSettings, influx: InfluxSettings) -> dict[str, Any]:
    """Grafana's datasource provisioning: InfluxDB (InfluxQL, v1 API) and Prometheus.

    Secrets are never written: Grafana expands ``${VAR}`` from its own environment when it
    reads the file, so the password or token stays in the environment of Grafana's process.
    """
    influx_source: dict[str, Any] = {
        "name": "Siaga InfluxDB",
        "uid": grafana.influx_datasource_uid,
        "type": "influxdb",
        "access": "proxy",
        "url": grafana.influx_url or influx.url,
        "jsonData": {"version": "InfluxQL", "dbName": influx.database, "httpMode": "GET"},
        "editable": False,
    }
    if influx.username is not None:
        influx_source["user"] = influx.username
        influx_source["secureJsonData"] = {"password": "${" + grafana.password_env + "}"}
    if influx.token is not None:
        # InfluxDB 2.x/3.x answer the v1 API with a token in the Authorization header.
        influx_source["jsonData"]["httpHeaderName1"] = "Authorization"
        influx_source["secureJsonData"] = {"httpHeaderValue1": "Token ${" + grafana.token_env + "}"}
    prometheus_source = {
        "name": "Siaga Prometheus",
        "uid": grafana.prometheus_datasource_uid,
        "type": "prometheus",
        "access": "proxy",
        "url": grafana.prometheus_url,
        "jsonData": {"httpMethod": "POST", "timeInterval": "15s"},
        "editable": False,
    }
    return {"apiVersion": 1, "datasources": [influx_source, prometheus_source]}


def providers_document(grafana: GrafanaSettings) -> dict[str, Any]:
    """Grafana's dashboard provider: the ``json/`` folder, mounted at ``dashboards_path``."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "siaga",
                "orgId": 1,
                "folder": grafana.folder_title,
                "folderUid": grafana.folder_uid,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": grafana.dashboards_path},
            }
        ],
    }


_HEADER = "# Generated by `siaga dashboards build` from the station registry: do not edit.\n"


def build_tree(
    stations: Sequence[Station],
    grafana: GrafanaSettings,
    influx: InfluxSettings,
    at_ns: int,
    provinces: Mapping[str, str] | None = None,
) -> dict[str, bytes]:
    """Every file of the provisioning tree, by relative path (the deployment's folder; the
    regencies' folders need permissions, which only ``siaga dashboards push`` sets)."""
    tree = {
        DATASOURCES_FILE: _yaml_bytes(_HEADER, datasources_document(grafana, influx)),
        PROVIDERS_FILE: _yaml_bytes(_HEADER, providers_document(grafana)),
    }
    for board in dashboards(stations, grafana, at_ns, provinces):
        tree[f"json/{board.uid}.json"] = _json_bytes(dashboard_json(board))
    return tree


def write_tree(tree: dict[str, bytes], out: Path) -> list[Path]:
    """Write the files under ``out``, replacing what a previous build wrote."""
    written = []
    for relative, content in sorted(tree.items()):
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written

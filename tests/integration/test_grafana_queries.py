"""Every InfluxQL query of every generated panel runs against a real influxd and fits its panel.

InfluxDB is seeded by a real ingest run: the quiet-day scenario is published through mosquitto
and stored by `siaga ingest`; alert events are written by ``InfluxStorage.write_alerts``
(team contract 1, measurement ``alerts``), as the alert engine stores them. Grafana's macros
are expanded as its InfluxQL datasource does.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from dashboards.grafana.build import build_tree, dashboard_json, dashboards, regencies
from dashboards.grafana.influxql import expand_macros
from dashboards.settings import GrafanaSettings
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme
from ingest.settings import InfluxSettings
from ingest.storage.base import AlertRecord
from ingest.storage.influx import InfluxStorage
from ops.servers import InfluxServer, MosquittoServer
from simulators.runner import MqttPublisher, RunReport, parse_broker_url, prepare, run_plan
from simulators.scenario import load_scenario
from tests.conftest import REPO_ROOT
from tests.helpers import influx_count, influx_query, wait_for
from tests.integration.drivers import WorkerProcess

pytestmark = pytest.mark.integration

DATABASE = "t_grafana_queries"
INTERVAL_S = 300
NOW_NS = time.time_ns()
MIN_NS = 60_000_000_000


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


@dataclass(frozen=True)
class Query:
    """One InfluxQL query found in the generated JSON, and what its panel expects."""

    dashboard: str
    where: str  # panel title, "annotation" or "variable"
    ref_id: str
    text: str
    result_format: str
    extra: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.dashboard}:{self.where}:{self.ref_id}"


def _panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def generated_queries() -> list[Query]:
    found = []
    for board in (
        dashboard_json(b) for b in dashboards(registry().stations(), GrafanaSettings(), NOW_NS)
    ):
        uid = board["uid"]
        for panel in _panels(board):
            for target in panel.get("targets", []):
                if target.get("datasource", {}).get("type") == "influxdb":
                    found.append(
                        Query(
                            uid,
                            panel["title"],
                            target["refId"],
                            target["query"],
                            target["resultFormat"],
                            {"panel": panel},
                        )
                    )
        for annotation in board["annotations"]["list"]:
            if annotation["datasource"]["type"] == "influxdb":
                found.append(
                    Query(
                        uid,
                        "annotation",
                        annotation["name"],
                        annotation["query"],
                        "table",
                        {"annotation": annotation},
                    )
                )
        for variable in board.get("templating", {}).get("list", []):
            if variable["type"] == "query":
                found.append(
                    Query(uid, "variable", variable["name"], variable["query"], "table", {})
                )
    return found


QUERIES = generated_queries()


def expected_columns(statement: str) -> list[str]:
    """The columns InfluxDB names for a SELECT list: aliases, function names, or fields."""
    select = re.match(r"SELECT (.*?) FROM ", statement, re.DOTALL)
    assert select is not None, statement
    names = ["time"]
    for item in re.split(r",\s*(?![^()]*\))", select.group(1)):
        alias = re.search(r'\bAS "([^"]+)"\s*$', item)
        function = re.match(r'\s*(\w+)\("', item)
        field = re.match(r'\s*"([^"]+)"\s*$', item)
        if alias:
            names.append(alias.group(1))
        elif function:
            names.append(function.group(1))
        else:
            assert field is not None, item
            names.append(field.group(1))
    return names


def alert(station: str, level: str, firing: bool, ts_ns: int, event_id: str) -> AlertRecord:
    text = f"{station} {'reached' if firing else 'left'} {level}"
    return AlertRecord(ts_ns, station, "level", "level", level, firing, False, text, event_id)


async def write_alerts(url: str, records: list[AlertRecord]) -> None:
    """Through the storage's own writer (contract 1), as the alert engine stores them."""
    async with InfluxStorage(
        InfluxSettings(url=url, database=DATABASE), lambda s: {"station": s}
    ) as storage:
        await storage.write_alerts(records)


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
) -> RunReport:
    """InfluxDB after a real ingest run of quiet-day, plus alert events (contract 1)."""
    scenario = load_scenario("quiet-day", REPO_ROOT / "config/scenarios")
    speed = scenario.duration_s / 4.0
    with WorkerProcess(
        tmp_path_factory.mktemp("grafana-worker"),
        broker_session.url,
        influx_session.url,
        DATABASE,
        client_id="w-grafana",
        topic_prefix="pgrafana",
        shared_group="ggrafana",
        extra_env={"SIAGA_HEALTH__ENABLED": "true", "SIAGA_HEALTH__INTERVAL_S": "0.5"},
    ) as worker:
        plan = prepare(scenario, registry(), speed=speed, topics=TopicScheme("pgrafana"))
        report = run_plan(plan, MqttPublisher(parse_broker_url(broker_session.url)), speed=speed)
        wait_for(
            lambda: worker.metric("siaga_messages_acknowledged_total") == report.messages_sent,
            60,
            "every message acknowledged",
        )
        wait_for(
            lambda: influx_count(influx_session.url, DATABASE, "battery_v") >= report.valid_total,
            30,
            "readings stored",
        )
        wait_for(
            lambda: bool(
                influx_query(influx_session.url, DATABASE, "SELECT count(*) FROM device_health")
            ),
            30,
            "device health stored",
        )
    records = [
        alert("tb-menggala", "WASPADA", True, NOW_NS - 90 * MIN_NS, "e1"),
        alert("tb-menggala", "WASPADA", False, NOW_NS - 30 * MIN_NS, "e2"),
        alert("ciliwung-depok", "SIAGA", True, NOW_NS - 20 * MIN_NS, "e3"),
    ]
    asyncio.run(write_alerts(influx_session.url, records))
    return report


def run(influx: InfluxServer, query: Query, **variables: str) -> list[dict[str, Any]]:
    statement = expand_macros(
        query.text,
        from_ms=(NOW_NS - 3 * 86400 * 10**9) // 10**6,
        to_ms=(NOW_NS + 3600 * 10**9) // 10**6,
        interval_s=INTERVAL_S,
        variables=variables,
    )
    assert not re.search(r"\$(?!tag_)[\w{]", statement), statement
    return influx_query(influx.url, DATABASE, statement)


def test_every_panel_is_covered() -> None:
    kinds = {(q.dashboard, q.where) for q in QUERIES}
    stations = registry().stations()
    overview_stats = [
        q
        for q in QUERIES
        if q.dashboard == "siaga-overview" and q.where in {s.name for s in stations}
    ]
    assert len(overview_stats) == len(stations)
    assert ("siaga-overview", "Active alerts") in kinds
    assert ("siaga-station", "variable") in kinds
    assert sum(1 for q in QUERIES if q.where == "annotation") == 3


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.id)
def test_query_runs_and_returns_the_columns_its_panel_expects(
    query: Query, seeded: RunReport, influx_session: InfluxServer
) -> None:
    if query.where == "variable":
        series = run(influx_session, query, regency="Tulang Bawang")
        assert series
        assert series[0]["columns"] == ["key", "value"]
        values = {row[1] for row in series[0]["values"]}
        tulang_bawang = {s.id for s in registry().stations() if s.regency == "Tulang Bawang"}
        assert values == tulang_bawang
        return
    # A station-detail query shows the selected station: one gauge, one rain station.
    candidates = ["tb-menggala", "tb-menggala-rain"] if "$station" in query.text else [""]
    answers = [run(influx_session, query, station=s, regency="Tulang Bawang") for s in candidates]
    series = next((s for s in answers if s), [])
    assert series, f"no rows for {query.id}: {query.text}"
    columns = expected_columns(query.text)
    for entry in series:
        assert entry["columns"] == columns
        assert entry["values"]
    panel = query.extra.get("panel", {})
    if panel.get("type") == "geomap":
        assert {"latitude", "longitude", "water_level_cm"} <= set(columns)
        station = next(s for s in registry().stations() if s.id.replace("-", "_") == query.ref_id)
        row = dict(zip(columns, series[0]["values"][0], strict=True))
        assert row["latitude"] == pytest.approx(station.latitude)
        assert row["longitude"] == pytest.approx(station.longitude)
    if query.extra.get("annotation"):
        annotation = query.extra["annotation"]
        assert annotation["textColumn"] in columns
        assert set(annotation["tagsColumn"].split(",")) <= set(columns)
    if "$tag_" in (panel_alias := _alias(panel, query.ref_id)):
        tag = panel_alias.removeprefix("$tag_")
        assert all(tag in entry["tags"] for entry in series)


def _alias(panel: dict[str, Any], ref_id: str) -> str:
    for target in panel.get("targets", []):
        if target["refId"] == ref_id:
            return str(target.get("alias") or "")
    return ""


def test_active_alerts_are_the_latest_firing_event_per_station_and_rule(
    seeded: RunReport, influx_session: InfluxServer
) -> None:
    (query,) = [q for q in QUERIES if q.where == "Active alerts"]
    series = run(influx_session, query)
    rows = [dict(zip(s["columns"], row, strict=True)) for s in series for row in s["values"]]
    # tb-menggala fired and was resolved; ciliwung-depok still fires.
    assert [(r["station"], r["level"], r["event_id"]) for r in rows] == [
        ("ciliwung-depok", "SIAGA", "e3")
    ]


def test_overview_stat_shows_the_stored_latest_level(
    seeded: RunReport, influx_session: InfluxServer
) -> None:
    station = registry().get("ciliwung-manggarai")
    assert station is not None
    (query,) = [q for q in QUERIES if q.dashboard == "siaga-overview" and q.where == station.name]
    series = run(influx_session, query)
    last_value = series[0]["values"][-1][1]
    newest = influx_query(
        influx_session.url,
        DATABASE,
        "SELECT last(water_level_cm) FROM telemetry WHERE station = 'ciliwung-manggarai'",
    )
    assert last_value == newest[0]["values"][0][1]


def test_the_build_is_the_one_these_queries_came_from(tmp_path: Path) -> None:
    tree = build_tree(registry().stations(), GrafanaSettings(), InfluxSettings(), NOW_NS)
    for query in QUERIES:
        if query.where not in {"annotation", "variable"}:
            assert query.text.encode() in b"".join(tree.values()).replace(b'\\"', b'"')


def test_a_regencys_folder_shows_its_own_alerts_only(
    seeded: RunReport, influx_session: InfluxServer
) -> None:
    folders = {
        f.regency: f
        for f in regencies(registry().stations(), registry().provinces(), GrafanaSettings(), NOW_NS)
    }

    def active(regency: str) -> list[str]:
        board = dashboard_json(folders[regency].dashboards[0])
        (panel,) = [p for p in _panels(board) if p["title"] == "Active alerts"]
        (target,) = panel["targets"]
        query = Query(board["uid"], "Active alerts", "A", target["query"], "table", {})
        series = run(influx_session, query)
        return [
            dict(zip(s["columns"], r, strict=True))["station"] for s in series for r in s["values"]
        ]

    # ciliwung-depok still fires: Kota Depok's folder shows it, Kota Bogor's does not.
    assert active("Kota Depok") == ["ciliwung-depok"]
    assert active("Kota Bogor") == []
    assert active("Tulang Bawang") == []

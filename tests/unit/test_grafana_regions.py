"""Grafana per regency: a folder each with its own dashboards; the national overview at scale
is an index of the regencies, not one panel and one query per station."""

from __future__ import annotations

import json
from typing import Any

from benchmarks.api import fleet
from dashboards.grafana.build import dashboard_json, dashboards, regencies
from dashboards.grafana.regions import UID_MAX, regency_uid
from dashboards.settings import GrafanaSettings
from devices.stations import load_stations
from tests.conftest import STATIONS_FILE

AT_NS = 1_780_000_000 * 1_000_000_000


def queries(board: dict[str, Any]) -> list[str]:
    found = []
    for panel in board.get("panels", []):
        for inner in [panel, *panel.get("panels", [])]:
            found += [t["query"] for t in inner.get("targets", []) if "query" in t]
    return found


def test_uids_are_short_stable_and_distinct() -> None:
    long = "Kabupaten Kepulauan Siau Tagulandang Biaro"
    assert len(regency_uid("ov", long)) <= UID_MAX
    assert regency_uid("ov", long) == regency_uid("ov", long)
    # Names that make the same slug still get their own uids.
    assert regency_uid("f", "Kota Bogor") != regency_uid("f", "Kota-Bogor")


def test_each_regency_folder_holds_its_stations_and_alerts_only() -> None:
    registry = load_stations(STATIONS_FILE)
    folders = regencies(registry.stations(), registry.provinces(), GrafanaSettings(), AT_NS)
    assert [f.regency for f in folders] == sorted({s.regency for s in registry.stations()})
    uids = [f.uid for f in folders] + [
        dashboard_json(b)["uid"] for f in folders for b in f.dashboards
    ]
    assert len(set(uids)) == len(uids)
    assert all(len(uid) <= UID_MAX for uid in uids)
    (jember,) = [f for f in folders if f.regency == "Jember"]
    assert (jember.title, jember.team, jember.province) == (
        "Siaga · Jember",
        "Siaga Jember",
        "Jawa Timur",
    )
    text = json.dumps([dashboard_json(b) for b in jember.dashboards])
    others = [s for s in registry.stations() if s.regency != "Jember"]
    assert not [s.id for s in others if f"'{s.id}'" in text or f"{s.id}|" in text]
    overview = dashboard_json(jember.dashboards[0])
    alerts = [q for q in queries(overview) if '"alerts"' in q]
    assert alerts
    assert all('"station" =~ /^(jr-arjasa-rain|jr-bedadung-kota)$/' in q for q in alerts)
    detail = dashboard_json(jember.dashboards[1])
    (regency_variable,) = [v for v in detail["templating"]["list"] if v["name"] == "regency"]
    assert regency_variable["query"] == "Jember"


def test_the_national_overview_is_split_past_its_limit() -> None:
    registry = fleet(1000)
    small = GrafanaSettings(overview_max_stations=5000)
    split = GrafanaSettings()
    whole = dashboard_json(dashboards(registry.stations(), small, AT_NS)[0])
    index = dashboard_json(dashboards(registry.stations(), split, AT_NS, registry.provinces())[0])
    assert whole["uid"] == index["uid"] == "siaga-overview"
    assert len(queries(whole)) >= 2000
    assert len(queries(index)) == 1  # the active alerts
    (links,) = [p for p in index["panels"] if p["type"] == "text"]
    assert links["options"]["content"].count("](/d/siaga-ov-") == 10
    assert "**Province 000**" in links["options"]["content"]
    whole_bytes = len(json.dumps(whole).encode())
    index_bytes = len(json.dumps(index).encode())
    assert index_bytes * 100 < whole_bytes
    print(f"national overview of 1,000 stations: {whole_bytes:,} B -> {index_bytes:,} B")

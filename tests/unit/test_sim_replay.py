"""Replaying a recorded CSV: parsing, grouping, time shifting, senders."""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

import pytest
from rich.console import Console

from devices.formats.native import decode_native
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme
from simulators.display import render_report
from simulators.replay import (
    ReplayError,
    parse_replay_csv,
    plan_replay,
    replay_sender,
    run_replay,
)
from simulators.runner import MemoryPublisher, RunError
from tests.conftest import REPO_ROOT

NOW_NS = 1_795_000_000 * 10**9  # 2026-11-18T11:06:40Z
RECORDED = """timestamp,station,metric,value,note
2026-11-18T08:00:00+07:00,tb-menggala,water_level_cm,182.4,
2026-11-18T08:00:00+07:00,tb-menggala,battery_v,12.7,solar
1794950000,tb-banjar-agung,water_level_cm,150,epoch seconds
2026-11-18T01:15:00Z,tb-menggala,water_level_cm,183.0,
1794900000000,tb-menggala-rain,rain_mm,0.4,epoch milliseconds
"""


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


def test_rows_are_grouped_per_station_and_time_in_time_order() -> None:
    messages = parse_replay_csv(RECORDED).messages
    assert [(m.station, m.values) for m in messages] == [
        ("tb-menggala-rain", {"rain_mm": 0.4}),
        ("tb-banjar-agung", {"water_level_cm": 150.0}),
        ("tb-menggala", {"water_level_cm": 182.4, "battery_v": 12.7}),
        ("tb-menggala", {"water_level_cm": 183.0}),
    ]
    assert messages[0].ts_ns == 1_794_900_000 * 10**9
    assert messages[2].ts_ns == 1_794_963_600 * 10**9  # 2026-11-18T01:00:00Z


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("time,station,metric,value\n", "missing timestamp"),
        ("timestamp,station,metric,value\n", "no rows"),
        ("timestamp,station,metric,value\nyesterday,s,m,1\n", "line 2: ts 'yesterday'"),
        ("timestamp,station,metric,value\n1795000000,s,m,high\n", "line 2: value 'high'"),
        (
            "timestamp,station,metric,value\n1795000000,s,m,inf\n",
            "line 2: value 'inf' is not a finite number",
        ),
        ("timestamp,station,metric,value\n1795000000,s,m,NaN\n", "no rows"),  # only a gap
        ("timestamp,station,metric,value\n1795000000,,m,1\n", "line 2: station and metric"),
        (
            "timestamp,station,metric,value\n1795000000,s,m,1\n1795000000000,s,m,2\n",
            "line 3: s m at this time is already on line 2",
        ),
    ],
)
def test_bad_files_name_the_line(text: str, problem: str) -> None:
    with pytest.raises(ReplayError, match=problem.replace("(", r"\(")):
        parse_replay_csv(text, "f.csv")


def test_shifted_to_now_the_replay_ends_now_at_any_speed() -> None:
    messages = parse_replay_csv(RECORDED).messages
    span_s = (messages[-1].ts_ns - messages[0].ts_ns) / 1e9
    start_ns, outgoing = plan_replay(messages, speed=60, now_ns=NOW_NS, shift_to_now=True)
    assert [o.at_s for o in outgoing] == [(m.ts_ns - messages[0].ts_ns) / 1e9 for m in messages]
    stamps = [json.loads(o.message.payload)["ts"] * 10**6 for o in outgoing]
    assert stamps[0] == start_ns
    assert stamps[-1] - stamps[0] == pytest.approx(span_s * 1e9, abs=1e6)
    wall_end_ns = NOW_NS + span_s / 60 * 1e9
    assert stamps[-1] <= wall_end_ns + 1e6
    assert {ts for o in outgoing for _, ts in o.message.stored} == set(stamps)


def test_unshifted_old_recordings_are_refused() -> None:
    old = (
        "timestamp,station,metric,value\n"
        "2020-09-21T17:49:00+07:00,ciliwung-katulampa,water_level_cm,40\n"
    )
    messages = parse_replay_csv(old).messages
    with pytest.raises(RunError, match="older than the ingest side keeps"):
        plan_replay(messages, speed=1, now_ns=NOW_NS)
    _, outgoing = plan_replay(messages, speed=1, now_ns=NOW_NS, shift_to_now=True)
    assert json.loads(outgoing[0].message.payload) == {"ts": NOW_NS // 10**6, "water_level_cm": 40}


def test_senders_come_from_the_registry() -> None:
    topics = TopicScheme()
    assert replay_sender("tb-menggala", topics, registry()).account == "gauge-tb-menggala"
    assert replay_sender("anywhere", topics, None).account is None
    with pytest.raises(ReplayError, match="speaks senml"):
        replay_sender("jr-bedadung-kota", topics, registry())
    with pytest.raises(ReplayError, match="not in the registry"):
        replay_sender("atlantis", topics, registry())


def test_a_replay_publishes_native_messages_and_reports_them(tmp_path: Path) -> None:
    path = tmp_path / "recorded.csv"
    path.write_text(RECORDED)
    publisher = MemoryPublisher()
    report = run_replay(
        path,
        speed=math.inf,
        shift_to_now=True,
        registry=registry(),
        publisher=publisher,
        now_ns=NOW_NS,
    )
    assert report.messages_sent == 4 == len(publisher.messages)
    decoded = set()
    for account, topic, payload in publisher.messages:
        station = topic.split("/")[1]
        assert account == f"gauge-{station}" or account == "rain-tb-menggala"
        decoded |= {(r.station_id, r.ts_ns) for r in decode_native(payload, station, 10).readings}
    assert decoded == report.valid_pairs()
    assert report.valid_counts() == {"tb-menggala-rain": 1, "tb-menggala": 2, "tb-banjar-agung": 1}
    assert report.skipped_rows == {"gaps": 0, "duplicates": 0}


def test_gaps_and_repeated_rows_are_skipped_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "recorded.csv"
    lines = RECORDED.splitlines()
    path.write_text("\n".join([*lines, lines[1], "1795000000,tb-menggala,water_level_cm,NaN", ""]))
    publisher = MemoryPublisher()
    report = run_replay(
        path, speed=math.inf, shift_to_now=True, registry=registry(), publisher=publisher
    )
    assert report.messages_sent == 4
    assert report.skipped_rows == {"gaps": 1, "duplicates": 1}
    console = Console(width=200, record=True)
    console.print(render_report(report))
    assert "rows of the file not sent: 1 duplicates, 1 gaps" in console.export_text()


def test_unshifted_recent_recordings_keep_their_times() -> None:
    messages = parse_replay_csv(RECORDED).messages
    start_ns, outgoing = plan_replay(messages, speed=60, now_ns=NOW_NS)
    assert start_ns == messages[0].ts_ns
    assert [ts for o in outgoing for _, ts in o.message.stored] == [m.ts_ns for m in messages]

"""Simulators against the real broker and ingest worker: InfluxDB ends up exactly as reported."""

from __future__ import annotations

import math
import subprocess
import time
from functools import cache
from pathlib import Path

import pytest
import yaml

from devices.formats import DECODERS
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme
from ops.servers import InfluxServer, MosquittoServer
from simulators.fleet import run_fleet, write_fleet_stations
from simulators.plan import Plan
from simulators.replay import run_replay
from simulators.runner import (
    MqttPublisher,
    RunError,
    RunReport,
    load_credentials,
    parse_broker_url,
    prepare,
    run_plan,
    run_scenario,
)
from simulators.scenario import load_scenario, parse_scenario
from tests.conftest import REPO_ROOT, unique_name
from tests.helpers import influx_count, influx_query, wait_for
from tests.integration.conftest import NewWorker
from tests.integration.drivers import WorkerProcess

pytestmark = pytest.mark.integration

QUIET_DAY_WALL_S = 4.0
"""A simulated day compressed into this many seconds."""


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


def registered_formats() -> set[str]:
    """Native always; LoRaWAN and SenML once their decoders are registered with the worker."""
    return {"native"} | ({"senml", "ttn", "chirpstack"} & set(DECODERS))


def stored_pairs(influx: InfluxServer, database: str) -> set[tuple[str, int]]:
    series = influx_query(influx.url, database, 'SELECT * FROM telemetry GROUP BY "station"')
    return {(s["tags"]["station"], row[0]) for s in series for row in s["values"]}


def stored_levels(influx: InfluxServer, database: str, station: str) -> dict[int, float]:
    series = influx_query(
        influx.url,
        database,
        f"SELECT water_level_cm FROM telemetry WHERE station = '{station}'",
    )
    return {row[0]: row[1] for s in series for row in s["values"]}


def rejected_counts(influx: InfluxServer, database: str) -> dict[str, int]:
    series = influx_query(
        influx.url, database, "SELECT count(detail) FROM rejected GROUP BY reason"
    )
    return {s["tags"]["reason"]: int(s["values"][0][1]) for s in series}


def test_a_compressed_quiet_day_lands_exactly_as_the_simulator_reports(
    worker: WorkerProcess,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> None:
    scenario = load_scenario("quiet-day", REPO_ROOT / "config/scenarios")
    speed = scenario.duration_s / QUIET_DAY_WALL_S
    formats = registered_formats()
    plan: Plan = prepare(
        scenario,
        registry(),
        speed=speed,
        topics=TopicScheme(worker.topic_prefix),
        formats=formats,
    )
    publisher = MqttPublisher(parse_broker_url(broker_session.url))
    report: RunReport = run_plan(plan, publisher, speed=speed)

    assert not report.interrupted
    assert not report.refused  # the test broker has no ACLs
    assert report.messages_sent == len(plan.messages)
    assert set(report.valid) == set(plan.senders)
    assert len(report.rejections) >= 10  # malformed payloads of many kinds, and a spoof
    wait_for(
        lambda: worker.metric("siaga_messages_acknowledged_total") == report.messages_sent,
        30,
        f"the worker to acknowledge {report.messages_sent} messages",
    )
    wait_for(
        lambda: influx_count(influx_session.url, database, "battery_v") >= report.valid_total,
        15,
        "the readings to be stored",
    )
    assert stored_pairs(influx_session, database) == report.valid_pairs()
    assert rejected_counts(influx_session, database) == report.rejections
    # The values too: what the devices reported is what InfluxDB holds (after value faults).
    for station in ("tb-banjar-agung", "wk-blambangan-umpu", "tb-rawajitu-timur"):
        samples = plan.samples[station]
        sent = dict(
            zip(
                (samples.ts_ms * 1_000_000).tolist(),
                samples.values["water_level_cm"].tolist(),
                strict=True,
            )
        )
        stored = stored_levels(influx_session, database, station)
        assert stored == {ts: sent[ts] for ts in stored}
        assert len(stored) == report.valid_counts()[station]


def test_a_replay_lands_as_reported(
    tmp_path: Path,
    worker: WorkerProcess,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> None:
    rows = ["timestamp,station,metric,value"]
    for minute in range(0, 120, 10):
        stamp = f"2020-09-21T{16 + minute // 60:02d}:{minute % 60:02d}:00+07:00"
        rows.append(f"{stamp},ciliwung-katulampa,water_level_cm,{40 + minute * 1.5}")
        rows.append(f"{stamp},ciliwung-depok,water_level_cm,{120 + minute / 2}")
    path = tmp_path / "katulampa-2020.csv"
    path.write_text("\n".join(rows) + "\n")
    report = run_replay(
        path,
        broker_url=broker_session.url,
        speed=math.inf,
        shift_to_now=True,
        registry=registry(),
        topic_prefix=worker.topic_prefix,
    )
    assert report.valid_total == 24
    wait_for(lambda: influx_count(influx_session.url, database) == 24, 30, "24 levels stored")
    assert stored_pairs(influx_session, database) == report.valid_pairs()


def test_a_small_fleet_is_published_at_its_rate_and_stored(
    tmp_path: Path,
    new_worker: NewWorker,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
) -> None:
    stations, interval_s, duration_s = 300, 1.0, 3.0
    stations_file = write_fleet_stations(tmp_path / "fleet.yaml", stations, interval_s=interval_s)
    with new_worker(
        tmp_path / "worker",
        {
            "SIAGA_STATIONS__FILE": str(stations_file),
            "SIAGA_STATIONS__DEVICES_FILE": str(tmp_path / "no-devices.yaml"),
            "SIAGA_MQTT__LORAWAN": "false",
        },
    ) as process:
        report = run_fleet(
            stations,
            interval_s,
            duration_s,
            2,
            broker_url=broker_session.url,
            topic_prefix=process.topic_prefix,
            start_delay_s=1.0,
        )
        expected = int(stations * duration_s / interval_s)
        assert report.sent == report.acked == expected
        assert report.refused == 0
        assert report.target_rate_per_s == stations / interval_s
        assert report.publish_rate_per_s > 0.5 * report.target_rate_per_s
        wait_for(
            lambda: influx_count(influx_session.url, database) == expected,
            30,
            f"{expected} fleet readings stored",
        )
    assert not rejected_counts(influx_session, database)


def test_with_credentials_and_acls_the_broker_refuses_a_spoof(tmp_path: Path) -> None:
    accounts = {"gauge-tb-menggala": "menggala-pw", "gauge-tl-tanjung": "tanjung-pw"}
    password_file = tmp_path / "passwd"
    for number, (account, password) in enumerate(accounts.items()):
        create = ["-c"] if number == 0 else []
        subprocess.run(
            ["mosquitto_passwd", "-b", *create, str(password_file), account, password],
            check=True,
            timeout=10,
        )
    acl_file = tmp_path / "acl"
    acl_file.write_text(
        "user gauge-tb-menggala\ntopic write siaga/tb-menggala/telemetry\n"
        "user gauge-tl-tanjung\ntopic write siaga/tl-tanjung/telemetry\n"
    )
    credentials_file = tmp_path / "credentials.yaml"
    credentials_file.write_text(yaml.safe_dump(accounts))
    scenario = parse_scenario(
        "duration: 2h\nstep: 5min\nstations: [tb-menggala, tl-tanjung]\n"
        "faults: [{kind: spoof, station: tl-tanjung, target: tb-menggala, at: 1h}]\n",
        "spoof.yaml",
        "spoof",
    )
    with MosquittoServer(
        tmp_path / "mosquitto",
        extra_config=[f"password_file {password_file}", f"acl_file {acl_file}"],
        allow_anonymous=False,
    ) as broker:
        report = run_scenario(
            scenario,
            broker_url=broker.url,
            speed=math.inf,
            credentials=load_credentials(credentials_file),
            registry=registry(),
        )
        with pytest.raises(RunError, match="refused account 'gauge-tl-tanjung'"):
            run_scenario(
                scenario,
                broker_url=broker.url,
                speed=math.inf,
                credentials={**accounts, "gauge-tl-tanjung": "wrong"},
                registry=registry(),
            )
    assert report.refused == [("siaga/tb-menggala/telemetry", "Not authorized")]
    assert report.rejections == {}  # refused by the broker: the ingest side never sees it
    counts = report.valid_counts()
    assert set(counts) == {"tb-menggala", "tl-tanjung"}
    assert min(counts.values()) >= 8  # every 15 minutes for 2 hours


def test_a_fleet_it_cannot_keep_up_with_stops_at_its_duration(
    request: pytest.FixtureRequest, broker_session: MosquittoServer
) -> None:
    # 400,000 readings a second is beyond one process: it falls behind, and must still stop.
    duration_s = 1.5
    started = time.monotonic()
    report = run_fleet(
        400_000,
        1.0,
        duration_s,
        1,
        broker_url=broker_session.url,
        topic_prefix=f"p{unique_name(request)}",
        start_delay_s=0.5,
        ack_timeout_s=30,
        timestamps="actual",
    )
    assert time.monotonic() - started < 0.5 + duration_s + 15  # not minutes of catching up
    (worker,) = report.workers
    assert worker.publishing_s < duration_s + 1.0
    assert report.unsent > 0
    assert report.sent == report.acked > 0
    assert report.sent + report.unsent == int(400_000 * duration_s)
    assert report.final_lag_s > 0
    assert report.timestamps == "actual"

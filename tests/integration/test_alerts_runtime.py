"""`siaga alerts run` against real servers: Mosquitto, InfluxDB, SQLite and PostgreSQL.

Every test publishes a simulator scenario over MQTT and compares the transitions the incident
database ends up with against a backtest of the same readings (no-data aside: it is judged by
the wall clock live and by the readings' clock in a backtest).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ops.servers import InfluxServer, MosquittoServer, PostgresServer
from tests.conftest import unique_name
from tests.helpers import influx_query, wait_for
from tests.integration.alert_drivers import (
    EngineProcess,
    backtest_keys,
    committed_keys,
    scenario_messages,
    wait_for_keys,
)
from tests.integration.conftest import NewWorker
from tests.integration.drivers import paho_publish

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TAKEOVER_LIMIT_S = 15.0


def engine_for(
    request: pytest.FixtureRequest,
    directory: Path,
    broker: MosquittoServer,
    influx: InfluxServer,
    database_url: str,
    topic_prefix: str | None = None,
    **extra: str,
) -> EngineProcess:
    name = unique_name(request)
    return EngineProcess(
        directory,
        broker.url,
        influx.url,
        f"a_{name}",
        database_url,
        client_id=f"e-{name}",
        topic_prefix=topic_prefix or f"p{name}",
        extra_env=dict(extra),
    )


def assert_same(found: list[tuple[object, ...]], expected: list[tuple[object, ...]]) -> None:
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    assert not missing, f"missing {len(missing)}: {missing[:5]}"
    assert not extra, f"extra {len(extra)}: {extra[:5]}"
    assert found == expected  # same multiset: nothing lost, nothing repeated


def test_engine_killed_mid_flood_loses_and_repeats_nothing(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    broker: MosquittoServer,
    influx_session: InfluxServer,
) -> None:
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    engine = engine_for(request, tmp_path / "engine", broker, influx_session, url)
    messages = scenario_messages("way-tulang-bawang-flood", engine.topic_prefix)
    expected = backtest_keys(messages, engine.topic_prefix)
    assert len(expected) >= 10  # a flood: escalations, warnings, recoveries
    half = len(messages) // 2
    with engine:
        paho_publish(broker.port, messages[:half], client_id="flood-1")
        wait_for(lambda: len(committed_keys(url)) >= 1, 60, "a first transition")
        engine.kill()  # mid-flood: the first half is not all evaluated yet, or not acknowledged
        paho_publish(broker.port, messages[half:], client_id="flood-2")  # queued for its session
        engine.start()
        assert_same(wait_for_keys(url, expected), expected)


def test_two_ingest_workers_and_one_engine_see_every_event(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    new_worker: NewWorker,
) -> None:
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    workers = [
        new_worker(tmp_path / f"worker{i}", {"SIAGA_HEALTH__ENABLED": "false"}, tag=str(i))
        for i in (1, 2)
    ]
    prefix = workers[0].topic_prefix  # the engine reads what the workers read
    engine = engine_for(
        request, tmp_path / "engine", broker_session, influx_session, url, topic_prefix=prefix
    )
    messages = scenario_messages("jakarta-water-gates", prefix)
    expected = backtest_keys(messages, prefix)
    assert any(k[1].startswith("upstream") for k in expected)  # Katulampa warns Depok
    with workers[0], workers[1], engine:
        paho_publish(broker_session.port, messages, client_id=f"pub-{prefix}")
        assert_same(wait_for_keys(url, expected), expected)
        acked = [w.metric("siaga_messages_acknowledged_total") for w in workers]
        assert min(acked) > 0  # the group really split the stream between the two workers


def test_influxdb_stopped_during_the_flood_changes_no_event(
    request: pytest.FixtureRequest, tmp_path: Path, broker: MosquittoServer, influx: InfluxServer
) -> None:
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    engine = engine_for(request, tmp_path / "engine", broker, influx, url)
    messages = scenario_messages("jakarta-water-gates", engine.topic_prefix)
    expected = backtest_keys(messages, engine.topic_prefix)
    with engine:
        influx.stop()
        paho_publish(broker.port, messages, client_id="flood")
        assert_same(wait_for_keys(url, expected), expected)
        influx.start()

        def alerts_stored() -> int:
            series = influx_query(
                influx.url, engine.influx_database, "SELECT count(event_id) FROM alerts"
            )
            return int(series[0]["values"][0][1]) if series else 0

        # Every committed transition's event reached measurement ``alerts`` once InfluxDB
        # returned (events without a transition, too: at least as many).
        wait_for(lambda: alerts_stored() >= len(expected), 60, "alert events in InfluxDB")


def test_standby_takes_over_within_15_s_with_nothing_lost_or_repeated(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    broker: MosquittoServer,
    influx_session: InfluxServer,
    postgres_url: str,
    postgres_session: PostgresServer,
) -> None:
    first = engine_for(request, tmp_path / "a", broker, influx_session, postgres_url)
    second = engine_for(request, tmp_path / "b", broker, influx_session, postgres_url)
    messages = scenario_messages("way-tulang-bawang-flood", first.topic_prefix)
    expected = backtest_keys(messages, first.topic_prefix)
    half = len(messages) // 2
    with first:
        wait_for(first.leading, 30, "the first engine to lead")
        second.start(wait_subscribed=False)
        try:
            wait_for(lambda: "standing by" in second.log(), 60, "the second to stand by")
            assert not second.subscribed()  # a standby holds no MQTT session
            paho_publish(broker.port, messages[:half], client_id="flood-1")
            wait_for(lambda: len(committed_keys(postgres_url)) >= 1, 60, "a first transition")
            first.kill()
            killed = time.monotonic()
            wait_for(second.subscribed, TAKEOVER_LIMIT_S, "the standby to take over")
            takeover_s = time.monotonic() - killed
            paho_publish(broker.port, messages[half:], client_id="flood-2")
            assert_same(wait_for_keys(postgres_url, expected), expected)
        finally:
            second.__exit__()
    assert takeover_s < TAKEOVER_LIMIT_S

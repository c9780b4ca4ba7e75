"""Drivers for the alert engine's integration tests: `siaga alerts run` in its own process,
flood scenarios as messages, the transitions a database holds and those a backtest expects."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from sqlalchemy import create_engine, select

from alerts.backtest import replay
from alerts.incidents import tables
from alerts.incidents.records import event_from_json
from alerts.model import EventKind, Transition
from devices.registry import Registry, load_registry
from devices.topics import TopicScheme
from ingest.validation import Limits, Validator
from simulators.runner import prepare
from simulators.scenario import load_scenario
from tests.conftest import REPO_ROOT
from tests.helpers import wait_for
from tests.integration.drivers import SiagaProcess, siaga_env

DEVICES_FILE = REPO_ROOT / "config" / "devices.yaml"
STATIONS_FILE = REPO_ROOT / "config" / "stations.yaml"

Key = tuple[str, str, str, str, int]
"""A transition compared across runs: subject, rule, new state, severity, event time."""


@cache
def registry() -> Registry:
    return load_registry(STATIONS_FILE, DEVICES_FILE)


@dataclass
class EngineProcess(SiagaProcess):
    """``siaga alerts run`` as a separate process, configured through SIAGA_* variables."""

    directory: Path
    broker_url: str
    influx_url: str
    influx_database: str
    database_url: str
    client_id: str
    topic_prefix: str
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def start(self, *, wait_subscribed: bool = True) -> EngineProcess:
        self.directory.mkdir(parents=True, exist_ok=True)
        env = siaga_env(
            SIAGA_MQTT__URL=self.broker_url,
            SIAGA_MQTT__TOPIC_PREFIX=self.topic_prefix,
            SIAGA_MQTT__RECONNECT_MAX_S="1",
            SIAGA_MQTT__CLIENT_ID=self.client_id,  # the engine's session: <client_id>-alerts
            SIAGA_SPOOL__DIR=str(self.directory / "spool"),
            SIAGA_ALERTS__RULES_FILE=str(self.directory / "no-rules.yaml"),
            # Time-driven rules judge the wall clock, a backtest the readings' own: keep them out.
            SIAGA_ALERTS__TICK_INTERVAL_S="3600",
            SIAGA_ALERTS__LEADER_POLL_S="0.5",
            SIAGA_INFLUX__URL=self.influx_url,
            SIAGA_INFLUX__DATABASE=self.influx_database,
            SIAGA_INFLUX__WRITE_RETRY_DEADLINE_S="1",
            SIAGA_DATABASE__URL=self.database_url,
            SIAGA_STATIONS__FILE=str(STATIONS_FILE),
            SIAGA_STATIONS__DEVICES_FILE=str(DEVICES_FILE),
            SIAGA_HEALTH__INTERVAL_S="1",
        )
        env.update(self.extra_env)
        self.spawn(["alerts", "run"], env, "engine")
        if wait_subscribed:
            wait_for(self.subscribed, 60, "the engine to subscribe")
        return self

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"engine exited with {self.process.returncode}:\n{self.log()}")

    def subscribed(self) -> bool:
        self._check_alive()
        return "MQTT subscribed" in self.log()

    def leading(self) -> bool:
        self._check_alive()
        return "leading: holding lock" in self.log()

    def __enter__(self) -> EngineProcess:
        return self.start()


def scenario_messages(name: str, prefix: str) -> list[tuple[str, bytes]]:
    """A scenario's messages, in publishing order, for the topic prefix (accelerated: all now)."""
    scenario = load_scenario(REPO_ROOT / "config" / "scenarios" / f"{name}.yaml")
    plan = prepare(scenario, registry(), speed=float("inf"), topics=TopicScheme(prefix))
    return [(o.message.topic, o.message.payload) for o in plan.messages]


def key(transition: Transition) -> Key:
    event = transition.event
    return (event.subject, event.rule, transition.state.value, event.severity.name, event.at_ns)


def comparable(transition: Transition) -> bool:
    """Not judged by the wall clock: everything but no-data."""
    return transition.event.kind is not EventKind.NO_DATA


def backtest_keys(messages: list[tuple[str, bytes]], prefix: str) -> list[Key]:
    """What the backtest of the same readings says (every registered station in scope)."""
    validator = Validator(registry(), TopicScheme(prefix), Limits(max_age_s=400 * 86400.0))
    now_ns = time.time_ns()
    readings = [r for t, p in messages for r in validator.validate(t, p, now_ns).readings]
    result = replay(readings, registry(), all_stations=True)
    return sorted(key(t) for t in result.step.transitions if comparable(t))


def committed_keys(database_url: str) -> list[Key]:
    """The transitions the incident database holds (comparable ones), sorted."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(tables.incident_transitions.c.event, tables.incident_transitions.c.state)
            ).all()
    except Exception:  # the tables may not exist yet
        return []
    finally:
        engine.dispose()
    found = []
    for event_json, state in rows:
        event = event_from_json(event_json)
        if event.kind is not EventKind.NO_DATA:
            found.append((event.subject, event.rule, state, event.severity.name, event.at_ns))
    return sorted(found)


def wait_for_keys(database_url: str, expected: list[Key], timeout_s: float = 120) -> list[Key]:
    """Wait until the database holds at least as many transitions as expected; return them."""
    deadline = time.monotonic() + timeout_s
    found = committed_keys(database_url)
    while len(found) < len(expected) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling another process's database, with a deadline
        found = committed_keys(database_url)
    time.sleep(0.5)  # anything extra (a repeat) would land now
    return committed_keys(database_url)

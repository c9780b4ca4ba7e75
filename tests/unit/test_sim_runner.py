"""The runner's clock semantics and reporting, with an in-memory publisher and a fake clock."""

from __future__ import annotations

import math
import socket
import threading
from functools import cache
from pathlib import Path

import pytest

from devices.registry import Registry, load_registry
from ops.servers import free_port
from simulators.plan import Plan
from simulators.runner import (
    BrokerAddress,
    Clock,
    MemoryPublisher,
    MqttPublisher,
    RunError,
    _Acknowledgements,
    _Connection,
    check_start,
    default_start,
    load_credentials,
    parse_broker_url,
    parse_start,
    prepare,
    run_plan,
)
from simulators.scenario import load_scenario
from tests.conftest import REPO_ROOT

NOW_NS = 1_795_000_000 * 10**9 + 123_456_789  # late 2026, not on a whole millisecond
DAY_S = 86_400.0
YEAR_S = 365 * DAY_S


@cache
def registry() -> Registry:
    return load_registry(REPO_ROOT / "config/stations.yaml", REPO_ROOT / "config/devices.yaml")


def quiet_day(speed: float) -> Plan:
    scenario = load_scenario("quiet-day", REPO_ROOT / "config/scenarios")
    return prepare(scenario, registry(), speed=speed, now_ns=NOW_NS)


class FakeClock:
    """Monotonic time that only moves when the runner sleeps."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.now_s = 0.0
        self.sleeps = 0
        self.interrupt_after = interrupt_after

    def monotonic(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.interrupt_after is not None and self.sleeps > self.interrupt_after:
            raise KeyboardInterrupt
        self.now_s += seconds

    def clock(self) -> Clock:
        return Clock(lambda: NOW_NS, self.monotonic, self.sleep)


@pytest.mark.parametrize(
    ("speed", "lead_s"), [(1.0, 0.0), (60.0, DAY_S * 59 / 60), (math.inf, DAY_S)]
)
def test_the_simulated_clock_catches_up_with_the_wall_clock_at_the_end(
    speed: float, lead_s: float
) -> None:
    assert default_start(DAY_S, speed, NOW_NS) == NOW_NS - round(lead_s * 1e9)
    check_start(default_start(DAY_S, speed, NOW_NS), DAY_S, speed, NOW_NS)


def test_starts_with_future_or_too_old_readings_are_refused() -> None:
    with pytest.raises(RunError, match="in the future; start at or before"):
        check_start(NOW_NS, DAY_S, 60.0, NOW_NS)  # the sim clock would run ahead of now
    with pytest.raises(RunError, match="older than the ingest side keeps"):
        check_start(NOW_NS - round(YEAR_S * 1e9), DAY_S, 60.0, NOW_NS)
    with pytest.raises(RunError, match="speed"):
        default_start(DAY_S, 0.0, NOW_NS)
    check_start(NOW_NS - round(100 * DAY_S * 1e9), DAY_S, 60.0, NOW_NS)  # the past is fine


def test_prepare_starts_on_a_whole_millisecond_and_honours_the_seed() -> None:
    plan = quiet_day(60.0)
    assert plan.start_ns % 1_000_000 == 0
    assert abs(plan.start_ns - default_start(DAY_S, 60.0, NOW_NS)) < 1_000_000
    scenario = load_scenario("quiet-day", REPO_ROOT / "config/scenarios")
    reseeded = prepare(scenario, registry(), speed=60.0, now_ns=NOW_NS, seed=99)
    assert reseeded.scenario.seed == 99
    assert reseeded.stored() != plan.stored()
    start_ns = 1_794_000_000 * 10**9
    explicit = prepare(scenario, registry(), speed=60.0, now_ns=NOW_NS, start_ns=start_ns)
    assert explicit.start_ns == start_ns


def test_a_run_publishes_every_message_on_the_simulated_clock_and_reports_it() -> None:
    plan = quiet_day(600.0)
    fake = FakeClock()
    publisher = MemoryPublisher()
    report = run_plan(plan, publisher, speed=600.0, clock=fake.clock())
    assert fake.now_s == pytest.approx(plan.messages[-1].at_s / 600.0)
    assert [(m.message.account, m.message.topic, m.message.payload) for m in plan.messages] == (
        publisher.messages
    )
    assert report.messages_sent == len(plan.messages)
    assert report.valid_pairs() == plan.stored()
    assert report.rejections == plan.rejections()
    assert report.valid_counts()["tb-menggala"] == plan.stored_per_station()["tb-menggala"]
    assert publisher.accounts == plan.accounts()
    assert not report.refused
    assert not report.interrupted
    assert {r.kind for r in report.faults} >= {"malformed", "spoof", "backlog", "dropout"}


def test_messages_the_broker_refuses_are_neither_valid_nor_expected_rejections() -> None:
    plan = quiet_day(math.inf)
    own_topic = {
        d.id: f"siaga/{d.station}/telemetry"
        for d in registry().devices.values()
        if d.format in {"native", "senml"}
    }

    def acl(account: str | None, topic: str) -> str | None:
        # Like the broker's ACL: a device may publish on its own station's topic only.
        if account in own_topic and topic != own_topic[account]:
            return "Not authorized"
        return None

    report = run_plan(plan, MemoryPublisher(refuse=acl), speed=math.inf, clock=FakeClock().clock())
    assert report.refused == [("siaga/tb-menggala/telemetry", "Not authorized")]
    assert "station_mismatch" not in report.rejections
    assert sum(report.rejections.values()) == sum(plan.rejections().values()) - 1
    assert report.valid_pairs() == plan.stored()


def test_ctrl_c_stops_publishing_and_reports_what_went_out() -> None:
    plan = quiet_day(600.0)
    fake = FakeClock(interrupt_after=50)
    publisher = MemoryPublisher()
    report = run_plan(plan, publisher, speed=600.0, clock=fake.clock())
    assert report.interrupted
    assert 0 < report.messages_sent == len(publisher.messages) < len(plan.messages)
    sent = {pair for m in plan.messages[: report.messages_sent] for pair in m.message.stored}
    assert report.valid_pairs() == sent


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("mqtt://127.0.0.1:1884", BrokerAddress("127.0.0.1", 1884)),
        ("tcp://broker", BrokerAddress("broker", 1883)),
        ("mqtt://sim%40x:p%3Ass@h:1", BrokerAddress("h", 1, "sim@x", "p:ss")),
    ],
)
def test_broker_urls(url: str, address: BrokerAddress) -> None:
    assert parse_broker_url(url) == address


@pytest.mark.parametrize("url", ["http://h:1883", "mqtt://", "mqtt://h:port"])
def test_bad_broker_urls(url: str) -> None:
    with pytest.raises(RunError, match="broker URL"):
        parse_broker_url(url)


def test_credentials_files(tmp_path: Path) -> None:
    good = tmp_path / "c.yaml"
    good.write_text("gauge-tb-menggala: s3cret\ntts-tulang-bawang: 'x y'\n")
    assert load_credentials(good) == {"gauge-tb-menggala": "s3cret", "tts-tulang-bawang": "x y"}
    json_file = tmp_path / "c.json"
    json_file.write_text('{"a": "b"}')
    assert load_credentials(json_file) == {"a": "b"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(RunError, match="mapping of account name to password"):
        load_credentials(bad)
    with pytest.raises(RunError, match="cannot read credentials"):
        load_credentials(tmp_path / "missing.yaml")


def test_accounts_without_a_password_are_refused_before_connecting() -> None:
    publisher = MqttPublisher(BrokerAddress("127.0.0.1", free_port()), {"a": "x"})
    with pytest.raises(RunError, match=r"no password for account\(s\) b"):
        publisher.connect({"a", "b", None})


def test_an_unreachable_broker_is_a_clear_error() -> None:
    # A port bound but not listening refuses connections, and no other process can take it
    # while the test runs (a merely free port could be taken by a parallel test's server).
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        publisher = MqttPublisher(BrokerAddress("127.0.0.1", closed.getsockname()[1]))
        with pytest.raises(RunError, match="cannot reach the broker"):
            publisher.connect({None})


def test_start_times() -> None:
    assert parse_start("2026-03-01T07:00:00.5+07:00") == 1_772_323_200_500_000_000
    with pytest.raises(RunError, match="UTC offset"):
        parse_start("2026-03-01T07:00:00")
    with pytest.raises(RunError, match="RFC 3339"):
        parse_start("yesterday")


def test_an_answer_from_the_network_thread_is_waited_for_and_taken_once() -> None:
    acknowledgements = _Acknowledgements()
    answer = threading.Timer(0.05, acknowledgements.record, args=(7, "Not authorized"))
    answer.start()
    assert acknowledgements.take(7, timeout_s=5) == (True, "Not authorized")
    answer.join()
    assert acknowledgements.take(7, timeout_s=0) == (False, None)
    acknowledgements.record(8, None)
    assert acknowledgements.take(8, timeout_s=0) == (True, None)


def test_a_message_never_acknowledged_fails_with_a_sentence() -> None:
    connection = _Connection(client=None)
    connection.unchecked.append((1, 42))
    publisher = MqttPublisher(BrokerAddress("127.0.0.1", 1883))
    publisher._connections[None] = connection
    with pytest.raises(RunError, match=r"no acknowledgement from the broker within 0\.1 s"):
        publisher._check(connection, block=True, timeout_s=0.1)
    publisher._check(connection, block=False)  # not blocking: nothing to wait for, no error
    assert list(connection.unchecked) == [(1, 42)]

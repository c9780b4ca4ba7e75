"""A flood wave through real MQTT, ingest, the engine (`siaga alerts run`) and the notifier, to a
real SMTP server and a real webhook receiver: one message per level change per recipient
group, in Bahasa Indonesia with the Jakarta gates' own labels, escalation until acknowledged,
a silence honoured. Then kill -9 of the notifier in the middle of sending."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from ops.servers import InfluxServer, MosquittoServer
from tests.conftest import REPO_ROOT, STATIONS_FILE, unique_name
from tests.helpers import reading_payload, wait_for
from tests.integration.conftest import NewWorker
from tests.integration.drivers import SiagaProcess, paho_publish, run_siaga, siaga_env
from tests.integration.notify_peers import Received, WebhookReceiver, smtp_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HOOK_KEY = "flood-test-hmac-key"

POLICY = """
recipients:
  - name: piket
    language: id
    channels:
      - name: email
        url: "mailto://127.0.0.1:{smtp}?from=siaga@example.org&to=piket@example.org"
        pages: false
      - {{name: hook, type: webhook, url: "{hook}/piket", secret_env: FLOOD_HOOK_KEY}}
  - name: pimpinan
    language: id
    channels:
      - {{name: relay, url: "json://127.0.0.1:{hook_port}/pimpinan"}}
groups:
  - {{name: bogor, members: [piket], escalation: ciliwung}}
  - {{name: pimpinan, members: [pimpinan]}}
routes:
  - {{match: {{river: [Ciliwung]}}, groups: [bogor]}}
default_groups: [bogor]
group_by: [regency, kind]
group_wait_s: 0.3
group_interval_s: 0.5
repeat_interval_s: 36000
escalations:
  ciliwung:
    steps: [{{group: bogor, after_min: 0}}, {{group: pimpinan, after_min: 0.1}}]
silences:
  - matchers: [{{name: station, value: ciliwung-manggarai}}]
    starts: 2020-01-01T00:00:00+07:00
    ends: 2100-01-01T00:00:00+07:00
    created_by: test
    comment: Manggarai gauge under maintenance
"""


class Engine(SiagaProcess):
    """`siaga alerts run` in its own process."""

    def __init__(self, directory: Path, env: dict[str, str]) -> None:
        self.directory = directory
        self.env = env
        self.process = None
        self.log_path = None

    def start(self) -> None:
        self.spawn(["alerts", "run"], self.env, "engine")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def level_alerts(received: list[Received], station: str) -> list[dict[str, Any]]:
    return [
        alert
        for r in received
        if r.path == "/piket"
        for alert in r.json()["alerts"]
        if alert["station"] == station
        and alert["kind"] == "level"
        and alert["reason"] == "transition"
    ]


async def upstream_levels(url: str, station: str) -> set[str]:
    """The levels of every upstream transition the engine committed for ``station``."""
    from alerts.incidents.records import IncidentFilter  # noqa: PLC0415
    from alerts.incidents.store import SqlIncidentStore  # noqa: PLC0415

    levels: set[str] = set()
    async with SqlIncidentStore(url) as store:
        for incident in await store.list(IncidentFilter(active_only=False, station=station)):
            found = await store.get(incident.id)
            assert found is not None
            levels |= {
                t.event.severity.name
                for t in found.transitions
                if t.event.kind.value == "upstream" and t.event.firing
            }
    return levels


@pytest.fixture
def peers() -> Iterator[tuple[int, Any, WebhookReceiver]]:
    receiver = WebhookReceiver(secret=HOOK_KEY.encode())
    with smtp_server() as (smtp_port, inbox), receiver.running():
        yield smtp_port, inbox, receiver


def test_flood_wave_notifies_once_per_level_in_indonesian_and_escalates(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    broker_session: MosquittoServer,
    influx_session: InfluxServer,
    database: str,
    peers: tuple[int, Any, WebhookReceiver],
    new_worker: NewWorker,
) -> None:
    smtp_port, inbox, receiver = peers
    name = unique_name(request)
    worker = new_worker(tmp_path / "worker")
    prefix = worker.topic_prefix  # the engine reads what the worker reads
    policy = tmp_path / "alerts.yaml"
    policy.write_text(POLICY.format(smtp=smtp_port, hook=receiver.url, hook_port=receiver.port))
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    env = siaga_env(
        SIAGA_MQTT__URL=broker_session.url,
        SIAGA_MQTT__TOPIC_PREFIX=prefix,
        SIAGA_MQTT__RECONNECT_MAX_S="1",
        SIAGA_INFLUX__URL=influx_session.url,
        SIAGA_INFLUX__DATABASE=database,
        SIAGA_DATABASE__URL=url,
        SIAGA_STATIONS__FILE=str(STATIONS_FILE),
        SIAGA_MQTT__CLIENT_ID=f"e-{name}",
        SIAGA_SPOOL__DIR=str(tmp_path / "spool"),
        SIAGA_ALERTS__COMMIT_INTERVAL_S="0.05",
        SIAGA_NOTIFY__POLICY_FILE=str(policy),
        SIAGA_NOTIFY__TICK_S="0.05",
        FLOOD_HOOK_KEY=HOOK_KEY,
    )
    engine = Engine(tmp_path, env)
    with worker:
        engine.start()
        try:
            wait_for(lambda: "leading" in engine.log() or not engine.alive(), 60, "engine leads")
            assert engine.alive(), engine.log()
            wait_for(lambda: "MQTT subscribed" in engine.log(), 60, "engine subscribed")
            now_ms = int(time.time() * 1000)
            # Depok already reads AWAS: Katulampa's WASPADA warning for it will be inhibited.
            paho_publish(
                broker_session.port,
                [
                    (
                        f"{prefix}/ciliwung-depok/telemetry",
                        reading_payload(now_ms - 590_000, 1, water_level_cm=400.0),
                    )
                ],
                f"pub-{name}-depok",
            )
            wait_for(
                lambda: any(
                    a["level"] == "AWAS"
                    for a in level_alerts(receiver.accepted(), "ciliwung-depok")
                ),
                60,
                "Depok's AWAS message",
            )
            wave = [40.0, 120.0, 160.0, 220.0]
            for step, level_cm in enumerate(wave):
                ts = now_ms + step * 60_000 - 600_000 + 60_000
                paho_publish(
                    broker_session.port,
                    [
                        (
                            f"{prefix}/ciliwung-katulampa/telemetry",
                            reading_payload(ts, step, water_level_cm=level_cm),
                        )
                    ],
                    f"pub-{name}-{step}",
                )
                if step:
                    wait_for(
                        lambda step=step: (
                            len(level_alerts(receiver.accepted(), "ciliwung-katulampa")) >= step
                            or not engine.alive()
                        ),
                        60,
                        f"level message {step}",
                    )
                    assert engine.alive(), engine.log()
            levels = level_alerts(receiver.accepted(), "ciliwung-katulampa")
            assert [(a["level"], a["level_label"]) for a in levels] == [
                ("WASPADA", "Siaga 3"),
                ("SIAGA", "Siaga 2"),
                ("AWAS", "Siaga 1"),
            ]
            texts = [r.json()["text"] for r in receiver.accepted() if r.path == "/piket"]
            assert any(
                "Bendung Katulampa" in t
                and "Siaga 1" in t
                and "WIB" in t
                and "Segera evakuasi" in t
                for t in texts
            )
            assert all(r.signature_ok for r in receiver.accepted() if r.path == "/piket")
            assert not any("Manggarai" in t for t in texts)  # silenced

            # Nobody acknowledged: after 6 s the chain reaches the pimpinan group.
            wait_for(
                lambda: any(r.path == "/pimpinan" for r in receiver.accepted()),
                60,
                "escalation to pimpinan",
            )
            escalation = next(r for r in receiver.accepted() if r.path == "/pimpinan")
            assert escalation.json()["message"].startswith("ESKALASI")
            incident = levels[0]["incident_id"]
            acked = run_siaga("alerts", "ack", str(incident), "--by", "rina", env=env)
            assert acked.returncode == 0, acked.stderr

            # The water falls back through every level (a gradual fall: a jump that returns
            # would be a spike): each de-escalation once, down to Siaga 4 (normal).
            fall = [170.0, 120.0, 70.0, 40.0, 38.0]
            paho_publish(
                broker_session.port,
                [
                    (
                        f"{prefix}/ciliwung-katulampa/telemetry",
                        reading_payload(now_ms - 300_000 + i * 30_000, 10 + i, water_level_cm=cm),
                    )
                    for i, cm in enumerate(fall)
                ],
                f"pub-{name}-fall",
            )

            def normal_again() -> bool:
                alerts = level_alerts(receiver.accepted(), "ciliwung-katulampa")
                return any(a["level"] == "NORMAL" for a in alerts)

            try:
                wait_for(normal_again, 60, "return to normal")
            except AssertionError:
                seen = [
                    (a["level"], a["at"])
                    for a in level_alerts(receiver.accepted(), "ciliwung-katulampa")
                ]
                raise AssertionError(f"{seen}\n{engine.log()[-4000:]}") from None
            time.sleep(1.5)  # a quiet window in which a repeat would show up
            levels = level_alerts(receiver.accepted(), "ciliwung-katulampa")
            rank = {"NORMAL": 0, "WASPADA": 1, "SIAGA": 2, "AWAS": 3}
            labels = {
                "NORMAL": "Siaga 4",
                "WASPADA": "Siaga 3",
                "SIAGA": "Siaga 2",
                "AWAS": "Siaga 1",
            }
            # Every level change the engine decided arrives once: up by one step each time,
            # then down (the engine may step down one level or several at once) to normal.
            assert [a["level"] for a in levels[:3]] == ["WASPADA", "SIAGA", "AWAS"]
            falling = [rank[a["level"]] for a in levels[2:]]
            assert falling == sorted(set(falling), reverse=True), levels
            assert all(a["level_label"] == labels[a["level"]] for a in levels)
            assert len({(a["level"], a["at"]) for a in levels}) == len(levels)
            assert levels[-1]["state"] == "resolved"
            ids = [r.json()["id"] for r in receiver.accepted() if r.path == "/piket"]
            assert len(ids) == len(set(ids))
            # The e-mail channel carried the same messages as the webhook, each once.
            hooked = sorted(r.json()["subject"] for r in receiver.accepted() if r.path == "/piket")
            subjects = [str(make_header(decode_header(m["Subject"]))) for m in inbox.messages]
            assert sorted(subjects) == hooked
            # The engine did warn Depok at WASPADA from upstream; no message carried it.
            warned = asyncio.run(upstream_levels(url, "ciliwung-depok"))
            assert "WASPADA" in warned, warned
            sent = {
                alert["level"]
                for r in receiver.accepted()
                if r.path == "/piket"
                for alert in r.json()["alerts"]
                if alert["station"] == "ciliwung-depok" and alert["kind"] == "upstream"
            }
            assert "WASPADA" not in sent
        finally:
            engine.stop()
        assert "Traceback" not in engine.log(), engine.log()


def test_kill_9_while_sending_delivers_everything_repeating_only_in_flight(
    tmp_path: Path,
) -> None:
    """The notifier dies (SIGKILL) with a webhook request in flight; after a restart every
    message arrives, and the only repeat is the in-flight one, with the same id."""

    from alerts.incidents.store import SqlIncidentStore  # noqa: PLC0415
    from alerts.model import AlertEvent, EventKind, IncidentState, Transition  # noqa: PLC0415
    from devices.levels import Level  # noqa: PLC0415

    receiver = WebhookReceiver(secret=HOOK_KEY.encode(), hold=threading.Event())
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    stations = ["tb-menggala", "tb-banjar-agung", "ciliwung-depok", "tl-tanjung", "rb-lasem"]

    async def seed() -> None:
        async with SqlIncidentStore(url) as store:
            for index, station in enumerate(stations):
                event = AlertEvent(
                    at_ns=time.time_ns() - index * 10**9,
                    subject=station,
                    kind=EventKind.LEVEL,
                    rule="level",
                    firing=True,
                    severity=Level.SIAGA,
                    previous=Level.NORMAL,
                    value=300.0,
                )
                await store.commit(
                    [Transition(station, "level", None, IncidentState.FIRING, event)], {}
                )

    asyncio.run(seed())
    policy = tmp_path / "alerts.yaml"
    policy.write_text(f"""
recipients:
  - name: systems
    language: en
    channels: [{{name: hook, type: webhook, url: "{receiver.url}/in", secret_env: FLOOD_HOOK_KEY}}]
groups: [{{name: all, members: [systems]}}]
default_groups: [all]
group_by: [station]
group_wait_s: 0
""")
    env = siaga_env(
        SIAGA_DATABASE__URL=url,
        SIAGA_STATIONS__FILE=str(STATIONS_FILE),
        SIAGA_NOTIFY__POLICY_FILE=str(policy),
        SIAGA_NOTIFY__TICK_S="0.05",
        SIAGA_NOTIFY__LEASE_S="3",
        SIAGA_NOTIFY__CHANNEL_CONCURRENCY="1",
        FLOOD_HOOK_KEY=HOOK_KEY,
    )
    log_path = tmp_path / "notifier.log"

    def notifier(*command: str) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, *command],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    with receiver.running():
        first = notifier("-m", "siaga", "alerts", "notify")
        try:
            assert receiver.hold is not None
            wait_for(receiver.hold.is_set, 60, "a webhook request in flight")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            if first.poll() is None:
                first.kill()
        receiver.hold = None
        receiver.release.set()  # the in-flight request completes on the receiver's side
        second = notifier("-m", "siaga", "alerts", "notify")  # a restart
        try:
            wait_for(
                lambda: len({r.json()["id"] for r in receiver.accepted()}) == len(stations),
                60,
                "every message delivered after the restart",
            )
            time.sleep(1.0)  # a quiet window in which a stray repeat would show up
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0, log_path.read_text()
    ids = [r.json()["id"] for r in receiver.accepted()]
    assert len(set(ids)) == len(stations)
    repeats = len(ids) - len(set(ids))
    assert repeats <= 1, ids  # concurrency 1: at most the one request in flight
    assert all(r.signature_ok for r in receiver.accepted())
    assert "Traceback" not in log_path.read_text(), log_path.read_text()

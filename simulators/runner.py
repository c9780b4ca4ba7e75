"""Run a scenario against an MQTT broker: the thin I/O shell around :mod:`simulators.plan`.

The simulated clock starts at ``start`` and runs ``speed`` times faster than the wall clock;
every message goes out when the simulated clock reaches its time, carrying timestamps from the
simulated clock. Unless told otherwise the run starts at::

    start = now - duration * (1 - 1/speed)

so that the simulated clock catches up with the wall clock exactly when the run ends: at any
speed no reading is ever in the future, and (for runs up to a year) none is older than a year,
the ingest side's retention window. In real time (``speed == 1``) that is ``now``; as fast as
possible (``speed == inf``) it is ``now - duration``.

Publishing goes through a :class:`Publisher`: :class:`MqttPublisher` (paho-mqtt 2.x, QoS 1, one
client per account, MQTT 5 so that a broker's refusal is reported per message) or
:class:`MemoryPublisher`, which keeps messages in memory for tests and dry runs.
"""

from __future__ import annotations

import math
import os
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from devices.errors import SiagaError
from devices.registry import Registry, load_registry
from devices.topics import DEFAULT_PREFIX, TopicScheme
from simulators.faults import FaultRecord, Outgoing
from simulators.plan import Plan, build_plan
from simulators.scenario import Scenario

NS_PER_S = 1_000_000_000
MAX_AGE_S = 365 * 86_400.0
"""The ingest side's default retention window: older readings are rejected."""
MAX_FUTURE_S = 300.0
"""The ingest side's default allowance for clocks running ahead."""
DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"


class RunError(SiagaError, RuntimeError):
    """A run that cannot start or finish: bad start time, broker refused, acks missing."""


# -- the simulated clock -----------------------------------------------------------------------


def default_start(duration_s: float, speed: float, now_ns: int) -> int:
    """The start that makes the simulated clock reach ``now`` exactly when the run ends."""
    if speed <= 0 or math.isnan(speed):
        raise RunError("speed must be a positive number (inf: as fast as possible)")
    lead = 1.0 if math.isinf(speed) else 1.0 - 1.0 / speed
    return now_ns - round(max(lead, 0.0) * duration_s * NS_PER_S)


def check_start(
    start_ns: int,
    duration_s: float,
    speed: float,
    now_ns: int,
    *,
    max_age_s: float = MAX_AGE_S,
    max_future_s: float = MAX_FUTURE_S,
) -> None:
    """Refuse a start whose readings would be in the future or older than the retention window.

    The simulated clock reads ``start + (wall - now) * speed``; a reading is published when the
    clock reaches its time, so its lag behind the wall clock is largest at the start of the run
    and its lead (for ``speed > 1``) largest at the end.

    Raises:
        RunError: Saying which bound is broken and what would work.
    """
    wall_end_ns = now_ns + (0 if math.isinf(speed) else round(duration_s / speed * NS_PER_S))
    sim_end_ns = start_ns + round(duration_s * NS_PER_S)
    ahead_s = (sim_end_ns - wall_end_ns) / NS_PER_S
    if ahead_s > max_future_s:
        latest = default_start(duration_s, speed, now_ns)
        raise RunError(
            f"at speed {speed:g} the run's last readings would be {ahead_s:.0f} s in the future; "
            f"start at or before {_iso(latest)}"
        )
    if (now_ns - start_ns) / NS_PER_S > max_age_s - 3600:
        earliest = now_ns - round((max_age_s - 3600) * NS_PER_S)
        raise RunError(
            "the run's first readings would be older than the ingest side keeps "
            f"({max_age_s / 86_400:.0f} days); start after {_iso(earliest)}"
        )


def parse_start(text: str) -> int:
    """An RFC 3339 start with an offset (``2026-03-01T00:00:00+07:00``) in epoch nanoseconds.

    Raises:
        RunError: Unparseable, or without an offset.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise RunError(f"start {text!r} is not RFC 3339 (e.g. 2026-03-01T00:00:00+07:00)") from None
    if moment.utcoffset() is None:
        raise RunError(f"start {text!r} needs a UTC offset, e.g. Z or +07:00")
    return int(moment.timestamp()) * NS_PER_S + moment.microsecond * 1000


def _iso(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_ns / NS_PER_S))


# -- brokers and credentials ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker is, and the default account (from the URL) if any."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://[user[:password]@]host[:port]`` (``tcp://`` too; port 1883 by default).

    Raises:
        RunError: For another scheme or a URL without a host.
    """
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "tcp"} or not parts.hostname:
        raise RunError(f"broker URL must look like mqtt://host:1883 (got {url!r})")
    try:
        port = parts.port or 1883
    except ValueError:
        raise RunError(f"broker URL {url!r} has a bad port") from None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return BrokerAddress(parts.hostname, port, username, password)


def default_broker_url() -> str:
    """``SIAGA_MQTT__URL`` from the environment, else ``mqtt://127.0.0.1:1883``."""
    return os.environ.get("SIAGA_MQTT__URL") or DEFAULT_BROKER_URL


def load_credentials(path: Path) -> dict[str, str]:
    """A YAML or JSON mapping of account → password.

    Raises:
        RunError: Unreadable file, or not a mapping of names to strings.
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise RunError(f"cannot read credentials {path}: {exc}") from None
    if not isinstance(document, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in document.items()
    ):
        raise RunError(f"{path}: expected a mapping of account name to password (strings)")
    return dict(document)


# -- publishers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """A message the broker did not accept."""

    handle: int
    reason: str


class Publisher(Protocol):
    """Where a run's messages go."""

    def connect(self, accounts: set[str | None]) -> None:
        """Open a connection per account (None: the default connection)."""
        ...

    def publish(self, account: str | None, topic: str, payload: bytes) -> int:
        """Send one message at QoS 1; returns a handle for :meth:`wait_acknowledged`."""
        ...

    def wait_acknowledged(self, timeout_s: float) -> list[Refusal]:
        """Block until the broker acknowledged every message; return the refused ones.

        Raises:
            RunError: Some acknowledgements did not arrive in time.
        """
        ...

    def close(self) -> None:
        """Disconnect."""
        ...


@dataclass
class MemoryPublisher:
    """A publisher that keeps every message in memory (tests, dry runs).

    Attributes:
        refuse: Called with (account, topic); a non-empty string refuses the message with that
            reason, as a broker's ACL would.
        messages: (account, topic, payload) of every accepted message, in order.
    """

    refuse: Callable[[str | None, str], str | None] | None = None
    messages: list[tuple[str | None, str, bytes]] = field(default_factory=list)
    accounts: set[str | None] = field(default_factory=set)
    _refused: list[Refusal] = field(default_factory=list)
    _handles: int = 0

    def connect(self, accounts: set[str | None]) -> None:
        """Remember the accounts."""
        self.accounts = set(accounts)

    def publish(self, account: str | None, topic: str, payload: bytes) -> int:
        """Keep the message, or refuse it."""
        if account not in self.accounts:
            raise RunError(f"account {account!r} is not connected")
        self._handles += 1
        reason = self.refuse(account, topic) if self.refuse else None
        if reason:
            self._refused.append(Refusal(self._handles, reason))
        else:
            self.messages.append((account, topic, payload))
        return self._handles

    def wait_acknowledged(self, timeout_s: float) -> list[Refusal]:
        """Everything is acknowledged at once."""
        refused, self._refused = self._refused, []
        return refused

    def close(self) -> None:
        """Nothing to close."""


class _Acknowledgements:
    """The broker's answers to one client's QoS 1 publishes, as paho's network thread sees them.

    Recorded from ``on_publish`` rather than read off paho's message info: a message published
    while the client reconnects keeps ``rc == MQTT_ERR_NO_CONN`` after paho resends it and the
    broker acknowledges it, and ``is_published()`` raises for it, so the info cannot tell an
    acknowledged message from a lost one.
    """

    def __init__(self) -> None:
        self._answers: dict[int, str | None] = {}
        self._arrived = threading.Condition()

    def record(self, mid: int, refusal: str | None) -> None:
        """Keep the answer to message ``mid``: None when accepted, else the broker's reason."""
        with self._arrived:
            self._answers[mid] = refusal
            self._arrived.notify_all()

    def take(self, mid: int, timeout_s: float) -> tuple[bool, str | None]:
        """Wait up to ``timeout_s`` for the answer to ``mid`` and forget it.

        Returns:
            Whether it came, and the refusal reason if the broker refused the message.
        """
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while mid not in self._answers:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False, None
                self._arrived.wait(remaining)
            return True, self._answers.pop(mid)


class _Connection:
    """One paho client, its unacknowledged messages and the broker's answers."""

    # A paho message id is reused only after 65535 newer publishes: checking acknowledgements
    # in order, with at most this many outstanding, keeps every answer matched to its message.
    MAX_UNCHECKED = 20_000

    def __init__(self, client: Any) -> None:
        self.client = client
        self.answered = threading.Event()
        self.connect_reason: str | None = None
        self.acknowledgements = _Acknowledgements()
        self.unchecked: deque[tuple[int, int]] = deque()  # (handle, mid), oldest first


class MqttPublisher:
    """Publishes over MQTT 5 at QoS 1 with paho-mqtt, one client per account.

    Args:
        broker: Where the broker is; its username/password are the default account.
        credentials: Account → password; an account without an entry connects without a
            password (None: every account connects without one, for brokers that allow it).
        client_prefix: Client ids are ``<prefix>-<account>-<pid>``.
        connect_timeout_s: How long to wait for each CONNACK.
    """

    def __init__(
        self,
        broker: BrokerAddress,
        credentials: Mapping[str, str] | None = None,
        *,
        client_prefix: str = "siaga-sim",
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._broker = broker
        self._credentials = dict(credentials or {})
        self._prefix = client_prefix
        self._timeout_s = connect_timeout_s
        self._connections: dict[str | None, _Connection] = {}
        self._handles = 0
        self._refused: list[Refusal] = []

    def connect(self, accounts: set[str | None]) -> None:
        """Connect a client per account and wait for each CONNACK.

        Raises:
            RunError: An account the credentials do not cover, or a refused connection.
        """
        if self._credentials:
            missing = sorted(a for a in accounts if a is not None and a not in self._credentials)
            if missing:
                raise RunError(f"no password for account(s) {', '.join(missing)}")
        for account in sorted(accounts, key=lambda a: a or ""):
            self._connections[account] = self._open(account)

    def _open(self, account: str | None) -> _Connection:
        name = account or "default"
        client_id = f"{self._prefix}-{name}-{os.getpid()}"
        if len(client_id) > 64:
            # Cutting would make two accounts' ids equal, and the broker would drop one.
            client_id = f"{self._prefix[:20]}-{zlib.crc32(client_id.encode()):08x}-{name[:30]}"
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
        connection = _Connection(client)
        user = account if account is not None else self._broker.username
        password = self._credentials.get(account) if account else self._broker.password
        if user is not None:
            client.username_pw_set(user, password)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            connection.connect_reason = None if not reason.is_failure else str(reason)
            connection.answered.set()

        def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
            connection.acknowledgements.record(mid, str(reason) if reason.is_failure else None)

        client.on_connect = on_connect
        client.on_publish = on_publish
        try:
            client.connect(self._broker.host, self._broker.port, keepalive=30)
        except OSError as exc:
            raise RunError(
                f"cannot reach the broker at {self._broker.host}:{self._broker.port}: {exc}"
            ) from None
        client.loop_start()
        answered = connection.answered.wait(self._timeout_s)
        if not answered or connection.connect_reason is not None:
            client.disconnect()
            client.loop_stop()
            reason = connection.connect_reason or f"no answer within {self._timeout_s:g} s"
            raise RunError(f"the broker refused account {name!r}: {reason}")
        return connection

    def publish(self, account: str | None, topic: str, payload: bytes) -> int:
        """Publish at QoS 1; acknowledgements are checked in order as they come."""
        connection = self._connections.get(account)
        if connection is None:
            raise RunError(f"account {account!r} is not connected")
        self._handles += 1
        # Queued by paho whatever the connection's state (rc NO_CONN while it reconnects): paho
        # sends it once connected and resends it after a reconnect until the broker answers.
        info = connection.client.publish(topic, payload, qos=1)
        connection.unchecked.append((self._handles, info.mid))
        self._check(connection, block=len(connection.unchecked) > _Connection.MAX_UNCHECKED)
        return self._handles

    def _check(self, connection: _Connection, *, block: bool, timeout_s: float = 60.0) -> None:
        """Match the broker's answers to the oldest messages, waiting for them if ``block``.

        Raises:
            RunError: ``block`` and a message unanswered for ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        while connection.unchecked:
            handle, mid = connection.unchecked[0]
            wait_s = max(0.0, deadline - time.monotonic()) if block else 0.0
            answered, refusal = connection.acknowledgements.take(mid, wait_s)
            if not answered:
                if not block:
                    return
                raise RunError(f"no acknowledgement from the broker within {timeout_s:g} s")
            connection.unchecked.popleft()
            if refusal is not None:
                self._refused.append(Refusal(handle, refusal))

    def wait_acknowledged(self, timeout_s: float) -> list[Refusal]:
        """Wait for every outstanding acknowledgement; return and forget the refusals."""
        deadline = time.monotonic() + timeout_s
        for connection in self._connections.values():
            while connection.unchecked:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RunError(
                        f"{len(connection.unchecked)} messages not acknowledged within "
                        f"{timeout_s:g} s"
                    )
                self._check(connection, block=True, timeout_s=remaining)
        refused, self._refused = self._refused, []
        return refused

    def close(self) -> None:
        """Disconnect every client."""
        for connection in self._connections.values():
            connection.client.disconnect()
            connection.client.loop_stop()
        self._connections.clear()


# -- publishing on the simulated clock ---------------------------------------------------------


@dataclass
class RunReport:
    """Exactly what a run sent, and what the ingest side should make of it.

    Attributes:
        name: The scenario (or replayed file).
        start_ns: The simulated clock's start.
        speed: Simulated seconds per wall second.
        messages_sent: Messages published and acknowledged by the broker (refusals included).
        valid: Station → timestamps (ns) of the valid readings sent; duplicates count once.
        rejections: Reason → how many rejections the ingest side will store.
        faults: Every injected fault with its expected outcome.
        refused: Messages the broker refused (e.g. an ACL stopping a spoof): (topic, reason).
        levels: Station → (simulated time ns, level cm) of each fault-free water level sent and
            acknowledged, to judge the scenario's promises against what was really sent.
        wall_s: How long the run took.
        interrupted: The run was stopped early; the counts cover what was sent.
        skipped_rows: A replayed file's rows not sent, by why (``gaps``: no value;
            ``duplicates``: a row given twice).
    """

    name: str
    start_ns: int
    speed: float
    messages_sent: int = 0
    valid: dict[str, set[int]] = field(default_factory=dict)
    rejections: dict[str, int] = field(default_factory=dict)
    faults: list[FaultRecord] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    levels: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    wall_s: float = 0.0
    interrupted: bool = False
    skipped_rows: dict[str, int] = field(default_factory=dict)

    def valid_pairs(self) -> set[tuple[str, int]]:
        """Every valid reading as (station, ts_ns)."""
        return {(station, ts) for station, stamps in self.valid.items() for ts in stamps}

    def valid_counts(self) -> dict[str, int]:
        """Valid readings per station."""
        return {station: len(stamps) for station, stamps in self.valid.items()}

    @property
    def valid_total(self) -> int:
        """All valid readings."""
        return sum(len(stamps) for stamps in self.valid.values())


class Display(Protocol):
    """Shows a run's progress; :class:`simulators.display.LiveDisplay` is the rich one."""

    def begin(self, total: int, formats: Mapping[str, str]) -> None:
        """Called once before publishing: how many messages, and each station's format."""
        ...

    def update(self, sent: int, total: int, sim_ns: int, message: Outgoing) -> None:
        """Called after each message."""
        ...


@dataclass
class Clock:
    """The wall clock, injectable so tests need not wait."""

    now_ns: Callable[[], int] = time.time_ns
    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def publish_schedule(
    messages: Sequence[Outgoing],
    publisher: Publisher,
    report: RunReport,
    *,
    start_ns: int,
    speed: float,
    clock: Clock | None = None,
    display: Display | None = None,
    formats: Mapping[str, str] | None = None,
    ack_timeout_s: float = 120.0,
) -> RunReport:
    """Publish messages when the simulated clock reaches them; fill in ``report``.

    ``formats`` (station → payload format) is only shown by the display.

    Each message's readings and expected rejections count once the broker has acknowledged it
    without refusal. Ctrl-C stops publishing; what was sent is still waited for and reported.
    """
    clock = clock or Clock()
    if display is not None:
        display.begin(len(messages), formats or {})
    began = clock.monotonic()
    handles: dict[int, Outgoing] = {}
    try:
        for number, message in enumerate(messages, 1):
            if not math.isinf(speed):
                wait_s = began + message.at_s / speed - clock.monotonic()
                if wait_s > 0:
                    clock.sleep(wait_s)
            encoded = message.message
            handle = publisher.publish(encoded.account, encoded.topic, encoded.payload)
            handles[handle] = message
            if display is not None:
                sim_ns = start_ns + round(message.at_s * NS_PER_S)
                display.update(number, len(messages), sim_ns, message)
    except KeyboardInterrupt:
        report.interrupted = True
    refusals = {r.handle: r.reason for r in publisher.wait_acknowledged(ack_timeout_s)}
    for handle, message in handles.items():
        report.messages_sent += 1
        reason = refusals.get(handle)
        if reason is not None:
            report.refused.append((message.message.topic, reason))
            continue
        for station, ts_ns in message.message.stored:
            report.valid.setdefault(station, set()).add(ts_ns)
        for rejection in message.rejections:
            report.rejections[rejection] = report.rejections.get(rejection, 0) + 1
        if message.level_cm is not None and message.fault is None:
            sim_ns = start_ns + round(message.at_s * NS_PER_S)
            report.levels.setdefault(message.station, []).append((sim_ns, message.level_cm))
    report.wall_s = clock.monotonic() - began
    return report


def run_plan(
    plan: Plan,
    publisher: Publisher,
    *,
    speed: float,
    clock: Clock | None = None,
    display: Display | None = None,
    ack_timeout_s: float = 120.0,
) -> RunReport:
    """Publish a planned scenario through ``publisher`` (connected here, closed at the end)."""
    report = RunReport(plan.scenario.name, plan.start_ns, speed, faults=list(plan.faults))
    try:
        publisher.connect(plan.accounts())
        return publish_schedule(
            plan.messages,
            publisher,
            report,
            start_ns=plan.start_ns,
            speed=speed,
            clock=clock,
            display=display,
            formats={station: sender.format for station, sender in plan.senders.items()},
            ack_timeout_s=ack_timeout_s,
        )
    finally:
        publisher.close()


def prepare(
    scenario: Scenario,
    registry: Registry,
    *,
    speed: float,
    start_ns: int | None = None,
    seed: int | None = None,
    topics: TopicScheme | None = None,
    formats: set[str] | None = None,
    now_ns: int | None = None,
) -> Plan:
    """Choose the start, check it, and plan the run.

    Args:
        scenario: The scenario.
        registry: Stations and devices.
        speed: Simulated seconds per wall second (``inf``: as fast as possible).
        start_ns: The simulated start; None for the scenario's own, else :func:`default_start`.
        seed: Replaces the scenario's seed.
        topics: The native topic scheme.
        formats: Only these payload formats (None: all).
        now_ns: The wall clock (tests).

    Raises:
        RunError: The start would put readings in the future or past the retention window.
    """
    now = time.time_ns() if now_ns is None else now_ns
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    if start_ns is None and scenario.start is not None:
        start_ns = int(scenario.start.timestamp() * 1000) * 1_000_000
    if start_ns is None:
        start_ns = default_start(scenario.duration_s, speed, now)
    # Whole milliseconds: every timestamp the devices send is then exact.
    start_ns -= start_ns % 1_000_000
    check_start(start_ns, scenario.duration_s, speed, now)
    return build_plan(scenario, registry, start_ns, topics, formats=formats)


def run_scenario(
    scenario: Scenario,
    *,
    broker_url: str = DEFAULT_BROKER_URL,
    speed: float = 60.0,
    start_ns: int | None = None,
    seed: int | None = None,
    credentials: Mapping[str, str] | None = None,
    registry: Registry | None = None,
    topic_prefix: str = DEFAULT_PREFIX,
    formats: set[str] | None = None,
    display: Display | None = None,
    publisher: Publisher | None = None,
) -> RunReport:
    """Run a scenario against a broker and report exactly what was sent.

    Args:
        scenario: The scenario.
        broker_url: ``mqtt://[user:pass@]host:port``; the URL's account is the default one.
        speed: Simulated seconds per wall second (``inf``: as fast as possible).
        start_ns: The simulated start (default: see :func:`default_start`).
        seed: Replaces the scenario's seed.
        credentials: Account → password (None: connect without passwords).
        registry: Stations and devices (default: the files the scenario names).
        topic_prefix: The native topic prefix.
        formats: Only publish for stations whose devices speak these formats.
        display: Progress display.
        publisher: Where to publish (default: :class:`MqttPublisher` to ``broker_url``).

    Raises:
        RunError: Bad start, broker unreachable or refusing, acknowledgements missing.
        ScenarioError: The scenario does not fit the registry.
    """
    if registry is None:
        registry = load_registry(scenario.registry.stations, scenario.registry.devices)
    plan = prepare(
        scenario,
        registry,
        speed=speed,
        start_ns=start_ns,
        seed=seed,
        topics=TopicScheme(topic_prefix),
        formats=formats,
    )
    if publisher is None:
        publisher = MqttPublisher(parse_broker_url(broker_url), credentials)
    return run_plan(plan, publisher, speed=speed, display=display)

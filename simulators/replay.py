"""Replay a recorded series as device messages: ``siaga simulate replay FILE.csv``.

The CSV has a header with the columns ``timestamp``, ``station``, ``metric`` and ``value``
(others are ignored); timestamps are RFC 3339 with an offset, or epoch seconds or milliseconds.
It is read by :mod:`devices.readings_csv`, like ``siaga alerts backtest``'s: rows without a
value (gaps) and repeated rows are skipped and counted in the report. Rows are grouped per
(station, timestamp) into one native message each and published in time order, with the file's
own gaps in time divided by ``speed``.

Without ``shift_to_now`` the readings keep their recorded times, which must lie within the
last year (the ingest side's retention window) and not in the future. With it, every time is
shifted by the same amount so that the replay ends at the wall clock's "now", exactly like a
scenario run (see :func:`simulators.runner.default_start`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devices.errors import ConfigError
from devices.readings_csv import ReadingsCsvError, parse_readings_csv
from devices.registry import Registry
from devices.topics import DEFAULT_PREFIX, TopicScheme
from simulators.encoding import DeviceReading, Encoded, Sender, encode_native
from simulators.faults import Outgoing
from simulators.runner import (
    DEFAULT_BROKER_URL,
    Display,
    MqttPublisher,
    Publisher,
    RunError,
    RunReport,
    check_start,
    default_start,
    parse_broker_url,
    publish_schedule,
)

NS_PER_S = 1_000_000_000


class ReplayError(ConfigError, ValueError):
    """A file that cannot be replayed; the message names the line."""


@dataclass(frozen=True, slots=True)
class ReplayFile:
    """A replay file's messages, in time order, and the rows it skipped.

    Attributes:
        messages: One per (station, timestamp).
        skipped: ``gaps`` (rows without a value) and ``duplicates`` (a row given twice).
    """

    messages: list[ReplayMessage]
    skipped: dict[str, int]


@dataclass(frozen=True, slots=True)
class ReplayMessage:
    """One station's readings at one time, as a device would send them together."""

    ts_ns: int
    station: str
    values: dict[str, float]


def parse_replay_csv(text: str, source: str = "<csv>") -> ReplayFile:
    """Read a replay CSV (:mod:`devices.readings_csv`) and group it into messages, in time order.

    Raises:
        ReplayError: Missing columns, bad timestamps or values, empty fields, a (station,
            timestamp, metric) given twice with two values, or no rows at all, naming the line.
    """
    try:
        parsed = parse_readings_csv(text, source, time_columns=("timestamp", "ts"))
    except ReadingsCsvError as exc:
        raise ReplayError(str(exc)) from None
    if not parsed.readings:
        raise ReplayError(f"{source}: no rows to replay")
    messages = [ReplayMessage(r.ts_ns, r.station_id, r.values) for r in parsed.readings]
    return ReplayFile(messages, parsed.skipped())


def load_replay_csv(path: Path) -> ReplayFile:
    """Read and parse a replay file.

    Raises:
        ReplayError: Unreadable or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ReplayError(f"{path}: byte {exc.start} is not UTF-8") from None
    return parse_replay_csv(text, str(path))


def replay_sender(station: str, topics: TopicScheme, registry: Registry | None) -> Sender:
    """Who publishes a replayed station: its native device's account, if the registry has one.

    Raises:
        ReplayError: The registry does not know the station, or its device is not native.
    """
    if registry is None:
        return Sender(station, "native", topics.telemetry(station), None)
    resolved = registry.for_station_topic(station)
    if resolved is None:
        raise ReplayError(f"station {station!r} is not in the registry")
    device = resolved.device
    if device is not None and device.format != "native":
        raise ReplayError(
            f"station {station!r}'s device {device.id!r} speaks {device.format}; replay sends "
            "native JSON"
        )
    return Sender(station, "native", topics.telemetry(station), device.id if device else None)


def plan_replay(
    messages: Sequence[ReplayMessage],
    *,
    speed: float,
    now_ns: int,
    shift_to_now: bool = False,
    topics: TopicScheme | None = None,
    registry: Registry | None = None,
) -> tuple[int, list[Outgoing]]:
    """The replay's simulated start and its messages, timed from the first reading.

    Raises:
        ReplayError: Unknown stations (with a registry).
        RunError: Recorded times outside the last year or in the future (without shifting).
    """
    topics = topics or TopicScheme()
    first, last = messages[0].ts_ns, messages[-1].ts_ns
    span_s = (last - first) / NS_PER_S
    offset_ns = 0
    if shift_to_now:
        start = default_start(span_s, speed, now_ns)
        offset_ns = start - first
        offset_ns -= offset_ns % 1_000_000  # keeps millisecond timestamps whole
    try:
        check_start(first + offset_ns, span_s, speed, now_ns)
    except RunError as exc:
        raise RunError(f"{exc}; or shift the recording to now (--shift-to-now)") from None
    senders: dict[str, Sender] = {}
    outgoing: list[Outgoing] = []
    for message in messages:
        sender = senders.get(message.station)
        if sender is None:
            sender = senders[message.station] = replay_sender(message.station, topics, registry)
        ts_ns = message.ts_ns + offset_ns
        # Native timestamps are whole milliseconds; the report stores what is sent.
        reading = DeviceReading(message.station, ts_ns // 1_000_000, message.values, seq=None)
        encoded: Encoded = encode_native([reading], sender)
        level = message.values.get("water_level_cm")
        outgoing.append(
            Outgoing((message.ts_ns - first) / NS_PER_S, message.station, encoded, level_cm=level)
        )
    return first + offset_ns, outgoing


def run_replay(
    path: Path,
    *,
    broker_url: str = DEFAULT_BROKER_URL,
    speed: float = 1.0,
    shift_to_now: bool = False,
    credentials: dict[str, str] | None = None,
    registry: Registry | None = None,
    topic_prefix: str = DEFAULT_PREFIX,
    display: Display | None = None,
    publisher: Publisher | None = None,
    now_ns: int | None = None,
) -> RunReport:
    """Replay a CSV file against a broker and report exactly what was sent.

    Args:
        path: The CSV file.
        broker_url: ``mqtt://[user:pass@]host:port``.
        speed: How much faster than recorded (the file's own gaps divided by it).
        shift_to_now: Shift every time so the replay ends now.
        credentials: Account → password for the stations' devices.
        registry: Stations and devices (accounts, and a check that the stations exist).
        topic_prefix: The native topic prefix.
        display: Progress display.
        publisher: Where to publish (default: MQTT to ``broker_url``).
        now_ns: The wall clock (tests).
    """
    recorded = load_replay_csv(path)
    now = time.time_ns() if now_ns is None else now_ns
    start_ns, outgoing = plan_replay(
        recorded.messages,
        speed=speed,
        now_ns=now,
        shift_to_now=shift_to_now,
        topics=TopicScheme(topic_prefix),
        registry=registry,
    )
    if publisher is None:
        publisher = MqttPublisher(parse_broker_url(broker_url), credentials)
    try:
        publisher.connect({o.message.account for o in outgoing})
        return publish_schedule(
            outgoing,
            publisher,
            RunReport(path.name, start_ns, speed, skipped_rows=recorded.skipped),
            start_ns=start_ns,
            speed=speed,
            display=display,
            formats=dict.fromkeys((o.station for o in outgoing), "native"),
        )
    finally:
        publisher.close()

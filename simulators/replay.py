"""Replay a recorded series as device messages: ``siaga simulate replay FILE.csv``.

The CSV has a header with the columns ``timestamp``, ``station``, ``metric`` and ``value``
(others are ignored); timestamps are RFC 3339 with an offset, or epoch seconds or milliseconds.
Rows are grouped per (station, timestamp) into one native message each and published in time
order, with the file's own gaps divided by ``speed``.

Without ``shift_to_now`` the readings keep their recorded times, which must lie within the
last year (the ingest side's retention window) and not in the future. With it, every time is
shifted by the same amount so that the replay ends at the wall clock's "now", exactly like a
scenario run (see :func:`simulators.runner.default_start`).
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devices.errors import ConfigError
from devices.registry import Registry
from devices.timestamps import TimestampError, parse_timestamp_ns
from devices.topics import TopicScheme
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
REQUIRED_COLUMNS = ("timestamp", "station", "metric", "value")
_NUMBER = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?")


class ReplayError(ConfigError, ValueError):
    """A file that cannot be replayed; the message names the line."""


@dataclass(frozen=True, slots=True)
class ReplayMessage:
    """One station's readings at one time, as a device would send them together."""

    ts_ns: int
    station: str
    values: dict[str, float]


def _timestamp(text: str, where: str) -> int:
    value: object = text.strip()
    if _NUMBER.fullmatch(text.strip()):
        value = float(text) if any(c in text for c in ".eE") else int(text)
    try:
        return parse_timestamp_ns(value)
    except TimestampError as exc:
        raise ReplayError(f"{where}: {exc}") from None


def parse_replay_csv(text: str, source: str = "<csv>") -> list[ReplayMessage]:
    """Read a replay CSV and group it into messages, in time order.

    Raises:
        ReplayError: Missing columns, bad timestamps or values, empty fields, or a
            (station, timestamp, metric) given twice, naming the line.
    """
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ReplayError(
            f"{source}: the header must name {', '.join(REQUIRED_COLUMNS)} (missing "
            f"{', '.join(missing)})"
        )
    reader.fieldnames = header
    groups: dict[tuple[str, int], dict[str, float]] = {}
    seen: dict[tuple[str, int, str], int] = {}
    for row in reader:
        line = reader.line_num
        where = f"{source}: line {line}"
        station = (row.get("station") or "").strip()
        metric = (row.get("metric") or "").strip()
        if not station or not metric:
            raise ReplayError(f"{where}: station and metric must not be empty")
        ts_ns = _timestamp(row.get("timestamp") or "", where)
        try:
            value = float((row.get("value") or "").strip())
        except ValueError:
            raise ReplayError(f"{where}: value {row.get('value')!r} is not a number") from None
        if not math.isfinite(value):
            raise ReplayError(f"{where}: value must be a finite number")
        key = (station, ts_ns, metric)
        if key in seen:
            raise ReplayError(
                f"{where}: {station} {metric} at this time is already on line {seen[key]}"
            )
        seen[key] = line
        groups.setdefault((station, ts_ns), {})[metric] = value
    if not groups:
        raise ReplayError(f"{source}: no rows to replay")
    messages = [ReplayMessage(ts, station, values) for (station, ts), values in groups.items()]
    messages.sort(key=lambda m: (m.ts_ns, m.station))
    return messages


def load_replay_csv(path: Path) -> list[ReplayMessage]:
    """Read and parse a replay file.

    Raises:
        ReplayError: Unreadable or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror}") from None
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
    topic_prefix: str = "siaga",
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
    messages = load_replay_csv(path)
    now = time.time_ns() if now_ns is None else now_ns
    start_ns, outgoing = plan_replay(
        messages,
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
            RunReport(path.name, start_ns, speed),
            start_ns=start_ns,
            speed=speed,
            display=display,
            formats=dict.fromkeys((o.station for o in outgoing), "native"),
        )
    finally:
        publisher.close()

"""Validation of incoming messages: pure, one message in, readings and rejections out."""

from __future__ import annotations

from dataclasses import dataclass, field

from devices import Reading, Reason, Rejection, Station, StationRegistry, TopicScheme
from devices.formats import DECODERS, Decoder
from devices.timestamps import NS_PER_S


@dataclass(frozen=True, slots=True)
class Limits:
    """What a message may be.

    Attributes:
        max_payload_bytes: Larger payloads are rejected unread.
        max_readings_per_message: Longer arrays are rejected whole.
        max_future_s: Readings further ahead of the worker's clock are rejected.
        max_age_s: Readings older than this (the retention window) are rejected.
    """

    max_payload_bytes: int = 64 * 1024
    max_readings_per_message: int = 1000
    max_future_s: float = 300.0
    max_age_s: float = 365 * 86400.0


@dataclass(slots=True)
class Outcome:
    """What one message became: readings to store, and rejections to store and count."""

    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _StationRules:
    station: Station
    ranges: dict[str, tuple[float, float]]
    decoder: Decoder | None


class Validator:
    """Turns ``(topic, payload)`` into validated readings and reasoned rejections.

    Args:
        registry: Which stations exist and what they may report.
        topics: The topic scheme messages arrive on.
        limits: Size, count and time bounds.
        decoders: Payload format name → decoder.
    """

    def __init__(
        self,
        registry: StationRegistry,
        topics: TopicScheme,
        limits: Limits,
        decoders: dict[str, Decoder] | None = None,
    ) -> None:
        self._topics = topics
        self._limits = limits
        self._decoders = DECODERS if decoders is None else decoders
        self._rules: dict[str, _StationRules] = {}
        self._station_of_topic: dict[str, str | None] = {}
        self.use_registry(registry)

    def use_registry(self, registry: StationRegistry) -> None:
        """Switch to a new registry (after a reload); rules are recompiled from it."""
        self._registry = registry
        self._rules = {}

    def _rules_for(self, station_id: str) -> _StationRules | None:
        rules = self._rules.get(station_id)
        if rules is None:
            station = self._registry.get(station_id)
            if station is None:
                return None
            rules = _StationRules(
                station,
                {name: (spec.min, spec.max) for name, spec in station.metrics.items()},
                self._decoders.get(station.payload_format),
            )
            self._rules[station_id] = rules
        return rules

    def _station_id(self, topic: str) -> str | None:
        try:
            return self._station_of_topic[topic]
        except KeyError:
            station_id = self._topics.station_of(topic)
            if len(self._station_of_topic) < 100_000:
                self._station_of_topic[topic] = station_id
            return station_id

    def validate(self, topic: str, payload: bytes, now_ns: int) -> Outcome:
        """Validate one message.

        Args:
            topic: The MQTT topic it arrived on.
            payload: Its body.
            now_ns: The worker's clock, for the future and age bounds.

        Returns:
            The valid readings (only valid metrics kept) and every rejection with its reason.
        """
        station_id = self._station_id(topic)
        if station_id is None:
            return _reject(Reason.BAD_TOPIC, f"topic {topic[:100]!r} is not a telemetry topic")
        limits = self._limits
        if len(payload) > limits.max_payload_bytes:
            return _reject(
                Reason.PAYLOAD_TOO_LARGE,
                f"payload is {len(payload)} bytes; the limit is {limits.max_payload_bytes}",
                station_id,
            )
        rules = self._rules_for(station_id)
        if rules is None:
            # The claimed id stays out of the station tag: unknown ids must not mint series.
            return _reject(Reason.UNKNOWN_STATION, f"station {station_id!r} is not registered")
        if rules.decoder is None:
            return _reject(
                Reason.UNDECODABLE,
                f"no decoder for payload format {rules.station.payload_format!r}",
                station_id,
            )
        decoded = rules.decoder(payload, station_id, limits.max_readings_per_message)
        outcome = Outcome([], decoded.rejections)
        newest_ns = now_ns + int(limits.max_future_s * NS_PER_S)
        oldest_ns = now_ns - int(limits.max_age_s * NS_PER_S)
        for reading in decoded.readings:
            kept = _check_reading(reading, rules.ranges, newest_ns, oldest_ns, outcome.rejections)
            if kept is not None:
                outcome.readings.append(kept)
        return outcome


def _reject(reason: Reason, detail: str, station_id: str | None = None) -> Outcome:
    return Outcome([], [Rejection(reason, detail, station_id)])


def _check_reading(
    reading: Reading,
    ranges: dict[str, tuple[float, float]],
    newest_ns: int,
    oldest_ns: int,
    rejections: list[Rejection],
) -> Reading | None:
    station_id = reading.station_id
    if reading.ts_ns > newest_ns:
        rejections.append(
            Rejection(
                Reason.TIMESTAMP_IN_FUTURE,
                f"ts is {(reading.ts_ns - newest_ns) / NS_PER_S:.0f} s beyond the allowed skew",
                station_id,
            )
        )
        return None
    if reading.ts_ns < oldest_ns:
        rejections.append(
            Rejection(Reason.TIMESTAMP_TOO_OLD, "ts is older than the retention window", station_id)
        )
        return None
    values = reading.values
    kept: dict[str, float] | None = None
    for name, value in values.items():
        bounds = ranges.get(name)
        if bounds is None:
            problem = Rejection(
                Reason.UNKNOWN_METRIC, f"{name[:64]!r} is not a metric of this station", station_id
            )
        elif bounds[0] <= value <= bounds[1]:
            continue
        else:
            problem = Rejection(
                Reason.OUT_OF_RANGE,
                f"{name} = {value!r} is outside [{bounds[0]:g}, {bounds[1]:g}]",
                station_id,
            )
        rejections.append(problem)
        if kept is None:
            kept = dict(values)
        del kept[name]
    if kept is None:
        return reading
    if not kept:
        return None
    return Reading(station_id, reading.ts_ns, kept, reading.seq)

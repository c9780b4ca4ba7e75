"""Validation of incoming messages: pure, one message in, readings and rejections out."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from devices import (
    Reading,
    Reason,
    Rejection,
    StaticRegistry,
    Station,
    StationRegistry,
    TopicScheme,
)
from devices.formats import DECODERS, DecodeContext, Decoder
from devices.formats.native import plain_reading
from devices.registry import Registry
from devices.timestamps import NS_PER_S
from devices.topics import parse_route
from ingest.settings import InfluxSettings, Settings, ValidationSettings

_VALIDATION = ValidationSettings.model_fields  # the settings tree: one source of defaults


@dataclass(frozen=True, slots=True)
class Limits:
    """What a message may be (defaults: those of the settings tree).

    Attributes:
        max_payload_bytes: Larger payloads are rejected unread.
        max_readings_per_message: Longer arrays are rejected whole.
        max_future_s: Readings further ahead of the worker's clock are rejected.
        max_age_s: Readings older than this (the retention window) are rejected.
    """

    max_payload_bytes: int = _VALIDATION["max_payload_bytes"].default
    max_readings_per_message: int = _VALIDATION["max_readings_per_message"].default
    max_future_s: float = _VALIDATION["max_future_s"].default
    max_age_s: float = InfluxSettings.model_fields["retention_days"].default * 86400.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        """The limits the settings tree describes (``max_age_s``: its retention fallback)."""
        validation = settings.validation
        return cls(
            max_payload_bytes=validation.max_payload_bytes,
            max_readings_per_message=validation.max_readings_per_message,
            max_future_s=validation.max_future_s,
            max_age_s=settings.max_age_s,
        )


@dataclass(slots=True)
class Outcome:
    """What one message became: readings to store, and rejections to store and count."""

    readings: list[Reading]
    rejections: list[Rejection]


@dataclass(frozen=True, slots=True)
class _Sender:
    """A topic's resolved sender, compiled once per topic and registry."""

    context: DecodeContext
    ranges: dict[str, tuple[float, float]]
    decoder: Decoder | None
    format: str
    plain_native: bool
    """Whether the decoder is Siaga's native one, whose common case validation inlines."""


_Unresolved = tuple[Reason, str]


class Validator:
    """Turns ``(topic, payload)`` into validated readings and reasoned rejections.

    Args:
        registry: Which stations and devices exist and how to read them. A plain
            :class:`~devices.StationRegistry` (stations only) is read as native stations.
        topics: The native topic scheme.
        limits: Size, count and time bounds.
        decoders: Payload format name → decoder.
    """

    def __init__(
        self,
        registry: StationRegistry | Registry,
        topics: TopicScheme,
        limits: Limits,
        decoders: dict[str, Decoder] | None = None,
    ) -> None:
        self._topics = topics
        self._limits = limits
        # Per message, these are read often: computed once.
        self._max_payload_bytes = limits.max_payload_bytes
        self._max_future_ns = int(limits.max_future_s * NS_PER_S)
        self._max_age_ns = int(limits.max_age_s * NS_PER_S)
        self._decoders = DECODERS if decoders is None else decoders
        self._senders: dict[str, _Sender | _Unresolved] = {}
        self.use_registry(registry)

    def use_registry(self, registry: StationRegistry | Registry) -> None:
        """Switch to a new registry (after a reload); topics are resolved afresh."""
        if not isinstance(registry, Registry):
            registry = Registry(StaticRegistry(registry.stations()))
        self._registry = registry
        self._senders = {}

    @property
    def registry(self) -> Registry:
        """The registry in use."""
        return self._registry

    def _sender(self, topic: str) -> _Sender | _Unresolved:
        found = self._senders.get(topic)
        if found is None:
            found = self._resolve(topic)
            if len(self._senders) < 200_000:
                self._senders[topic] = found
        return found

    def _resolve(self, topic: str) -> _Sender | _Unresolved:
        route = parse_route(topic, self._topics)
        if route is None:
            return Reason.BAD_TOPIC, f"topic {topic[:100]!r} is not a telemetry topic"
        if route.kind == "native":
            resolved = self._registry.for_station_topic(route.key)
            if resolved is None:
                # The claimed id stays out of the station tag: unknown ids must not mint series.
                return Reason.UNKNOWN_STATION, f"station {route.key[:64]!r} is not registered"
        else:
            if route.kind == "ttn":
                assert route.application_id is not None
                resolved = self._registry.for_ttn(route.application_id, route.key)
            else:
                resolved = self._registry.for_chirpstack(route.key)
            if resolved is None:
                return (
                    Reason.UNKNOWN_DEVICE,
                    f"{route.kind} device {route.key[:64]!r} of application "
                    f"{(route.application_id or '')[:64]!r} is not registered",
                )
        station = resolved.station
        if resolved.device is not None and resolved.device.revoked:
            return Reason.UNKNOWN_DEVICE, f"device {resolved.device.id!r} is revoked"
        fmt = resolved.device.format if resolved.device is not None else "native"
        context = DecodeContext(
            station, resolved.device, resolved.profile, route, self._limits.max_readings_per_message
        )
        decoder = self._decoders.get(fmt)
        return _Sender(context, metric_ranges(station), decoder, fmt, decoder is DECODERS["native"])

    def validate(self, topic: str, payload: bytes, now_ns: int) -> Outcome:
        """Validate one message.

        Args:
            topic: The MQTT topic it arrived on.
            payload: Its body.
            now_ns: The worker's clock, for the future and age bounds.

        Returns:
            The valid readings (only valid metrics kept) and every rejection with its reason.
        """
        outcome = Outcome([], [])
        self.validate_into(topic, payload, now_ns, outcome.readings, outcome.rejections)
        return outcome

    def validate_into(
        self,
        topic: str,
        payload: bytes,
        now_ns: int,
        readings: list[Reading],
        rejections: list[Rejection],
    ) -> None:
        """As :meth:`validate`, appending to lists the caller holds (the worker's hot path:
        no objects per message for the outcome).

        If it raises (a decoder's bug), it may have appended nothing, or part of the message.
        """
        sender = self._senders.get(topic)
        if sender is None:
            sender = self._sender(topic)
        if isinstance(sender, tuple):
            rejections.append(Rejection(sender[0], sender[1]))
            return
        if len(payload) > self._max_payload_bytes:
            rejections.append(
                Rejection(
                    Reason.PAYLOAD_TOO_LARGE,
                    f"payload is {len(payload)} bytes; the limit is {self._max_payload_bytes}",
                    sender.context.station.id,
                )
            )
            return
        decoder = sender.decoder
        if decoder is None:
            rejections.append(
                Rejection(
                    Reason.UNDECODABLE,
                    f"no decoder for payload format {sender.format!r}",
                    sender.context.station.id,
                )
            )
            return
        newest_ns = now_ns + self._max_future_ns
        oldest_ns = now_ns - self._max_age_ns
        if sender.plain_native:
            # The native decoder's common case, without its layers: one JSON object that
            # plain_reading takes. Anything else goes to the decoder, which explains it.
            try:
                document = orjson.loads(payload)
            except orjson.JSONDecodeError:
                document = None
            if type(document) is dict:
                reading = plain_reading(document, sender.context.station.id)
                if reading is not None:
                    if oldest_ns <= reading.ts_ns <= newest_ns:
                        # check_reading's answer when all is well, without the call.
                        ranges = sender.ranges
                        for name, value in reading.values.items():
                            bounds = ranges.get(name)
                            if bounds is None or not bounds[0] <= value <= bounds[1]:
                                break  # check_reading says what is wrong
                        else:
                            readings.append(reading)
                            return
                    kept = check_reading(reading, sender.ranges, newest_ns, oldest_ns, rejections)
                    if kept is not None:
                        readings.append(kept)
                    return
        decoded = decoder(payload, sender.context)
        rejections += decoded.rejections
        for reading in decoded.readings:
            kept = check_reading(reading, sender.ranges, newest_ns, oldest_ns, rejections)
            if kept is not None:
                readings.append(kept)


def metric_ranges(station: Station) -> dict[str, tuple[float, float]]:
    """Each metric of the station and its valid range, inclusive."""
    return {name: (spec.min, spec.max) for name, spec in station.metrics.items()}


def check_reading(
    reading: Reading,
    ranges: dict[str, tuple[float, float]],
    newest_ns: int,
    oldest_ns: int,
    rejections: list[Rejection],
) -> Reading | None:
    """Keep what the station may report: its metrics, within range, at a time in bounds.

    Args:
        reading: A decoded reading.
        ranges: The station's :func:`metric_ranges`.
        newest_ns: Later readings are refused (in the future).
        oldest_ns: Earlier readings are refused (beyond retention).
        rejections: Where each refusal is appended, with its reason.

    Returns:
        The reading, without the metrics refused, or None when nothing of it is left.
    """
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

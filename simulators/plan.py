"""From a scenario to the exact list of messages a run publishes: pure and reproducible.

:func:`build_plan` computes the noise-free levels, samples every station's device, applies the
faults, encodes each report in its device's format and sorts the messages by the simulated
time at which they go out. The plan also knows what the ingest side should end up with: the
``(station, time)`` of every valid reading, and the rejections per reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from devices.topics import TopicScheme
from simulators.encoding import (
    DeviceReading,
    Sender,
    encode_chirpstack_status,
    resolve_sender,
)
from simulators.faults import (
    FaultRecord,
    Outgoing,
    apply_value_faults,
    expected_rejections,
    malformed_message,
    plan_deliveries,
    spoof_message,
)
from simulators.models import (
    LEVEL_METRIC,
    RAIN_METRIC,
    DeviceModel,
    FloatArray,
    FloodEvent,
    Grid,
    Runoff,
    Samples,
    Schedule,
    Sensor,
    Truth,
    rain_mm,
    report_indices,
    river_truth,
    runoff_cm,
    sample_station,
    stream,
    warning_levels,
)
from simulators.scenario import Scenario, check_scenario, flood_events, river_network

if TYPE_CHECKING:
    from devices.registry import Registry

NS_PER_S = 1_000_000_000
LATENCY_S = {"native": 2.0, "senml": 2.0, "ttn": 1.0, "chirpstack": 1.0}
"""Measuring to publishing: a logger's modem, or a LoRaWAN network server's deduplication."""
BATTERY_TEXT_SHARE = 0.3
"""Share of LoRaWAN uplinks whose formatter prints the battery as text ("3.384 V")."""
STATUS_EVERY_S = 86_400.0
"""ChirpStack asks a device for its status (battery, link margin) about once a day."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Everything a run will publish, and what the ingest side should make of it.

    Attributes:
        scenario: The scenario.
        grid: The model's time grid (starts at the run's start).
        truth: Noise-free levels.
        rain_mm: Rain per grid step at each station of a basin with rain events.
        samples: What each station's device reported (after value faults).
        senders: Who publishes for each station.
        messages: The messages, in publishing order.
        faults: One record per injected fault.
    """

    scenario: Scenario
    grid: Grid
    truth: Truth
    rain_mm: dict[str, FloatArray]
    samples: dict[str, Samples]
    senders: dict[str, Sender]
    messages: list[Outgoing]
    faults: list[FaultRecord]

    @property
    def start_ns(self) -> int:
        """The run's start, nanoseconds since the epoch."""
        return self.grid.start_ns

    @property
    def duration_s(self) -> float:
        """The run's length in simulated seconds."""
        return self.scenario.duration_s

    def stored(self) -> set[tuple[str, int]]:
        """The ``(station, ts_ns)`` of every valid reading the run sends."""
        return {pair for message in self.messages for pair in message.message.stored}

    def stored_per_station(self) -> dict[str, int]:
        """How many distinct valid readings each station sends."""
        counts = dict.fromkeys(self.senders, 0)
        for station, _ in self.stored():
            counts[station] = counts.get(station, 0) + 1
        return counts

    def rejections(self) -> dict[str, int]:
        """Rejections per reason the run's messages will cause."""
        return dict(expected_rejections(self.messages))

    def accounts(self) -> set[str | None]:
        """The MQTT accounts the run publishes as (None: the default connection)."""
        return {message.message.account for message in self.messages}


def scenario_truth(scenario: Scenario, registry: Registry, start_ns: int) -> Truth:
    """The noise-free levels of a run of ``scenario`` starting at ``start_ns``.

    Tides and season follow ``scenario.model_start`` when it is set (the same levels whatever
    the day of the run), else the run's own dates.
    """
    grid = Grid.covering(start_ns, scenario.duration_s, scenario.step_s)
    model = grid
    if scenario.model_start is not None:
        model_ns = int(scenario.model_start.timestamp()) * 1_000_000_000
        model = Grid.covering(model_ns, scenario.duration_s, scenario.step_s)
    network = river_network(scenario, registry)
    runoff = catchment_runoff(scenario, registry, grid)
    truth = river_truth(replace(network, runoff=runoff), model, scenario.seed)
    return replace(truth, grid=grid)


def station_rain(
    registry: Registry, station_id: str, events: Sequence[FloodEvent], grid: Grid, seed: int
) -> FloatArray:
    """The rain (mm per grid step) falling at a station: its basin's events and showers."""
    station = registry.get(station_id)
    assert station is not None
    basin_events = [
        e for e in events if (s := registry.get(e.station)) and s.basin == station.basin
    ]
    return rain_mm(station_id, basin_events, grid, seed, longitude=station.longitude)


def catchment_runoff(scenario: Scenario, registry: Registry, grid: Grid) -> dict[str, FloatArray]:
    """Per station with ``runoff``, the rise the rain at its ``rain_gauges`` gives it.

    The rain is the rain the gauges report in the same run (the run's grid, whose dates set
    the afternoon showers), so a model fitted on the published readings sees its true cause.
    """
    events = flood_events(scenario)
    found = {}
    for entry in scenario.stations:
        if entry.runoff is None:
            continue
        station = registry.get(entry.id)
        gauges = station.rain_gauges if station is not None else []
        if not gauges:
            continue
        rain = np.mean(
            [station_rain(registry, g, events, grid, scenario.seed) for g in gauges], axis=0
        )
        spec = entry.runoff
        found[entry.id] = runoff_cm(
            rain,
            grid.step_s,
            Runoff(
                spec.gain_cm_per_mm, spec.lag_s, spec.reservoir_s, spec.dry_fraction, spec.wet_mm
            ),
        )
    return found


def build_plan(
    scenario: Scenario,
    registry: Registry,
    start_ns: int,
    topics: TopicScheme | None = None,
    *,
    formats: set[str] | None = None,
) -> Plan:
    """Plan a run of ``scenario`` starting at ``start_ns``.

    Args:
        scenario: The scenario.
        registry: Stations, devices and integrations.
        start_ns: The simulated clock's start, nanoseconds since the epoch.
        topics: The native topic scheme (its prefix).
        formats: Only publish for stations whose devices speak these formats (None: all).
            The models still include every station, so rivers flow the same.

    Raises:
        ScenarioError: The scenario does not fit the registry.
        EncodingError: A station's device cannot be simulated.
    """
    check_scenario(scenario, registry, scenario.name or "<scenario>")
    topics = topics or TopicScheme()
    seed = scenario.seed
    truth = scenario_truth(scenario, registry, start_ns)
    grid = truth.grid
    events = flood_events(scenario)
    senders = {s: resolve_sender(registry, s, topics) for s in scenario.station_ids}
    if formats is not None:
        senders = {s: sender for s, sender in senders.items() if sender.format in formats}
    faults = scenario.fault_specs()
    rain: dict[str, FloatArray] = {}
    samples: dict[str, Samples] = {}
    messages: list[Outgoing] = []
    records: list[FaultRecord] = []
    for station_id, sender in senders.items():
        station = registry.get(station_id)
        assert station is not None  # check_scenario saw to it
        entry = scenario.station(station_id)
        rain[station_id] = station_rain(registry, station_id, events, grid, seed)
        device = DeviceModel.for_format(sender.format)
        if entry.noise_cm is not None:
            device = replace(device, sensor=Sensor(entry.noise_cm, device.sensor.resolution_cm))
        level = truth.levels_cm.get(station_id)
        warning = (
            warning_levels(level, station.thresholds, grid)
            if level is not None and station.thresholds
            else None
        )
        schedule = Schedule(
            entry.report_every_s or float(station.interval_s),
            entry.alert_report_every_s or scenario.alert_report_every_s,
        )
        metrics = {name: (spec.min, spec.max) for name, spec in station.metrics.items()}
        sampled = sample_station(
            station_id,
            metrics,
            grid,
            report_indices(grid, schedule, warning, seed, station_id),
            device=device,
            seed=seed,
            longitude=station.longitude,
            level_cm=level,
            rain_per_step_mm=rain[station_id],
        )
        metric = LEVEL_METRIC if LEVEL_METRIC in sampled.values else RAIN_METRIC
        sampled, value_records = apply_value_faults(sampled, faults, metric, metrics[metric], seed)
        samples[station_id] = sampled
        records.extend(value_records)
        readings = _readings(sampled, sender, seed)
        levels = sampled.values.get(LEVEL_METRIC)
        outgoing, delivery_records = plan_deliveries(
            [(float(t), r) for t, r in zip(sampled.times_s, readings, strict=True)],
            sender,
            faults,
            seed,
            latency_s=LATENCY_S[sender.format],
            levels_cm=None if levels is None else [float(v) for v in levels],
        )
        messages.extend(outgoing)
        records.extend(delivery_records)
        if sender.format == "chirpstack":
            messages.extend(_status_events(sampled, readings, sender))
    for fault in faults:
        if fault.kind == "malformed" and fault.station in senders:
            station = registry.get(fault.station)
            assert station is not None
            assert fault.payload is not None
            metric = next(m for m in (LEVEL_METRIC, RAIN_METRIC) if m in station.metrics)
            spec = station.metrics[metric]
            for number in range(fault.count):
                at_s = fault.at_s + 60.0 * number
                outgoing_one, record = malformed_message(
                    fault.payload,
                    senders[fault.station],
                    at_s=at_s,
                    ts_ms=start_ns // 1_000_000 + round(at_s * 1000),
                    seq=number,
                    metric=metric,
                    metric_range=(spec.min, spec.max),
                )
                messages.append(outgoing_one)
                records.append(record)
        elif fault.kind == "spoof" and fault.station in senders and fault.target in senders:
            spoofer = senders[fault.station]
            own = samples[fault.station]
            for number in range(fault.count):
                at_s = fault.at_s + 60.0 * number
                index = int(np.argmin(np.abs(own.times_s - at_s)))
                reading = DeviceReading(
                    fault.station,
                    start_ns // 1_000_000 + round(at_s * 1000),
                    {name: float(values[index]) for name, values in own.values.items()},
                    seq=number,
                )
                outgoing_one, record = spoof_message(spoofer, senders[fault.target], at_s, reading)
                messages.append(outgoing_one)
                records.append(record)
    ordered = [replace(m, order=i) for i, m in enumerate(messages)]
    ordered.sort(key=lambda m: (m.at_s, m.order))
    return Plan(scenario, grid, truth, rain, samples, senders, ordered, records)


def _readings(samples: Samples, sender: Sender, seed: int) -> list[DeviceReading]:
    """One :class:`DeviceReading` per report, with the device's counter and quirks."""
    rng = stream(seed, samples.station, "counter")
    first_seq = int(rng.integers(1, 50_000))
    as_text = stream(seed, samples.station, "battery-text").random(len(samples))
    lorawan = sender.format in {"ttn", "chirpstack"}
    names = list(samples.values)
    columns = [samples.values[name] for name in names]
    readings = []
    for index in range(len(samples)):
        values = {name: float(column[index]) for name, column in zip(names, columns, strict=True)}
        readings.append(
            DeviceReading(
                samples.station,
                int(samples.ts_ms[index]),
                values,
                seq=first_seq + index,
                battery_text=lorawan and bool(as_text[index] < BATTERY_TEXT_SHARE),
            )
        )
    return readings


def _status_events(
    samples: Samples, readings: list[DeviceReading], sender: Sender
) -> list[Outgoing]:
    """A ChirpStack status event after the first uplink of each day, at that uplink's time."""
    events: list[Outgoing] = []
    next_s = 0.0
    for time_s, reading in zip(samples.times_s, readings, strict=True):
        if time_s < next_s:
            continue
        next_s = float(time_s) + STATUS_EVERY_S
        battery = reading.values.get("battery_pct", 100.0)
        snr = reading.values.get("snr_db", 5.0)
        # The link margin is the demodulation floor's distance: SNR above SF10's -15 dB limit.
        message = encode_chirpstack_status(
            sender, reading.ts_ms, battery, round(snr + 15), reading.counter
        )
        events.append(
            Outgoing(
                float(time_s) + LATENCY_S["chirpstack"] + 0.5, sender.station, message, fault=None
            )
        )
    return events

"""Faults on demand, each recorded with what the ingest side is expected to make of it.

Three kinds of fault, applied at three stages of a run:

* **value faults** change what a sensor reports; the readings are still valid and stored:
  ``noise`` (extra Gaussian noise), ``spike`` (single wild readings, e.g. an echo off debris,
  kept within the metric's range), ``flatline`` (a stuck sensor repeating one value);
* **delivery faults** change when and how often readings arrive: ``dropout`` (silence: the
  readings are never sent), ``backlog`` (a logger cut off from the network keeps its readings and
  sends them all when it reconnects, late, out of order, as one native array message),
  ``duplicate`` (the same message published twice; stored once);
* **injected messages**: ``malformed`` payloads of a :data:`MALFORMED` kind, each rejected
  with a known reason, and ``spoof`` (a device publishing on another station's topic; its
  payload names its own station, so it is rejected as ``station_mismatch``, or refused by the
  broker where ACLs are in force).

Malformed and spoofed messages are native JSON: the native decoder's reasons are the contract
(:mod:`devices.formats.native`), so the expected rejection of each is exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from devices.readings import Reason
from simulators.encoding import DeviceReading, Encoded, Sender, encode, encode_native
from simulators.models import FloatArray, Samples, stream

FaultKind = Literal[
    "noise", "spike", "flatline", "dropout", "backlog", "duplicate", "malformed", "spoof"
]
VALUE_FAULTS = frozenset({"noise", "spike", "flatline"})
DELIVERY_FAULTS = frozenset({"dropout", "backlog", "duplicate"})
INJECTED_FAULTS = frozenset({"malformed", "spoof"})
NATIVE_ONLY_FAULTS = frozenset({"backlog", "malformed", "spoof"})
"""Faults whose messages are native JSON: the station (and a spoof's target) must be native."""

Outcome = Literal["stored", "deduplicated", "not_sent", "delivered_late", "rejected"]

DEFAULT_OVERSIZED_BYTES = 70_000
"""Above the ingest default of 64 KiB (``validation.max_payload_bytes``)."""
FUTURE_OFFSET_MS = 400 * 86_400_000
"""Far enough ahead of any clock that the run is allowed to use (runs start within a year)."""


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault to inject.

    Attributes:
        kind: What goes wrong.
        station: The station (device) it happens to.
        at_s: When it starts, seconds after the run's start.
        duration_s: How long it lasts (value and delivery faults).
        count: How many (spikes, duplicates, malformed or spoofed messages).
        magnitude: Noise standard deviation or spike height, in the metric's unit.
        payload: The malformed kind, one of :data:`MALFORMED`.
        target: The station whose topic a spoofing device publishes on.
    """

    kind: FaultKind
    station: str
    at_s: float
    duration_s: float = 0.0
    count: int = 1
    magnitude: float = 0.0
    payload: str | None = None
    target: str | None = None

    def covers(self, times_s: FloatArray) -> np.ndarray[tuple[int], np.dtype[np.bool_]]:
        """Which of these times fall inside the fault's window ``[at, at + duration)``."""
        mask: np.ndarray[tuple[int], np.dtype[np.bool_]] = (times_s >= self.at_s) & (
            times_s < self.at_s + self.duration_s
        )
        return mask


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """What was injected and what the ingest side should do with it.

    Attributes:
        kind: The fault.
        station: The station concerned (for a spoof, the device's own station).
        at_s: When it was injected (sim seconds after the start).
        readings: How many readings it touched (or messages it injected).
        outcome: ``stored`` (valid, stored as sent), ``deduplicated`` (sent twice, stored
            once), ``not_sent`` (silence), ``delivered_late`` (stored, arriving late) or
            ``rejected``.
        reason: For ``rejected``: the reason tag the ``rejected`` measurement will carry.
        detail: A sentence for people.
    """

    kind: str
    station: str
    at_s: float
    readings: int
    outcome: Outcome
    reason: str | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message the run will publish.

    Attributes:
        at_s: When, in sim seconds after the start.
        station: The station whose topic (or device) it concerns.
        message: Topic, payload, account and the readings it stores.
        rejections: The reasons the ingest side will record for it, one per rejection.
        fault: The fault that produced or altered it, if any.
        level_cm: The level it reports, for displays.
    """

    at_s: float
    station: str
    message: Encoded
    rejections: tuple[str, ...] = ()
    fault: str | None = None
    level_cm: float | None = None
    order: int = field(default=0, compare=False)


# -- value faults -------------------------------------------------------------------------------


def apply_value_faults(
    samples: Samples,
    faults: Sequence[Fault],
    metric: str,
    metric_range: tuple[float, float],
    seed: int,
) -> tuple[Samples, list[FaultRecord]]:
    """Apply noise, spikes and flatlines to one station's ``metric``.

    The results stay within ``metric_range``: these readings are wrong but valid, and the ingest
    side stores them (catching them is the job of quality checks and alert rules).

    Returns:
        The altered samples and one record per fault.
    """
    values = samples.values.get(metric)
    if values is None:
        return samples, []
    altered = values.copy()
    records: list[FaultRecord] = []
    for number, fault in enumerate(faults):
        if fault.kind not in VALUE_FAULTS or fault.station != samples.station:
            continue
        rng = stream(seed, samples.station, "fault", number)
        window = np.flatnonzero(fault.covers(samples.times_s))
        if fault.kind == "noise":
            altered[window] += rng.normal(0, fault.magnitude or 5.0, size=len(window))
            detail = f"noise sd={fault.magnitude or 5.0:g} on {len(window)} readings"
            touched = len(window)
        elif fault.kind == "spike":
            picks = rng.choice(window, size=min(fault.count, len(window)), replace=False)
            signs = rng.choice([-1.0, 1.0], size=len(picks))
            altered[picks] += signs * (fault.magnitude or 150.0)
            detail = f"{len(picks)} spikes of ±{fault.magnitude or 150.0:g}"
            touched = len(picks)
        else:
            if len(window):
                altered[window] = altered[window[0]]
            detail = (
                f"stuck at {altered[window[0]]:g} for {len(window)} readings"
                if len(window)
                else "no reading in the window"
            )
            touched = len(window)
        records.append(
            FaultRecord(fault.kind, samples.station, fault.at_s, touched, "stored", None, detail)
        )
    low, high = metric_range
    values_out = dict(samples.values)
    values_out[metric] = np.clip(np.round(altered, 2), low, high)
    return replace(samples, values=values_out), records


# -- delivery faults ----------------------------------------------------------------------------

RECONNECT_DELAY_S = 45.0
"""A logger back on the network sends its backlog this long after the outage ends."""
REDELIVERY_DELAY_S = 20.0
"""A duplicate follows its original this much later (a publish retried after a lost PUBACK)."""


def plan_deliveries(
    readings: Sequence[tuple[float, DeviceReading]],
    sender: Sender,
    faults: Sequence[Fault],
    seed: int,
    *,
    latency_s: float = 2.0,
    levels_cm: Sequence[float | None] | None = None,
) -> tuple[list[Outgoing], list[FaultRecord]]:
    """Turn one station's readings into messages, with its dropouts, backlogs and duplicates.

    Args:
        readings: (true time in sim seconds, reading), in time order.
        sender: The station's sender.
        faults: The run's faults; only this station's delivery faults apply.
        seed: The run's seed.
        latency_s: Delay from measuring to publishing.
        levels_cm: The level of each reading, for displays.

    Returns:
        The messages and one record per fault.
    """
    station = sender.station
    mine = [f for f in faults if f.kind in DELIVERY_FAULTS and f.station == station]
    times = np.asarray([t for t, _ in readings], dtype=np.float64)
    silenced = np.zeros(len(readings), dtype=bool)
    withheld: list[tuple[Fault, np.ndarray[tuple[int], np.dtype[np.int64]]]] = []
    records: list[FaultRecord] = []
    for fault in mine:
        window = fault.covers(times) & ~silenced
        if fault.kind == "dropout":
            silenced |= window
            records.append(
                FaultRecord(
                    "dropout",
                    station,
                    fault.at_s,
                    int(window.sum()),
                    "not_sent",
                    None,
                    f"silent for {fault.duration_s:g} s",
                )
            )
        elif fault.kind == "backlog":
            silenced |= window
            withheld.append((fault, np.flatnonzero(window)))
    outgoing: list[Outgoing] = []
    for index, (time_s, reading) in enumerate(readings):
        if silenced[index]:
            continue
        level = levels_cm[index] if levels_cm is not None else None
        message = encode(reading, sender)
        outgoing.append(
            Outgoing(time_s + latency_s, station, message, message.rejections, level_cm=level)
        )
    for number, (fault, indices) in enumerate(withheld):
        if not len(indices):
            continue
        rng = stream(seed, station, "backlog", number)
        # A logger flushes its store in whatever order its memory pages come back.
        order = rng.permutation(indices)
        batch = [readings[int(i)][1] for i in order]
        message = encode_native(batch, sender)
        at_s = fault.at_s + fault.duration_s + RECONNECT_DELAY_S
        outgoing.append(Outgoing(at_s, station, message, fault="backlog"))
        records.append(
            FaultRecord(
                "backlog",
                station,
                fault.at_s,
                len(batch),
                "delivered_late",
                None,
                f"{len(batch)} readings delivered {RECONNECT_DELAY_S:g} s after the outage, "
                "out of order, in one message",
            )
        )
    for number, fault in enumerate(f for f in mine if f.kind == "duplicate"):
        rng = stream(seed, station, "duplicate", number)
        end_s = fault.at_s + max(fault.duration_s, 1.0)
        candidates = [
            i for i, o in enumerate(outgoing) if o.fault is None and fault.at_s <= o.at_s < end_s
        ]
        picks: list[int] = []
        if candidates:
            chosen = rng.choice(candidates, size=min(fault.count, len(candidates)), replace=False)
            picks = sorted(int(i) for i in chosen)
        for pick in picks:
            original = outgoing[pick]
            outgoing.append(
                replace(original, at_s=original.at_s + REDELIVERY_DELAY_S, fault="duplicate")
            )
        records.append(
            FaultRecord(
                "duplicate",
                station,
                fault.at_s,
                len(picks),
                "deduplicated",
                None,
                f"{len(picks)} messages published twice",
            )
        )
    return outgoing, records


# -- injected messages --------------------------------------------------------------------------

Builder = Callable[[int, int, str, tuple[float, float]], bytes]


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _oversized(ts_ms: int, seq: int, metric: str, span: tuple[float, float]) -> bytes:
    body = _json({"ts": ts_ms, "seq": seq, metric: span[0], "note": ""})
    return body[:-2] + b"x" * (DEFAULT_OVERSIZED_BYTES - len(body)) + b'"}'


MALFORMED: dict[str, tuple[Reason, Builder]] = {
    "invalid_json": (
        Reason.INVALID_JSON,
        lambda ts, seq, metric, span: f'{{"ts": {ts}, "seq": {seq}, "{metric}": '.encode(),
    ),
    "not_utf8": (Reason.UNDECODABLE, lambda ts, seq, metric, span: b"\xc3\x28\xa0\xa1"),
    "nan": (
        Reason.NON_FINITE,
        lambda ts, seq, metric, span: f'{{"ts": {ts}, "seq": {seq}, "{metric}": NaN}}'.encode(),
    ),
    "not_an_object": (Reason.BAD_SHAPE, lambda ts, seq, metric, span: b'"just a string"'),
    "wrong_type": (
        Reason.WRONG_TYPE,
        lambda ts, seq, metric, span: _json({"ts": ts, "seq": seq, metric: f"{span[0]:g}"}),
    ),
    "out_of_range": (
        Reason.OUT_OF_RANGE,
        lambda ts, seq, metric, span: _json(
            {"ts": ts, "seq": seq, metric: span[1] + max(span[1] - span[0], 1.0)}
        ),
    ),
    "unknown_metric": (
        Reason.UNKNOWN_METRIC,
        lambda ts, seq, metric, span: _json({"ts": ts, "seq": seq, "humidity_pct": 80}),
    ),
    "no_metrics": (Reason.NO_METRICS, lambda ts, seq, metric, span: _json({"ts": ts, "seq": seq})),
    "missing_ts": (
        Reason.MISSING_TIMESTAMP,
        lambda ts, seq, metric, span: _json({"seq": seq, metric: span[0]}),
    ),
    "bad_ts": (
        Reason.BAD_TIMESTAMP,
        lambda ts, seq, metric, span: _json(
            {"ts": "24/11/2026 16:00", "seq": seq, metric: span[0]}
        ),
    ),
    "future_ts": (
        Reason.TIMESTAMP_IN_FUTURE,
        lambda ts, seq, metric, span: _json(
            {"ts": ts + FUTURE_OFFSET_MS, "seq": seq, metric: span[0]}
        ),
    ),
    "oversized": (Reason.PAYLOAD_TOO_LARGE, _oversized),
}
"""Malformed payload kinds → (the reason the ingest side rejects it with, payload builder).

Each message is rejected exactly once and stores nothing: a wrong or out-of-range value is the
message's only metric, so no partial reading survives.
"""


def malformed_message(
    kind: str,
    sender: Sender,
    *,
    at_s: float,
    ts_ms: int,
    seq: int,
    metric: str,
    metric_range: tuple[float, float],
) -> tuple[Outgoing, FaultRecord]:
    """A malformed native message on the sender's topic, and its record."""
    if kind not in MALFORMED:
        raise ValueError(f"unknown malformed kind {kind!r}; known: {', '.join(MALFORMED)}")
    reason, build = MALFORMED[kind]
    payload = build(ts_ms, seq, metric, metric_range)
    message = Encoded(sender.topic, payload, sender.account, ())
    outgoing = Outgoing(at_s, sender.station, message, (reason.value,), fault=f"malformed:{kind}")
    record = FaultRecord(
        "malformed", sender.station, at_s, 1, "rejected", reason.value, f"{kind} payload"
    )
    return outgoing, record


def spoof_message(
    spoofer: Sender, target: Sender, at_s: float, reading: DeviceReading
) -> tuple[Outgoing, FaultRecord]:
    """A device publishing its own reading on another station's topic.

    The payload names the device's own station (as a native logger configured with its station
    id does), so the ingest side refuses it as ``station_mismatch``. A broker with per-device
    ACLs refuses it before that; the runner records such refusals separately.
    """
    document: dict[str, object] = {
        "station": spoofer.station,
        "ts": reading.ts_ms,
        "seq": reading.seq,
    }
    document.update(reading.values)
    message = Encoded(target.topic, _json(document), spoofer.account, ())
    outgoing = Outgoing(
        at_s, target.station, message, (Reason.STATION_MISMATCH.value,), fault="spoof"
    )
    record = FaultRecord(
        "spoof",
        spoofer.station,
        at_s,
        1,
        "rejected",
        Reason.STATION_MISMATCH.value,
        f"{spoofer.account or spoofer.station} published on {target.station}'s topic",
    )
    return outgoing, record


def expected_rejections(outgoing: Sequence[Outgoing]) -> Mapping[str, int]:
    """Rejections per reason that these messages will cause."""
    counts: dict[str, int] = {}
    for message in outgoing:
        for reason in message.rejections:
            counts[reason] = counts.get(reason, 0) + 1
    return counts

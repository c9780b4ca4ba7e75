"""The live status line of ``siaga up``: readings/s, stations reporting, incidents, spool depth.

Parsing and formatting are pure; the reader only fetches the worker's ``/metrics`` text.
"""

from __future__ import annotations

import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

_METRIC_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})? (\S+)")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text exposition → ``{name{labels}: value}`` (comments and junk skipped).

    The one parser of Siaga's own ``/metrics``: ``siaga up``'s status line and the benchmarks
    read the workers through it. Label values may hold spaces; a trailing timestamp is ignored.
    """
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC_LINE.match(line)
        if match is None:
            continue
        try:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
        except ValueError:
            continue
    return samples


def metric_total(samples: dict[str, float], name: str) -> float:
    """The sum of a metric over all its label sets (0 when absent)."""
    return sum(
        value
        for key, value in samples.items()
        if key == name or key.startswith(name + "{")
        if not math.isnan(value)
    )


@dataclass(frozen=True, slots=True)
class Status:
    """One reading of the platform's vital signs.

    Attributes:
        readings_stored: Readings the worker made durable since it started.
        rejections: Inputs rejected since it started.
        spool_batches: Batches waiting in the spool for storage.
        storage_up: Whether the last write to storage succeeded.
        stations_reporting: Stations with a stored reading.
        active_incidents: Incidents not yet resolved.
        refused_by_storage: The kinds of lasting storage failure (``auth``, ``not_found``,
            ``refused``) while the worker is not ready: storage refuses writes and a retry
            cannot fix it.
    """

    readings_stored: float
    rejections: float
    spool_batches: float
    storage_up: bool
    stations_reporting: int | None = None
    active_incidents: int | None = None
    refused_by_storage: tuple[str, ...] = ()


def _labelled(samples: dict[str, float], name: str, label: str) -> dict[str, float]:
    prefix = f'{name}{{{label}="'
    return {
        key[len(prefix) :].split('"', 1)[0]: value
        for key, value in samples.items()
        if key.startswith(prefix)
    }


def status_from_metrics(samples: dict[str, float]) -> Status:
    """The worker's part of the status, from its metrics."""
    not_ready = samples.get("siaga_ready", 1.0) < 1
    kinds = _labelled(samples, "siaga_storage_errors_total", "kind")
    refused = tuple(
        sorted(kind for kind, count in kinds.items() if count > 0 and kind != "unavailable")
    )
    return Status(
        readings_stored=metric_total(samples, "siaga_readings_stored_total"),
        rejections=metric_total(samples, "siaga_rejections_total"),
        spool_batches=metric_total(samples, "siaga_spool_records"),
        storage_up=metric_total(samples, "siaga_storage_up") >= 1,
        refused_by_storage=refused if not_ready else (),
    )


def status_line(previous: Status | None, current: Status, elapsed_s: float) -> str:
    """One line for people, e.g. ``412 readings/s · 6 stations reporting · 2 active incidents``."""
    rate = 0.0
    if previous is not None and elapsed_s > 0:
        rate = max(current.readings_stored - previous.readings_stored, 0) / elapsed_s
    parts = [f"{rate:,.0f} readings/s", f"{current.readings_stored:,.0f} stored"]
    if current.stations_reporting is not None:
        parts.append(f"{current.stations_reporting} stations reporting")
    if current.active_incidents is not None:
        parts.append(f"{current.active_incidents} active incidents")
    parts.append(f"{current.rejections:,.0f} rejected")
    parts.append(f"spool {current.spool_batches:,.0f} batches")
    if current.refused_by_storage:
        kinds = ", ".join(current.refused_by_storage)
        parts.append(f"STORAGE REFUSES WRITES ({kinds}; spooling; see the ingest log)")
    elif not current.storage_up and current.readings_stored:
        parts.append("STORAGE DOWN (spooling)")
    return " · ".join(parts)


def read_metrics(url: str, timeout_s: float = 2.0) -> dict[str, float] | None:
    """Fetch and parse a ``/metrics`` page; None when it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return parse_metrics(response.read().decode("utf-8", errors="replace"))
    except (urllib.error.URLError, OSError):
        return None

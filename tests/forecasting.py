"""A synthetic river for the forecast tests: an upstream gauge whose waves reach the one below."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from devices.readings import Reading
from tests import alerting

H = alerting.HOUR_NS
STEP = 15 * alerting.MINUTE_NS

RIVER = alerting.registry(
    alerting.station("hulu", waspada=300, siaga=400, awas=500, downstream=[("hilir", 180)]),
    alerting.station("hilir", waspada=150, siaga=200, awas=250),
)


def waves(hours: float, crests: Sequence[tuple[float, float]], seed: int) -> list[Reading]:
    """Readings every 15 min: hulu with flood waves (time in hours, height cm), hilir 0.9 of
    hulu 3 h later, each with a little noise."""
    rng = np.random.default_rng(seed)
    n = int(hours * 4)
    t = np.arange(n + 12) / 4.0
    hulu = 100 + 3 * np.sin(t / 5) + sum(h * np.exp(-(((t - c) / 4) ** 2)) for c, h in crests)
    readings = []
    for i in range(n):
        at = alerting.T0 + i * STEP
        upstream = float(hulu[i + 12]) + rng.normal(0, 0.5)
        downstream = 0.9 * float(hulu[i]) + 20 + rng.normal(0, 0.5)
        readings.append(Reading("hulu", at + 3 * H, {"water_level_cm": round(upstream, 1)}))
        readings.append(Reading("hilir", at + 3 * H, {"water_level_cm": round(downstream, 1)}))
    return readings


HISTORY_CRESTS = [
    (d * 24 + 10, h) for d, h in enumerate([60, 0, 150, 0, 30, 220, 0, 90, 0, 180] * 4)
]

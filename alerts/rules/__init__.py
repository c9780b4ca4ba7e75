"""Alert rules: one module per kind, each a pure function ``(state, reading) -> (state, events)``.

``level`` (thresholds with hysteresis), ``rate`` (rise and fall over event time), ``upstream``
(early warnings down the river), ``nodata`` (silent stations, grouped per regency) and
``faults`` (flatline, spike, battery). Their settings live in :mod:`alerts.rules.config`.
The engine (:mod:`alerts.engine`) owns the states and calls the rules; nothing here does I/O.
"""

LEVEL_METRIC = "water_level_cm"
"""The metric the level, rate and upstream rules judge."""

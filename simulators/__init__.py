"""Field devices in software: river and rain gauges, floods, faults, fleets and replays.

Depends on :mod:`devices` only. See ``simulators/README.md`` and ``siaga simulate --help``.
"""

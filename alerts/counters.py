"""What the engine's loop did: counts and times (:class:`LoopCounters`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoopCounters:
    """What the loop did (read by tests and the benchmark)."""

    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    events: int = 0
    transitions: int = 0
    repeated_transitions: int = 0
    commits: int = 0
    commit_failures: int = 0
    acked: int = 0
    alerts_written: int = 0
    alert_write_failures: int = 0
    health_written: int = 0
    commit_seconds: list[float] = field(default_factory=list)
    evaluate_s: float = 0.0
    journal_s: float = 0.0
    state_s: float = 0.0
    spool_s: float = 0.0
    state_save_s: float = 0.0
    journal_entries: int = 0
    snapshots: int = 0
    snapshot_failures: int = 0
    replayed_readings: int = 0
    companion_restarts: Counter[str] = field(default_factory=Counter)
    """Restarts of each companion task (by name) after it raised."""

"""Inhibition: a graver alert mutes a lesser one about the same thing.

Defaults: an AWAS level incident mutes WASPADA notices for the same station (an upstream
warning that the water is coming adds nothing when the gauge already reads AWAS); a
regency-wide outage mutes its stations' own no-data notices.

An alert only ever mutes alerts of its own regency, whatever a rule's ``equal`` labels say
(regencies are tenants: one regency's alert must not silence another's).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field

from alerts.pipeline.model import Labels


class InhibitRule(BaseModel):
    """While a firing alert matches ``source``, notices matching ``target`` with the same
    ``equal`` labels are muted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: dict[str, str] = Field(min_length=1)
    target: dict[str, str] = Field(min_length=1)
    equal: list[str] = Field(min_length=1)

    def mutes(self, source: Labels, target: Labels) -> bool:
        """Whether ``source`` (a firing alert) mutes ``target``."""
        key = self.key(target)
        return (
            key is not None
            and self.is_source(source)
            and self.is_target(target)
            and self.key(source) == key
        )

    def is_source(self, labels: Labels) -> bool:
        """Whether ``labels`` match ``source``."""
        return all(labels.get(k) == v for k, v in self.source.items())

    def is_target(self, labels: Labels) -> bool:
        """Whether ``labels`` match ``target``."""
        return all(labels.get(k) == v for k, v in self.target.items())

    def key(self, labels: Labels) -> tuple[str, ...] | None:
        """The ``equal`` labels' values and the regency (None when an ``equal`` label is
        missing or empty: nothing to match)."""
        values = tuple(labels.get(k, "") for k in self.equal)
        return None if "" in values else (*values, labels.get("regency", ""))


DEFAULT_INHIBIT_RULES: tuple[InhibitRule, ...] = (
    InhibitRule(
        source={"kind": "level", "severity": "AWAS", "state": "firing"},
        target={"severity": "WASPADA", "state": "firing"},
        equal=["station"],
    ),
    InhibitRule(
        source={"kind": "no_data", "scope": "regency", "state": "firing"},
        target={"kind": "no_data", "scope": "station"},
        equal=["regency"],
    ),
)


class Inhibition:
    """The firing alerts indexed by each rule's ``equal`` labels.

    Whether a notice is muted then costs one lookup per rule, not a scan of every firing alert:
    a flush of thousands of notices during a national flood, each checked against thousands of
    firing alerts, took seconds on the engine's loop.

    Args:
        firing: The labels of the alerts firing now.
        rules: The inhibition rules in force.
    """

    def __init__(self, firing: Iterable[Labels], rules: Iterable[InhibitRule]) -> None:
        self._rules = tuple(rules)
        self._sources: list[Counter[tuple[str, ...]]] = [Counter() for _ in self._rules]
        self._members: set[int] = set()
        self.add(firing)

    def add(self, firing: Iterable[Labels]) -> None:
        """More alerts firing."""
        self._count(firing, 1)

    def remove(self, firing: Iterable[Labels]) -> None:
        """Alerts given to :meth:`add` that no longer count."""
        self._count(firing, -1)

    def _count(self, firing: Iterable[Labels], sign: int) -> None:
        for labels in firing:
            if sign > 0:
                self._members.add(id(labels))
            else:
                self._members.discard(id(labels))
            for rule, sources in zip(self._rules, self._sources, strict=True):
                key = rule.key(labels)
                if key is not None and rule.is_source(labels):
                    sources[key] += sign

    def mutes(self, target: Labels) -> InhibitRule | None:
        """The rule that mutes ``target``, or None (an alert never mutes itself)."""
        for rule, sources in zip(self._rules, self._sources, strict=True):
            if not rule.is_target(target):
                continue
            key = rule.key(target)
            if key is None:
                continue
            count = sources[key]  # (a Counter: 0 when absent, nothing inserted)
            if id(target) in self._members and rule.is_source(target):
                count -= 1
            if count > 0:
                return rule
        return None


def inhibited(
    target: Labels, firing: Iterable[Labels], rules: Iterable[InhibitRule]
) -> InhibitRule | None:
    """The rule that mutes ``target`` given the ``firing`` alerts, or None."""
    return Inhibition(firing, rules).mutes(target)

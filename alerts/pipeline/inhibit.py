"""Inhibition: a graver alert mutes a lesser one about the same thing.

Defaults: an AWAS level incident mutes WASPADA notices for the same station (an upstream
warning that the water is coming adds nothing when the gauge already reads AWAS); a
regency-wide outage mutes its stations' own no-data notices.
"""

from __future__ import annotations

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
        return (
            all(source.get(k) == v for k, v in self.source.items())
            and all(target.get(k) == v for k, v in self.target.items())
            and all(source.get(k, "") == target.get(k, "") != "" for k in self.equal)
        )


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


def inhibited(
    target: Labels, firing: Iterable[Labels], rules: Iterable[InhibitRule]
) -> InhibitRule | None:
    """The rule that mutes ``target`` given the ``firing`` alerts, or None."""
    sources = list(firing)
    for rule in rules:
        if any(rule.mutes(source, target) for source in sources if source is not target):
            return rule
    return None

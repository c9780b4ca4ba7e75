"""Routing: which recipient groups hear about a notice, and on which of their channels."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.pipeline.model import Labels

ROUTE_LABELS = frozenset({"regency", "river", "station", "kind", "severity", "rule", "scope"})


class Route(BaseModel):
    """One route: when every matcher holds, the notice goes to ``groups``.

    Attributes:
        match: Label → accepted values (any of them); a missing label matches nothing.
        match_re: Label → a regular expression the whole value must match.
        groups: The recipient groups to notify.
        continue_: Also try the following routes (else the first match wins), as Alertmanager.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    match: dict[str, list[str]] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    groups: list[str] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue")

    @field_validator("match", "match_re")
    @classmethod
    def _known_labels(cls, matchers: dict[str, object]) -> dict[str, object]:
        unknown = set(matchers) - ROUTE_LABELS
        if unknown:
            raise ValueError(f"unknown labels {sorted(unknown)}; known: {sorted(ROUTE_LABELS)}")
        return matchers

    @field_validator("match_re")
    @classmethod
    def _compiles(cls, patterns: dict[str, str]) -> dict[str, str]:
        for label, pattern in patterns.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"match_re.{label}: {exc}") from None
        return patterns

    def matches(self, labels: Labels) -> bool:
        """Whether every matcher of this route holds for ``labels``."""
        for label, accepted in self.match.items():
            if labels.get(label, "") not in accepted:
                return False
        return all(
            re.fullmatch(pattern, labels.get(label, "")) is not None
            for label, pattern in self.match_re.items()
        )


def route(labels: Labels, routes: Sequence[Route], default: Sequence[str]) -> tuple[str, ...]:
    """The recipient groups for a notice, in route order, each once.

    The first matching route wins unless it says ``continue``; with no match the notice goes
    to ``default`` (so nothing is ever routed nowhere by omission).
    """
    groups: list[str] = []
    matched = False
    for candidate in routes:
        if candidate.matches(labels):
            matched = True
            groups.extend(g for g in candidate.groups if g not in groups)
            if not candidate.continue_:
                break
    if not matched:
        groups.extend(g for g in default if g not in groups)
    return tuple(groups)


def channels_for(channels: Mapping[str, bool], *, late: bool, page_late: bool) -> tuple[str, ...]:
    """The channels of a recipient that carry a notice.

    Args:
        channels: Channel name → whether it pages a phone (SMS, Telegram, WhatsApp).
        late: The notice comes from a store-and-forward backlog.
        page_late: Policy: page phones for late events too (default off).
    """
    return tuple(name for name, pages in channels.items() if not (late and pages and not page_late))

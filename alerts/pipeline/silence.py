"""Silences: people mute what they already know about (maintenance), for a while, with a reason.

A silence covers exactly the notices whose labels satisfy all its matchers, from its start
(inclusive) to its end (exclusive).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.pipeline.model import Labels


class Matcher(BaseModel):
    """One label condition: ``=`` equal, ``!=`` not equal, ``=~`` / ``!~`` whole-value regex."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    value: str = Field(max_length=500)
    op: Literal["=", "!=", "=~", "!~"] = "="

    @model_validator(mode="after")
    def _regex_compiles(self) -> Matcher:
        if self.op in {"=~", "!~"}:
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self.name}: {exc}") from None
        return self

    def matches(self, labels: Labels) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is the empty string)."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


class Silence(BaseModel):
    """A muting of matching notices between two moments.

    Attributes:
        id: The store's id (0 for one from the policy file).
        matchers: All must hold; at least one, so no silence mutes everything by accident.
        starts_ns: From this moment (inclusive).
        ends_ns: Until this moment (exclusive): silences always expire.
        created_by: Who made it.
        comment: Why (e.g. "gauge maintenance, BBWS ticket 123").
        regencies: The regencies whose notices it may mute, whatever its matchers say (a
            silence made by someone of a regency's scope); None: the whole deployment's.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int = 0
    matchers: list[Matcher] = Field(min_length=1)
    starts_ns: int
    ends_ns: int
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=2000)
    regencies: frozenset[str] | None = None

    @field_validator("matchers")
    @classmethod
    def _not_everything(cls, matchers: list[Matcher]) -> list[Matcher]:
        if all(m.op in {"=~", "!~"} and m.value in {".*", ""} for m in matchers):
            raise ValueError("a silence must name something: add an equality matcher")
        return matchers

    @model_validator(mode="after")
    def _ends_after_start(self) -> Silence:
        if self.ends_ns <= self.starts_ns:
            raise ValueError("a silence must end after it starts")
        return self

    def covers(self, labels: Labels, at_ns: int) -> bool:
        """Whether this silence mutes a notice with ``labels`` at ``at_ns``."""
        return (
            self.starts_ns <= at_ns < self.ends_ns
            and (self.regencies is None or labels.get("regency", "") in self.regencies)
            and all(matcher.matches(labels) for matcher in self.matchers)
        )


def silenced(labels: Labels, at_ns: int, silences: Iterable[Silence]) -> Silence | None:
    """The first silence that mutes ``labels`` at ``at_ns``, or None."""
    for silence in silences:
        if silence.covers(labels, at_ns):
            return silence
    return None

"""Escalation until acknowledged: nobody answered, so tell the next group, and keep reminding.

A chain is a list of steps (group, after minutes since the incident fired). Step 0 is usually
the group routing already reached. While the incident fires unacknowledged, each step comes due
at its time, and the highest step reached is reminded every ``reminder_min``. Acknowledgement
or resolution stops everything. What was already emitted is passed in (the store remembers it),
so a restart neither repeats nor skips a step.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

_NS_PER_MIN = 60 * 1_000_000_000


class EscalationStep(BaseModel):
    """Tell ``group`` once the incident has fired unacknowledged for ``after_min``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    group: str = Field(min_length=1)
    after_min: float = Field(ge=0)


class EscalationChain(BaseModel):
    """Who hears next when nobody acknowledges, and how often they are reminded."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: list[EscalationStep] = Field(min_length=1)
    reminder_min: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> EscalationChain:
        times = [step.after_min for step in self.steps]
        if times != sorted(times):
            raise ValueError("escalation steps must be in order of after_min")
        return self


@dataclass(frozen=True, slots=True)
class Escalation:
    """One escalation or reminder that is due.

    Attributes:
        step: The chain step (index into ``steps``).
        seq: 0 for the escalation itself, 1, 2, … for reminders of that step.
        group: Who to tell.
    """

    step: int
    seq: int
    group: str

    @property
    def reason(self) -> str:
        """``escalation`` or ``reminder``."""
        return "escalation" if self.seq == 0 else "reminder"


def escalations_due(
    chain: EscalationChain,
    *,
    firing_since_ns: int,
    now_ns: int,
    acknowledged: bool,
    resolved: bool,
    emitted: Set[tuple[int, int]],
    skip_first: bool = True,
) -> list[Escalation]:
    """What to send now for one incident.

    Args:
        chain: The incident's chain.
        firing_since_ns: When the incident started firing.
        now_ns: The clock.
        acknowledged: Someone acknowledged it: nothing more.
        resolved: It is over: nothing more.
        emitted: ``(step, seq)`` pairs already sent.
        skip_first: Step 0 is the ordinary routing's message, not sent again here.

    Only the latest reminder due is returned, so a long outage does not release a burst.
    """
    if acknowledged or resolved:
        return []
    elapsed = now_ns - firing_since_ns
    due: list[Escalation] = []
    reached = -1
    for index, step in enumerate(chain.steps):
        if elapsed < step.after_min * _NS_PER_MIN:
            break
        reached = index
        if (index == 0 and skip_first) or (index, 0) in emitted:
            continue
        due.append(Escalation(index, 0, step.group))
    if reached < 0 or chain.reminder_min is None:
        return due
    since_step = elapsed - chain.steps[reached].after_min * _NS_PER_MIN
    seq = int(since_step // (chain.reminder_min * _NS_PER_MIN))
    if seq >= 1 and (reached, seq) not in emitted:
        due.append(Escalation(reached, seq, chain.steps[reached].group))
    return due

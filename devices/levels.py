"""Flood warning levels: one canonical scale, many regional names, thresholds that change.

Indonesia's disaster agencies step Normal → Waspada → Siaga → Awas. Water gates number the same
idea differently: Jakarta's gates count down from Siaga 4 (normal) to Siaga 1 (highest), some
river basin offices count up from Siaga I to Siaga III. Siaga stores the canonical
:class:`Level` and renders it through a station's label scheme; a bare number is never stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import IntEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Level(IntEnum):
    """The canonical warning level, ordered by danger."""

    NORMAL = 0
    WASPADA = 1
    SIAGA = 2
    AWAS = 3


LABEL_SCHEMES: dict[str, dict[Level, str]] = {
    "bnpb": {
        Level.NORMAL: "Normal",
        Level.WASPADA: "Waspada",
        Level.SIAGA: "Siaga",
        Level.AWAS: "Awas",
    },
    "jakarta-gates": {
        Level.NORMAL: "Siaga 4",
        Level.WASPADA: "Siaga 3",
        Level.SIAGA: "Siaga 2",
        Level.AWAS: "Siaga 1",
    },
    "basin-roman": {
        Level.NORMAL: "Normal",
        Level.WASPADA: "Siaga I",
        Level.SIAGA: "Siaga II",
        Level.AWAS: "Siaga III",
    },
    "colours": {
        Level.NORMAL: "Normal",
        Level.WASPADA: "Siaga Kuning",
        Level.SIAGA: "Siaga Oranye",
        Level.AWAS: "Siaga Merah",
    },
}


def label(level: Level, scheme: str) -> str:
    """The regional name of a level, e.g. ``label(Level.AWAS, "jakarta-gates") == "Siaga 1"``."""
    return LABEL_SCHEMES[scheme][level]


class Thresholds(BaseModel):
    """The water levels (cm) at which each warning level begins, valid from a moment on.

    Attributes:
        valid_from: When this version took effect (None: since always).
        waspada_cm: Start of WASPADA.
        siaga_cm: Start of SIAGA.
        awas_cm: Start of AWAS.
        inclusive: Whether a level equal to a threshold already counts as the higher level
            (``≥``, e.g. Manggarai's "≥ 950") or only above it (``>``, e.g. Katulampa's "> 200").
        scheme: The label scheme operators in this region use.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    valid_from: datetime | None = None
    waspada_cm: float = Field(ge=0)
    siaga_cm: float = Field(ge=0)
    awas_cm: float = Field(ge=0)
    inclusive: bool = True
    scheme: str = "bnpb"

    @field_validator("scheme")
    @classmethod
    def _known_scheme(cls, scheme: str) -> str:
        if scheme not in LABEL_SCHEMES:
            raise ValueError(f"unknown label scheme {scheme!r}; known: {sorted(LABEL_SCHEMES)}")
        return scheme

    @field_validator("valid_from")
    @classmethod
    def _aware(cls, moment: datetime | None) -> datetime | None:
        if moment is not None and moment.utcoffset() is None:
            raise ValueError("valid_from needs a UTC offset (e.g. 2025-01-01T00:00:00+07:00)")
        return moment

    @model_validator(mode="after")
    def _ascending(self) -> Thresholds:
        if not self.waspada_cm < self.siaga_cm < self.awas_cm:
            raise ValueError("thresholds must rise: waspada_cm < siaga_cm < awas_cm")
        return self

    @property
    def valid_from_ns(self) -> int:
        """``valid_from`` in nanoseconds since the epoch (the smallest int when unset)."""
        if self.valid_from is None:
            return -(2**63)
        return int(self.valid_from.timestamp()) * 1_000_000_000 + (
            self.valid_from.microsecond * 1000
        )

    def level_of(self, water_level_cm: float) -> Level:
        """The warning level of a water level under these thresholds."""
        level = Level.NORMAL
        for start, candidate in (
            (self.waspada_cm, Level.WASPADA),
            (self.siaga_cm, Level.SIAGA),
            (self.awas_cm, Level.AWAS),
        ):
            reached = water_level_cm >= start if self.inclusive else water_level_cm > start
            if reached:
                level = candidate
        return level


def thresholds_at(versions: Sequence[Thresholds], ts_ns: int) -> Thresholds | None:
    """The version in force at ``ts_ns``: the latest whose ``valid_from`` is not after it."""
    current: Thresholds | None = None
    for version in sorted(versions, key=lambda v: v.valid_from_ns):
        if version.valid_from_ns <= ts_ns:
            current = version
    return current


def level_at(versions: Sequence[Thresholds], water_level_cm: float, ts_ns: int) -> Level | None:
    """A reading's level judged by the thresholds valid at the reading's own time."""
    thresholds = thresholds_at(versions, ts_ns)
    return None if thresholds is None else thresholds.level_of(water_level_cm)

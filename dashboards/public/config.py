"""Which regencies publish a residents' page (``config/public.yaml``), and what each shows.

Nothing is public unless listed here with ``public: true``: a regency's flag, checked whenever
the page is built, so taking a regency off is one edit (the file is read again when it changes).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devices.stations import Station, StationRegistry
from ingest.errors import ConfigError

WATER_LEVEL = "water_level_cm"


class PublicRegency(BaseModel):
    """One regency's public page.

    Attributes:
        slug: The page's address (``/tulang-bawang/``).
        regency: The regency as the station registry names it.
        public: Published at all.
        title: The heading residents read.
        contact: Who to call (shown at the foot of the page).
        stations: Only these stations (default: every gauge of the regency with thresholds).
        hide: Never these (a gauge under repair, a private embankment sensor).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    regency: str = Field(min_length=1)
    public: bool = False
    title: str = Field(min_length=1, max_length=120)
    contact: str = Field(default="", max_length=200)
    stations: list[str] | None = None
    hide: list[str] = Field(default_factory=list)

    def shown(self, registry: StationRegistry) -> list[Station]:
        """The stations this page shows: river gauges of the regency with thresholds."""
        if not self.public:
            return []
        found = []
        for station in registry.stations():
            if station.regency != self.regency or station.id in self.hide:
                continue
            if self.stations is not None and station.id not in self.stations:
                continue
            if WATER_LEVEL in station.metrics and station.thresholds:
                found.append(station)
        return found


class PublicConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    regencies: list[PublicRegency] = Field(default_factory=list)

    def published(self) -> list[PublicRegency]:
        """The regencies with a page."""
        return [r for r in self.regencies if r.public]


def load_public(path: Path) -> PublicConfig:
    """Read ``config/public.yaml`` (an absent file publishes nothing).

    Raises:
        ConfigError: The file is not valid (the entry at fault is named).
    """
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return PublicConfig()
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    try:
        config = PublicConfig.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    slugs = [r.slug for r in config.regencies]
    if len(set(slugs)) != len(slugs):
        raise ConfigError(f"{path}: slugs repeat: {slugs}")
    return config

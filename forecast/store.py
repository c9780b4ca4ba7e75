"""Fitted models saved as versioned files: ``<dir>/<station>/v<N>.json``, the newest in force.

Files, not database rows: a model is read whole when the engine starts and written by one
explicit command (``siaga forecast fit``); it is never queried by parts. A directory keeps every
version with its training window and skill, readable and diffable as JSON, under the same data
directory as the rest of an installation, and the same whether incidents live in SQLite or
PostgreSQL. Each file is written to a temporary name and renamed, so a reader never sees half a
model. A hot-standby pair on two machines must share the directory (or copy it after a fit).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import orjson

from devices.errors import InputError
from forecast.models import FittedModel

_VERSION = re.compile(r"v(\d{4,})\.json")


class ModelStoreError(InputError):
    """A model file that cannot be read; the message names it."""


def versions(directory: Path, station: str) -> list[int]:
    """The versions saved for ``station``, oldest first."""
    folder = directory / station
    if not folder.is_dir():
        return []
    found = (_VERSION.fullmatch(p.name) for p in folder.iterdir())
    return sorted(int(m.group(1)) for m in found if m)


def save(directory: Path, models: Iterable[FittedModel]) -> list[FittedModel]:
    """Save each model as its station's next version; returns them with their versions."""
    saved = []
    for model in models:
        folder = directory / model.station
        folder.mkdir(parents=True, exist_ok=True)
        known = versions(directory, model.station)
        version = (known[-1] if known else 0) + 1
        numbered = FittedModel.from_dict({**model.to_dict(), "version": version})
        path = folder / f"v{version:04d}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(orjson.dumps(numbered.to_dict(), option=orjson.OPT_INDENT_2))
        os.replace(temporary, path)
        saved.append(numbered)
    return saved


def load(directory: Path, station: str, version: int | None = None) -> FittedModel | None:
    """A station's model: the given version, or the newest (None when there is none)."""
    if version is None:
        known = versions(directory, station)
        if not known:
            return None
        version = known[-1]
    path = directory / station / f"v{version:04d}.json"
    try:
        return FittedModel.from_dict(orjson.loads(path.read_bytes()))
    except FileNotFoundError:
        return None
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ModelStoreError(f"{path}: not a fitted model: {exc}") from None


def load_current(directory: Path) -> dict[str, FittedModel]:
    """Every station's newest model in ``directory`` (none when it does not exist)."""
    if not directory.is_dir():
        return {}
    found = {}
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        model = load(directory, folder.name)
        if model is not None:
            found[folder.name] = model
    return found


__all__ = ["ModelStoreError", "load", "load_current", "save", "versions"]

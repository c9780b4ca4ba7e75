"""One exception tree: every error class Siaga defines descends from SiagaError."""

from __future__ import annotations

import ast
import importlib

import pytest

from ingest.errors import (
    PermanentStorageError,
    RetryableStorageError,
    SiagaError,
    StorageVerdict,
    classify_storage_error,
)
from tests.conftest import REPO_ROOT

PACKAGES = ("devices", "ingest", "alerts", "dashboards", "simulators", "ops", "benchmarks", "siaga")


def error_classes() -> list[tuple[str, str]]:
    """(module, class name) of every class named *Error defined in the packages."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"))
            found += [
                (module, node.name)
                for node in tree.body
                if isinstance(node, ast.ClassDef) and node.name.endswith("Error")
            ]
    return found


def test_every_error_class_roots_in_siaga_error() -> None:
    classes = error_classes()
    assert len(classes) >= 25
    outside = [
        f"{module}.{name}"
        for module, name in classes
        if not issubclass(getattr(importlib.import_module(module), name), SiagaError)
    ]
    assert outside == []


def test_the_tree_drawn_beside_its_root_names_every_class_where_it_lives() -> None:
    drawing = (REPO_ROOT / "devices" / "errors.py").read_text(encoding="utf-8")
    missing = [
        f"{m}.{n}"
        for m, n in error_classes()
        if (n if m == "devices.errors" else f"{m}.{n}") not in drawing
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("error", "verdict"),
    [
        (RetryableStorageError("down"), StorageVerdict(True, "unavailable")),
        (
            RetryableStorageError("503", retry_after_s=30.0),
            StorageVerdict(True, "unavailable", 30.0),
        ),
        (PermanentStorageError("token", 401), StorageVerdict(False, "auth")),
        (PermanentStorageError("forbidden", 403), StorageVerdict(False, "auth")),
        (PermanentStorageError("no db", 404), StorageVerdict(False, "not_found")),
        (PermanentStorageError("bad query", 400), StorageVerdict(False, "refused")),
        (PermanentStorageError("query failed"), StorageVerdict(False, "refused")),
    ],
)
def test_storage_errors_are_judged_once(
    error: RetryableStorageError | PermanentStorageError, verdict: StorageVerdict
) -> None:
    assert classify_storage_error(error) == verdict

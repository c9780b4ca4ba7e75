"""Imports point one way: devices <- ingest <- alerts <- dashboards; simulators and forecast use
devices only (alerts and dashboards use forecast).

``ops``, ``benchmarks`` and ``siaga`` (running, measuring and the command) may import anything;
nothing imports them back, except one another.
"""

from __future__ import annotations

import ast
import sys

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = (
    "devices",
    "ingest",
    "forecast",
    "alerts",
    "dashboards",
    "simulators",
    "ops",
    "benchmarks",
    "siaga",
)
RUNNERS = {"ops", "benchmarks", "siaga"}
ALLOWED = {
    "devices": {"devices"},
    "ingest": {"ingest", "devices"},
    "forecast": {"forecast", "devices"},
    "alerts": {"alerts", "forecast", "ingest", "devices"},
    "dashboards": {"dashboards", "alerts", "forecast", "ingest", "devices"},
    "simulators": {"simulators", "devices"},
    **{runner: set(PACKAGES) for runner in RUNNERS},
}
FIRST_PARTY = {*PACKAGES, "tests"}


def imported_modules(source: str, package: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            modules.add(package)  # a relative import stays inside the package
    return modules


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_it_may(package: str) -> None:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"no files in {package}/"
    offenders = []
    for path in files:
        for module in imported_modules(path.read_text(encoding="utf-8"), package):
            top = module.split(".")[0]
            if top in FIRST_PARTY and top not in ALLOWED[package]:
                offenders.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
    assert not offenders, offenders


def test_simulators_use_no_more_than_their_libraries() -> None:
    for path in sorted((REPO_ROOT / "simulators").rglob("*.py")):
        for module in imported_modules(path.read_text(encoding="utf-8"), "simulators"):
            top = module.split(".")[0]
            if top not in FIRST_PARTY and top not in sys.stdlib_module_names:
                assert top in {"numpy", "orjson", "paho", "pydantic", "rich", "typer", "yaml"}, (
                    f"{path.name} imports {module}, which the project does not depend on"
                )


def test_the_scan_sees_forbidden_imports() -> None:
    source = "import ingest.worker\nfrom alerts import x\nfrom . import y"
    assert imported_modules(source, "simulators") == {"ingest.worker", "alerts", "simulators"}

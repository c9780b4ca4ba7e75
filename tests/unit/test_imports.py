"""Imports point one way: devices <- ingest <- alerts <- dashboards; simulators and forecast use
devices only (alerts and dashboards use forecast).

``ops``, ``benchmarks`` and ``siaga`` (running, measuring and the command) may import anything;
nothing imports them back, except one another. Within and across packages no two files import
each other, directly or round a longer circle (imports inside functions count: deferring an
import hides a circle, it does not break it; ``if TYPE_CHECKING:`` imports do not run).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

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


def module_of(path: Path) -> str:
    """The dotted name of a first-party file (a package is its ``__init__.py``)."""
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node that may run, so not the body of ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for other in node.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield node
        yield from _runtime_nodes(node)


def file_imports(source: str, module: str, *, package: bool, known: set[str]) -> set[str]:
    """The first-party modules in ``known`` that ``module`` imports at run time.

    ``from a.b import c`` is the module ``a.b.c`` when that is a file, else ``a.b``; a parent
    package is not counted for its submodule (``import a.b`` imports ``a`` too, but no circle
    is made of that).
    """
    named: set[str] = set()
    for node in _runtime_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            named |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".") if package else module.split(".")[:-1]
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            named |= {
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            }
    found = set()
    for name in named:
        target = name
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != module:
            found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Every first-party module → the first-party modules it imports at run time."""
    paths = {
        module_of(p): p for top in sorted(FIRST_PARTY) for p in (REPO_ROOT / top).rglob("*.py")
    }
    known = set(paths)
    return {
        module: file_imports(
            path.read_text(encoding="utf-8"),
            module,
            package=path.name == "__init__.py",
            known=known,
        )
        for module, path in paths.items()
    }


def circles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The import circles: Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.get(module, ())):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_import_circle_between_files() -> None:
    graph = import_graph()
    assert len(graph) > 100  # the scan found the tree
    assert circles(graph) == []


def test_the_circle_search_sees_circles_and_skips_type_checking_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert circles(graph) == [["a", "b", "c"]]
    known = {"alerts.cli", "alerts.notify", "alerts.notify.cli", "alerts.settings"}
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from alerts.settings import Settings\n"
        "def f():\n    from alerts.notify import cli\n"
        "from . import settings\n"
    )
    found = file_imports(source, "alerts.cli", package=False, known=known)
    assert found == {"alerts.notify.cli", "alerts.settings"}

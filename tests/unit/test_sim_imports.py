"""simulators/ depends on devices/ only: it plays the field devices, not the platform."""

from __future__ import annotations

import ast
import sys

from tests.conftest import REPO_ROOT

FIRST_PARTY = {"siaga", "ingest", "devices", "alerts", "dashboards", "simulators", "tests"}
ALLOWED = {"devices", "simulators"}


def imported_modules(source: str) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            modules.add("simulators")  # a relative import stays inside the package
    return modules


def test_simulators_import_only_devices_and_themselves() -> None:
    files = sorted((REPO_ROOT / "simulators").rglob("*.py"))
    assert len(files) > 5
    offenders = []
    for path in files:
        for module in imported_modules(path.read_text(encoding="utf-8")):
            top = module.split(".")[0]
            if top in FIRST_PARTY - ALLOWED:
                offenders.append(f"{path.relative_to(REPO_ROOT)} imports {module}")
            elif top not in ALLOWED and top not in sys.stdlib_module_names:
                assert top in {"numpy", "orjson", "paho", "pydantic", "rich", "typer", "yaml"}, (
                    f"{path.name} imports {module}, which the project does not depend on"
                )
    assert not offenders, offenders


def test_the_scan_sees_forbidden_imports() -> None:
    assert imported_modules("import ingest.worker\nfrom alerts import x\nfrom . import y") == {
        "ingest.worker",
        "alerts",
        "simulators",
    }

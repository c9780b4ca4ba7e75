"""The systemd units in config/systemd pass ``systemd-analyze verify``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

UNITS = sorted((REPO_ROOT / "config/systemd").glob("*.service"))
INSTALLED_PATH = "/opt/siaga/.venv/bin/siaga"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=[u.name for u in UNITS])
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    text = unit.read_text()
    # The unit names where the README installs Siaga; verify checks that the binary exists, so
    # point it at this checkout's, changing nothing else.
    assert f"ExecStart={INSTALLED_PATH} " in text
    siaga = Path(sys.executable).with_name("siaga")
    assert siaga.exists()
    (tmp_path / unit.name).write_text(text.replace(INSTALLED_PATH, str(siaga)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / unit.name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_every_long_running_command_has_a_unit() -> None:
    names = {u.name for u in UNITS}
    assert names == {
        "siaga-ingest.service",
        "siaga-alerts.service",
        "siaga-notify.service",
        "siaga-serve.service",
        "siaga-public.service",
    }
    for unit in UNITS:
        text = unit.read_text()
        for line in ("User=siaga", "Restart=on-failure", "EnvironmentFile=/etc/siaga/siaga.env"):
            assert line in text, f"{unit.name} lacks {line}"

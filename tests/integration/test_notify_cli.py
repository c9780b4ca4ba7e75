"""`siaga alerts silence add/list/expire` on a real database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.integration.drivers import run_siaga, siaga_env

pytestmark = pytest.mark.integration


def siaga(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return run_siaga("alerts", "silence", *args, env=siaga_env(SIAGA_DATABASE__URL=url))


def test_add_list_and_expire_a_silence(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    added = siaga(
        "add",
        "-m",
        "station=tb-menggala",
        "-m",
        "kind=~level|rate",
        "--by",
        "rina",
        "--comment",
        "ganti sensor",
        "--hours",
        "3",
        url=url,
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("silence 1 until")
    (line,) = siaga("list", "--json", url=url).stdout.splitlines()
    listed = json.loads(line)
    assert listed["matchers"][1] == {"name": "kind", "value": "level|rate", "op": "=~"}
    assert listed["created_by"] == "rina"
    assert siaga("expire", "1", url=url).returncode == 0
    assert siaga("list", url=url).stdout == ""
    assert "ganti sensor" in siaga("list", "--all", url=url).stdout
    assert siaga("expire", "9", url=url).returncode == 2
    bad = siaga("add", "-m", "station", "--by", "x", "--comment", "y", url=url)
    assert bad.returncode == 2

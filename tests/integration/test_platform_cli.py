"""``siaga alerts/users`` beside a running platform find its data directory, from anywhere.

A data directory as ``siaga up`` leaves it (its record, its database with incidents) and the
commands run as processes from other directories: they read that database and say so, and a
database that is not there is one line, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from alerts.incidents.store import SqlIncidentStore
from alerts.model import AlertEvent, EventKind, IncidentState, Transition
from dashboards.api.accounts import Accounts
from dashboards.api.app import sql_engine
from devices.levels import Level
from ops.datadir import DataDir
from tests.conftest import REPO_ROOT, STATIONS_FILE
from tests.integration.drivers import run_siaga, siaga_env

pytestmark = pytest.mark.integration

T0 = 1_790_000_000 * 1_000_000_000


def siaga(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_siaga(*args, env=siaga_env(PYTHONPATH=str(REPO_ROOT), **env), cwd=cwd)


@pytest.fixture
def platform(tmp_path: Path) -> DataDir:
    """A data directory as ``siaga up`` leaves it, with three active incidents."""
    directory = DataDir(tmp_path / "site" / ".siaga")
    directory.root.mkdir(parents=True)
    url = f"sqlite:///{directory.database}"
    directory.write_platform(
        {
            "database": {"url": url},
            "mqtt": {"url": "mqtt://127.0.0.1:18830"},
            "stations": {"file": str(STATIONS_FILE)},
            "config": str(REPO_ROOT / "config" / "siaga.yaml"),
        }
    )

    async def seed() -> None:
        async with SqlIncidentStore(url) as store:
            for i, station in enumerate(("tb-menggala", "tb-banjar-agung", "ciliwung-depok")):
                event = AlertEvent(
                    T0 + i,
                    station,
                    EventKind.LEVEL,
                    "level",
                    True,
                    Level.SIAGA,
                    Level.WASPADA,
                    400.0,
                )
                await store.commit(
                    [Transition(station, "level", None, IncidentState.FIRING, event)], {}
                )

    asyncio.run(seed())
    return directory


def test_from_the_directory_holding_dot_siaga(platform: DataDir) -> None:
    listed = siaga("alerts", "list", cwd=platform.root.parent)
    assert listed.returncode == 0, listed.stderr
    assert "Pos Duga Air Menggala" in listed.stdout
    assert "Pos Duga Air Banjar Agung" in listed.stdout
    assert f"database {platform.database}" in listed.stderr
    assert "broker mqtt://127.0.0.1:18830" in listed.stderr


def test_from_anywhere_with_the_environment_or_the_option(
    platform: DataDir, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    by_env = siaga("alerts", "list", "--json", cwd=elsewhere, SIAGA_DATA_DIR=str(platform.root))
    assert by_env.returncode == 0, by_env.stderr
    assert len(json.loads(by_env.stdout)) == 3
    by_option = siaga("alerts", "--data-dir", str(platform.root), "list", "--json", cwd=elsewhere)
    assert len(json.loads(by_option.stdout)) == 3


def test_users_added_beside_up_land_in_its_database(platform: DataDir) -> None:
    added = siaga(
        "users",
        "add",
        "siti",
        "--role",
        "operator",
        "--password",
        "a long secret",
        cwd=platform.root.parent,
    )
    assert added.returncode == 0, added.stderr
    assert f"database {platform.database}" in added.stderr
    users = Accounts(sql_engine(f"sqlite:///{platform.database}")).list_users()
    assert [u.username for u in users] == ["siti"]


def test_no_database_is_one_line_never_a_traceback(platform: DataDir, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (("alerts", "list"), ("users", "list"), ("users", "add", "x")):
        result = siaga(*args, cwd=empty)
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert f"no Siaga database at {empty / 'var' / 'siaga.db'}" in result.stderr
    platform.database.unlink()
    gone = siaga("alerts", "list", cwd=platform.root.parent)
    assert gone.returncode == 2
    assert gone.stderr.strip() == (
        f"no Siaga database at {platform.database} (data directory {platform.root}); start "
        "`siaga up`, or name the platform with --data-dir DIR or SIAGA_DATA_DIR"
    )
    missing = siaga("users", "--data-dir", str(empty), "list", cwd=empty)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr
    assert f"no Siaga platform in {empty}" in missing.stderr

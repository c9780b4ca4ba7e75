"""Which platform ``siaga users/alerts/devices`` serve: the order of the places they look, and
what ``siaga up`` keeps of what they changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.errors import ConfigError
from ops.credentials import hash_password, verify_password
from ops.datadir import DataDir
from ops.platform import (
    check_database,
    find_data_dir,
    platform_settings,
    sqlite_path,
    without_credentials,
)
from ops.up import INGEST_ACCOUNT, broker_hashes
from tests.conftest import STATIONS_FILE


def _record(root: Path) -> DataDir:
    directory = DataDir(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "siaga.db").touch()
    directory.write_platform(
        {
            "database": {"url": f"sqlite:///{root / 'siaga.db'}"},
            "mqtt": {"url": "mqtt://127.0.0.1:18830"},
            "stations": {"file": str(STATIONS_FILE)},
        }
    )
    return directory


def test_the_option_then_the_environment_then_dot_siaga(tmp_path: Path) -> None:
    (tmp_path / ".siaga").mkdir()
    option, env_dir = tmp_path / "a", tmp_path / "b"
    environ = {"SIAGA_DATA_DIR": str(env_dir)}
    assert find_data_dir(option, environ, tmp_path)[0].root == option  # type: ignore[index]
    assert find_data_dir(None, environ, tmp_path)[0].root == env_dir  # type: ignore[index]
    assert find_data_dir(None, {}, tmp_path)[0].root == tmp_path / ".siaga"  # type: ignore[index]
    assert find_data_dir(None, {}, tmp_path / "a") is None


def test_the_record_is_used_and_the_environment_still_wins(tmp_path: Path) -> None:
    root = tmp_path / ".siaga"
    _record(root)
    found = platform_settings(None, None, environ={}, cwd=tmp_path)
    assert found.settings.database.url == f"sqlite:///{root / 'siaga.db'}"
    assert found.settings.mqtt.url == "mqtt://127.0.0.1:18830"
    assert found.describe() == (
        f"database {root / 'siaga.db'}, broker mqtt://127.0.0.1:18830 (data directory {root})"
    )
    mine = tmp_path / "mine.db"
    mine.touch()
    environ = {"SIAGA_DATABASE__URL": f"sqlite:///{mine}"}
    # platform_settings reads settings through the process environment too; pass it there.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIAGA_DATABASE__URL", f"sqlite:///{mine}")
        chosen = platform_settings(None, None, environ=environ, cwd=tmp_path)
    assert chosen.settings.database.url == f"sqlite:///{mine}"
    assert chosen.settings.mqtt.url == "mqtt://127.0.0.1:18830"


def test_a_data_directory_without_a_record_is_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "nothing-here"
    with pytest.raises(ConfigError, match=r"no Siaga platform in .*nothing-here") as caught:
        platform_settings(None, empty, environ={}, cwd=tmp_path)
    assert "\n" not in str(caught.value)


def test_a_missing_or_unreadable_database_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    with pytest.raises(ConfigError, match=r"no Siaga database at .*gone\.db \(somewhere\)"):
        check_database(url, "somewhere")
    check_database(url, "somewhere", create=True)  # its directory exists: it may be created
    with pytest.raises(ConfigError, match="no Siaga database"):
        check_database(f"sqlite:///{tmp_path / 'no-dir' / 'x.db'}", "here", create=True)
    check_database("postgresql+psycopg://u:p@db/siaga", "here")  # not ours to look at


def test_urls_lose_their_credentials() -> None:
    assert without_credentials("mqtt://user:secret@host:1883") == "mqtt://host:1883"
    assert (
        without_credentials("postgresql+psycopg://u:p@db/siaga") == "postgresql+psycopg://db/siaga"
    )
    assert without_credentials("mqtt://host:1883") == "mqtt://host:1883"
    assert sqlite_path("sqlite:///var/siaga.db") == Path("var/siaga.db").absolute()
    assert sqlite_path("sqlite://") is None


def test_the_record_holds_no_secret(tmp_path: Path) -> None:
    directory = _record(tmp_path / "d")
    assert json.loads(directory.platform_file.read_text())["mqtt"] == {
        "url": "mqtt://127.0.0.1:18830"
    }
    assert oct(directory.platform_file.stat().st_mode & 0o777) == "0o600"


def test_up_keeps_the_credentials_siaga_devices_set() -> None:
    # An account added with `siaga devices` (no password of up's), one rotated with it (up's
    # password no longer matches), one of up's (matches) and up's own reader account.
    passwords = {
        "gauge-new": "generated-by-up",
        "gauge-rotated": "up-password",
        "gauge-demo": "demo-password",
        INGEST_ACCOUNT: "reader-password",
    }
    existing = {
        "gauge-new": hash_password("printed-by-devices-add"),
        "gauge-rotated": hash_password("printed-by-rotate"),
        "gauge-demo": hash_password("demo-password"),
        INGEST_ACCOUNT: hash_password("someone-else"),
    }
    hashes = broker_hashes(sorted(passwords), passwords, existing)
    assert hashes["gauge-new"] == existing["gauge-new"]
    assert hashes["gauge-rotated"] == existing["gauge-rotated"]
    assert verify_password("demo-password", hashes["gauge-demo"])
    assert verify_password("reader-password", hashes[INGEST_ACCOUNT])
    fresh = broker_hashes(["gauge-demo"], passwords, {})
    assert verify_password("demo-password", fresh["gauge-demo"])

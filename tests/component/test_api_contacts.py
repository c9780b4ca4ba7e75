"""The API's side of reaching people: Telegram link codes, SMS numbers, delivery status."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from alerts.notify.chatstore import SqlChatStore
from alerts.notify.memory import MemoryNotifyStore
from alerts.notify.records import DELIVERED, FAILED, Delivery
from dashboards.api.accounts import Role
from ingest.storage.memory import MemoryStorage
from tests.apitools import NOW_NS, NS, ApiHarness, build, session


@pytest.fixture
def harness(tmp_path: Path) -> ApiHarness:
    return build(f"sqlite:///{tmp_path}/siaga.db", MemoryStorage(), tmp_path)


async def test_a_signed_in_user_gets_a_one_time_code_that_the_bot_redeems_once(
    harness: ApiHarness,
) -> None:
    chats = harness.ctx.chats
    assert isinstance(chats, SqlChatStore)
    async with session(harness, "operator") as (client, csrf):
        response = await client.post(
            "/api/v1/me/telegram/link-code", headers={"X-CSRF-Token": csrf}
        )
    assert response.status_code == 201, response.text
    body = response.json()
    code = body["code"]
    assert body["command"] == f"/link {code}"
    expires = datetime.fromisoformat(body["expires"].replace("Z", "+00:00"))
    assert expires.timestamp() == pytest.approx(NOW_NS / NS + 600)
    with chats.engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT code_hash, username FROM link_codes").all()
    assert [row[1] for row in stored] == ["operator"]
    assert code not in stored[0][0]

    assert await chats.redeem_code("telegram", code, "7001", NOW_NS) == "operator"
    assert await chats.redeem_code("telegram", code, "7002", NOW_NS) is None
    person = await chats.person("telegram", "7001")
    assert person is not None
    assert (person.username, person.role) == ("operator", "operator")

    async with harness.client(Role.VIEWER) as keyed:
        refused = await keyed.post("/api/v1/me/telegram/link-code")
    assert refused.status_code == 403


async def test_an_expired_code_links_nothing(harness: ApiHarness) -> None:
    async with session(harness, "viewer") as (client, csrf):
        code = (
            await client.post("/api/v1/me/telegram/link-code", headers={"X-CSRF-Token": csrf})
        ).json()["code"]
    later = NOW_NS + 601 * NS
    assert await harness.ctx.chats.redeem_code("telegram", code, "7001", later) is None
    assert await harness.ctx.chats.person("telegram", "7001") is None


async def test_only_an_admin_sets_a_phone_number(harness: ApiHarness) -> None:
    async with harness.client(Role.OPERATOR) as client:
        denied = await client.put("/api/v1/users/operator/phone", json={"number": "+6281234567890"})
    assert denied.status_code == 403
    async with harness.client(Role.ADMIN) as client:
        bad = await client.put("/api/v1/users/operator/phone", json={"number": "0812"})
        assert bad.status_code == 422
        unknown = await client.put("/api/v1/users/nobody/phone", json={"number": "+6281234567890"})
        assert unknown.status_code == 404
        ok = await client.put("/api/v1/users/operator/phone", json={"number": "+6281234567890"})
        assert ok.status_code == 204
    person = await harness.ctx.chats.person("sms", "+6281234567890")
    assert person is not None
    assert person.username == "operator"


async def test_deliveries_show_status_and_fallbacks(harness: ApiHarness) -> None:
    notify = harness.ctx.notify
    assert isinstance(notify, MemoryNotifyStore)
    base = Delivery(
        id="d1",
        message_id="m1",
        group="piket",
        recipient="budi",
        channel="telegram",
        language="id",
        subject="s",
        body="b",
        short="x",
        payload={"alerts": [{"incident_id": 7}]},
        status=FAILED,
        attempts=4,
        created_ns=NOW_NS,
        last_error="telegram: NetworkError",
    )
    sms = Delivery(
        **{
            **{f: getattr(base, f) for f in Delivery.__dataclass_fields__},
            "id": "d2",
            "channel": "sms",
            "status": DELIVERED,
            "attempts": 1,
            "created_ns": NOW_NS + 300 * NS,
            "delivered_ns": NOW_NS + 301 * NS,
            "last_error": None,
            "payload": {"alerts": [{"incident_id": 7}], "fallback_of": "d1"},
        }
    )
    await notify.flush([], [base, sms])
    async with harness.client(Role.VIEWER) as client:
        listed = (await client.get("/api/v1/deliveries", params={"incident": 7})).json()
        other = (await client.get("/api/v1/deliveries", params={"incident": 8})).json()
    assert [(d["id"], d["channel"], d["status"], d["fallback_of"]) for d in listed["data"]] == [
        ("d2", "sms", "delivered", "d1"),
        ("d1", "telegram", "failed", None),
    ]
    assert listed["data"][1]["last_error"] == "telegram: NetworkError"
    assert other["count"] == 0

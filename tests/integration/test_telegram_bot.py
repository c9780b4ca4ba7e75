"""Two-way Telegram end to end: a real incident in SQLite, the real notifier wiring, the real
python-telegram-bot, and a scripted Bot API server on a free port.

Covers button presses (acknowledge, assign to me, silence), the same update delivered twice,
two presses of one button, unlinked and view-only users, a restart (the offset kept), the API
unreachable or answering 502 for a while (the sender retries: one post, none lost or doubled),
and the webhook's secret token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from alerts.notify.telegram import webhook_app
from tests.alerting import T0
from tests.helpers import eventually
from tests.integration.notify_rig import BUDI, CHAT, EKO, STRANGER, TAMU, Rig, notifier_rig

pytestmark = pytest.mark.integration


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with notifier_rig(tmp_path) as made:
        yield made


async def answered(rig: Rig, update: dict[str, Any]) -> dict[str, Any]:
    await eventually(lambda: bool(rig.peer.answers_to(update)), 10, "the press answered")
    (answer,) = rig.peer.answers_to(update)
    return answer


async def test_a_notice_has_three_buttons_and_each_press_acts_as_the_linked_user(rig: Rig) -> None:
    await rig.start()
    code = await rig.chats.issue_code("telegram", "budi", T0 * 2, 600)
    code_update = rig.peer.private_text(BUDI, f"/link {code}")
    await eventually(lambda: any("Terhubung" in m["text"] for m in rig.peer.sent()), 10, "linked")
    assert code_update["update_id"] > 0
    incident_id = await rig.flood()
    post = await rig.post()
    assert post.chat_id == CHAT
    assert "Menggala" in post.text or "tb-menggala" in post.text
    labels = [[b["text"] for b in row] for row in post.keyboard]
    assert labels == [["Akui", "Saya tangani"], ["Bisukan 1 jam"]]
    assert all(len(b["callback_data"].encode()) <= 64 for row in post.keyboard for b in row)

    ack = rig.peer.press(post, "Akui", BUDI)
    answer = await answered(rig, ack)
    assert answer["text"].startswith(f"Diakui: #{incident_id}")
    assert answer.get("show_alert") in (None, False, "false")
    incident = await rig.incidents.get(incident_id)
    assert incident is not None
    assert incident.acknowledged is not None
    assert incident.acknowledged.by == "budi"
    assert incident.acknowledged.comment == "via telegram"
    await eventually(lambda: "Diakui oleh budi" in post.text, 10, "the post edited")
    assert [[b["text"] for b in row] for row in post.keyboard] == [
        ["Saya tangani", "Bisukan 1 jam"]
    ]

    mine = rig.peer.press(post, "Saya tangani", BUDI)
    assert "ditangani oleh budi" in (await answered(rig, mine))["text"]
    await eventually(lambda: "Ditangani oleh budi" in post.text, 10, "assignee shown")
    assert (await rig.incidents.get(incident_id)).assignee == "budi"  # type: ignore[union-attr]

    mute = rig.peer.press(post, "Bisukan 1 jam", BUDI)
    assert (await answered(rig, mute))["text"].startswith("Dibisukan sampai")
    (silence,) = await rig.notify.silences(T0)
    assert silence.created_by == "budi"
    assert {(m.name, m.value) for m in silence.matchers} == {
        ("station", "tb-menggala"),
        ("rule", "level"),
    }
    assert (silence.ends_ns - silence.starts_ns) == 3600 * 10**9
    await eventually(lambda: "Dibisukan sampai" in post.text, 10, "the silence shown")
    assert "oleh budi" in post.text.splitlines()[-1]


async def test_a_replayed_callback_and_a_second_press_acknowledge_exactly_once(rig: Rig) -> None:
    await rig.link(BUDI, "budi")
    await rig.start()
    incident_id = await rig.flood()
    post = await rig.post()
    before_edit = dataclasses.replace(post)
    first = rig.peer.press(post, "Akui", BUDI)
    await answered(rig, first)
    acked = await rig.incidents.get(incident_id)
    assert acked is not None
    assert acked.acknowledged is not None

    rig.peer.redeliver(first)  # the same update_id again (a reconnect's replay)
    # and a second press, on the keyboard as a phone that had not yet seen the edit shows it
    again = rig.peer.press(before_edit, "Akui", BUDI)
    answer = await answered(rig, again)
    assert answer["text"].startswith("Sudah diakui oleh budi")
    assert len(rig.peer.answers_to(first)) == 1
    bot = rig.companions.notifier.telegram  # type: ignore[union-attr]
    assert bot is not None
    assert bot.counts["replayed"] == 1
    assert bot.counts["acted"] == 1
    after = await rig.incidents.get(incident_id)
    assert after is not None
    assert after.acknowledged == acked.acknowledged

    # A restart: the offset comes from the database; nothing is handled twice.
    async def offset_stored() -> bool:  # the answer goes out just before the offset is stored
        return await rig.chats.state("telegram.offset") == str(again["update_id"] + 1)

    await eventually(offset_stored, 10, "the offset stored")
    await rig.stop()
    await rig.start()
    later = rig.peer.press(post, "Saya tangani", BUDI)
    await answered(rig, later)
    restarted = rig.companions.notifier.telegram  # type: ignore[union-attr]
    assert restarted is not None
    assert restarted.counts["replayed"] == 0
    assert len(rig.peer.answers_to(first)) == 1


async def test_unlinked_and_view_only_users_are_refused_with_the_reason(rig: Rig) -> None:
    await rig.link(TAMU, "tamu")
    await rig.start()
    incident_id = await rig.flood()
    post = await rig.post()

    stranger = rig.peer.press(post, "Akui", STRANGER, "Orang")
    answer = await answered(rig, stranger)
    assert "belum terhubung" in answer["text"]
    assert answer["show_alert"] in (True, "true")

    viewer = rig.peer.press(post, "Akui", TAMU, "Tamu")
    answer = await answered(rig, viewer)
    assert "hanya boleh melihat" in answer["text"]
    assert "operator" in answer["text"]

    incident = await rig.incidents.get(incident_id)
    assert incident is not None
    assert incident.acknowledged is None
    assert post.edits == 0
    wrong_code = rig.peer.private_text(STRANGER, "/link AAAA2222")
    await eventually(
        lambda: any("Kode tidak berlaku" in m["text"] for m in rig.peer.sent()), 10, "refusal"
    )
    assert wrong_code["update_id"] > 0


async def test_an_operator_of_another_regency_is_refused(rig: Rig) -> None:
    # Eko operates in Jember; Menggala's incident is Tulang Bawang's (the users table's scope).
    await rig.link(EKO, "eko")
    await rig.start()
    incident_id = await rig.flood()
    post = await rig.post()
    answer = await answered(rig, rig.peer.press(post, "Akui", EKO, "Eko"))
    assert "di luar wilayah" in answer["text"]
    incident = await rig.incidents.get(incident_id)
    assert incident is not None
    assert incident.acknowledged is None


async def test_telegram_unreachable_for_a_while_loses_and_doubles_nothing(rig: Rig) -> None:
    await rig.link(BUDI, "budi")
    await rig.start()
    await rig.peer.stop()
    incident_id = await rig.flood()

    async def retried() -> bool:
        deliveries = await rig.notify.deliveries()
        return len(deliveries) == 1 and deliveries[0].attempts >= 3

    await eventually(retried, 15, "the sender retrying while Telegram is away")
    (waiting,) = await rig.notify.deliveries()
    assert waiting.status in {"pending", "sending"}
    assert waiting.last_error is not None

    rig.peer.fail_with_502 = 2  # it comes back unwell first
    await rig.peer.start()
    post = await rig.post()

    async def delivered() -> bool:
        (delivery,) = await rig.notify.deliveries()
        return delivery.status == "delivered"

    await eventually(delivered, 10, "the delivery recorded as delivered")
    assert len(rig.peer.sent()) == 3  # two answered 502 (nothing posted), one accepted
    assert len(rig.notices()) == 1

    # The poller came back too: a press works after the outage.
    ack = rig.peer.press(post, "Akui", BUDI)
    assert (await answered(rig, ack))["text"].startswith(f"Diakui: #{incident_id}")
    assert len(rig.notices()) == 1


async def test_the_webhook_refuses_requests_without_the_secret_token(rig: Rig) -> None:
    await rig.link(BUDI, "budi")
    await rig.start()
    incident_id = await rig.flood()
    post = await rig.post()
    bot = rig.companions.notifier.telegram  # type: ignore[union-attr]
    assert bot is not None
    app = webhook_app(bot, SecretStr("webhook-secret-1"))
    update = {
        "update_id": 999_001,
        "callback_query": {
            "id": "cb-webhook",
            "from": {"id": BUDI, "is_bot": False, "first_name": "Budi"},
            "chat_instance": "ci-1",
            "data": f"a:{incident_id}",
            "message": rig.peer._message_json(post),
        },
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
        header = "X-Telegram-Bot-Api-Secret-Token"
        assert (await client.post("/telegram", json=update)).status_code == 403
        assert (
            await client.post("/telegram", json=update, headers={header: "guess"})
        ).status_code == 403
        ok = await client.post("/telegram", json=update, headers={header: "webhook-secret-1"})
        assert ok.status_code == 200
        again = await client.post("/telegram", json=update, headers={header: "webhook-secret-1"})
        assert again.status_code == 200
    incident = await rig.incidents.get(incident_id)
    assert incident is not None
    assert incident.acknowledged is not None
    assert len([a for a in rig.peer.answers if a["callback_query_id"] == "cb-webhook"]) == 1

"""WhatsApp one way, through Apprise to a gateway that speaks a form POST (the shape of the
Indonesian gateway services: a token header, ``target`` and ``message`` fields), here a real
HTTP server on a free port. Two-way WhatsApp needs the Cloud API: see the README."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from alerts.notify.apprise_channel import AppriseChannel
from alerts.notify.channels import Outgoing
from alerts.notify.policy import parse_policy
from tests.integration.notify_peers import WebhookReceiver

pytestmark = pytest.mark.integration

MESSAGE = Outgoing(
    id="m-9",
    delivery_id="d-9",
    recipient="camat-menggala",
    language="id",
    subject="Siaga: Menggala Awas",
    body="Menggala (Sungai Way Tulang Bawang, Tulang Bawang): Awas, 310 cm, 14:05 WIB.\n"
    "  Tindakan: Segera evakuasi warga di bantaran sungai ke tempat aman.",
    short="BANJIR Tulang Bawang: Menggala Awas 310cm 14:05 WIB. Ack: siaga alerts ack 9",
)


def gateway_url(port: int) -> str:
    return (
        f"form://127.0.0.1:{port}/send?+Authorization=${{WA_GATEWAY_TOKEN}}"
        "&:target=6281234567890&:message=message&:title=&:type=&:version="
    )


async def test_a_notice_reaches_a_whatsapp_gateway_as_its_form_post() -> None:
    receiver = WebhookReceiver(secret=b"unused")
    with receiver.running():
        channel = AppriseChannel(
            "whatsapp",
            gateway_url(receiver.port),
            environ={"WA_GATEWAY_TOKEN": "gw-token-123"},
        )
        assert (await channel.send(MESSAGE)).delivered
        (got,) = receiver.accepted()
    assert got.path == "/send"
    assert got.headers["Authorization"] == "gw-token-123"
    form = {k: v[0] for k, v in parse_qs(got.body.decode()).items()}
    assert form == {"target": "6281234567890", "message": MESSAGE.body}


async def test_a_gateway_refusing_is_retried_and_the_url_is_a_policy_channel() -> None:
    receiver = WebhookReceiver(secret=b"unused", statuses=[502])
    with receiver.running():
        channel = AppriseChannel(
            "whatsapp", gateway_url(receiver.port), environ={"WA_GATEWAY_TOKEN": "t"}
        )
        failed = await channel.send(MESSAGE)
        assert (failed.delivered, failed.retryable) == (False, True)
        assert (await channel.send(MESSAGE)).delivered
    policy = parse_policy(
        "recipients: [{name: camat, channels: [{name: whatsapp, url: '"
        + gateway_url(8000)
        + "'}]}]"
    )
    (spec,) = policy.recipients[0].channels
    assert spec.paging
    assert "${WA_GATEWAY_TOKEN}" in spec.url

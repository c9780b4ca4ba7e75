"""Channels against real peers: aiosmtpd for e-mail, a real HTTP server for webhooks and json://."""

from __future__ import annotations

import asyncio
import base64
import logging
from email.header import decode_header, make_header
from email.message import Message

import httpx
import pytest
from pydantic import SecretStr

from alerts.notify.apprise_channel import AppriseChannel
from alerts.notify.channels import Outgoing
from alerts.notify.errors import PermanentDeliveryError
from alerts.notify.webhook import ID_HEADER, TIMESTAMP_HEADER, WebhookChannel
from tests.integration.notify_peers import WebhookReceiver, smtp_server

pytestmark = pytest.mark.integration

MESSAGE = Outgoing(
    id="m-123",
    delivery_id="d-1",
    recipient="duty",
    language="id",
    subject="[Siaga] SIAGA 1 — Bendung Katulampa: 220 cm",
    body=(
        "Bendung Katulampa (Sungai Ciliwung, Kota Bogor): Siaga 1, 220 cm.\n"
        "  Konfirmasi: siaga alerts ack 7\n"
        "\n"
        "Pos Duga Air Depok (Sungai Ciliwung, Kota Depok): Siaga 3, 210 cm.\n"
        "  Konfirmasi: siaga alerts ack 8"
    ),
    short="BANJIR Kota Bogor: Bendung Katulampa Siaga 1 220cm 18:10 WIB. Ack: siaga alerts ack 7",
    payload={"alerts": [{"incident_id": 7, "level": "AWAS"}]},
)


def plain_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


async def test_email_reaches_a_real_smtp_server() -> None:
    with smtp_server() as (port, inbox):
        channel = AppriseChannel(
            "email",
            f"mailto://127.0.0.1:{port}?from=siaga@example.org&to=${{DUTY_EMAIL}}",
            pages=False,
            environ={"DUTY_EMAIL": "duty@bpbd.example.org"},
        )
        result = await channel.send(MESSAGE)
        assert result.delivered
        assert inbox.envelopes[0].rcpt_tos == ["duty@bpbd.example.org"]
        message = inbox.messages[0]
        assert str(make_header(decode_header(message["Subject"]))) == MESSAGE.subject
        # A grouped e-mail's notices stay on their own lines in the text/plain part.
        assert plain_text(message).replace("\r\n", "\n").strip() == MESSAGE.body


async def test_signed_webhook_is_verified_by_the_receiver_and_retries_are_classified() -> None:
    receiver = WebhookReceiver(secret=b"s3cret-key")
    with receiver.running():
        async with httpx.AsyncClient() as client:
            channel = WebhookChannel(
                "hook", receiver.url + "/siaga", SecretStr("s3cret-key"), client, clock=lambda: 1e9
            )
            assert (await channel.send(MESSAGE)).delivered
            (got,) = receiver.accepted()
            assert got.signature_ok
            assert got.headers[ID_HEADER] == "m-123"
            assert got.json()["id"] == "m-123"
            assert got.json()["timestamp"] == int(got.headers[TIMESTAMP_HEADER]) == 1_000_000_000
            assert got.json()["alerts"][0]["incident_id"] == 7

            receiver.statuses = [503, 404]
            failed = await channel.send(MESSAGE)
            assert (failed.delivered, failed.retryable) == (False, True)
            with pytest.raises(PermanentDeliveryError, match="HTTP 404"):
                await channel.send(MESSAGE)

            forged = WebhookChannel(
                "hook", receiver.url + "/siaga", SecretStr("wrong"), client, clock=lambda: 1e9
            )
            with pytest.raises(PermanentDeliveryError, match="HTTP 401"):
                await forged.send(MESSAGE)
            assert len(receiver.accepted()) == 1


async def test_unreachable_webhook_is_retryable() -> None:
    async with httpx.AsyncClient() as client:
        channel = WebhookChannel("hook", "http://127.0.0.1:9/x", SecretStr("k"), client)
        with pytest.raises(Exception, match="posting to") as caught:
            await channel.send(MESSAGE)
        assert getattr(caught.value, "retryable", False)


async def test_apprise_json_target_with_a_secret_that_is_never_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "tok-9f8e7d6c5b4a"
    receiver = WebhookReceiver(secret=b"unused")
    with receiver.running(), caplog.at_level(logging.DEBUG):
        channel = AppriseChannel(
            "relay",
            f"json://siaga:${{RELAY_TOKEN}}@127.0.0.1:{receiver.port}/relay",
            environ={"RELAY_TOKEN": secret},
        )
        assert (await channel.send(MESSAGE)).delivered
        (got,) = receiver.accepted()
        assert got.path == "/relay"
        assert got.json()["message"] == MESSAGE.body
        authorization = got.headers["Authorization"].split()[1]
        assert base64.b64decode(authorization).decode() == f"siaga:{secret}"

        receiver.statuses = [500]
        assert not (await channel.send(MESSAGE)).delivered
        await asyncio.sleep(0)
    assert secret not in caplog.text
    assert all(secret not in str(record.args) for record in caplog.records)
    assert secret not in repr(channel)


async def test_missing_secret_is_a_permanent_error_naming_the_variable() -> None:
    channel = AppriseChannel("tg", "tgram://${TELEGRAM_TOKEN}/123", environ={})
    with pytest.raises(PermanentDeliveryError, match="TELEGRAM_TOKEN is not set"):
        await channel.send(MESSAGE)

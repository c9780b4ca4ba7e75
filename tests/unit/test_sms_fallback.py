"""SMS text, numbers and the fallback decision: pure functions."""

from __future__ import annotations

import dataclasses

import pytest

from alerts.notify.errors import PolicyError
from alerts.notify.fallback import fallbacks_due
from alerts.notify.gammu_sms import IncomingSms, e164, sms_text
from alerts.notify.policy import parse_policy
from alerts.notify.records import DELIVERED, FAILED, PENDING, Delivery
from alerts.notify.sms import fits_one_sms, segments
from alerts.pipeline.dedup import delivery_id

S = 1_000_000_000
MIN = 60 * S
POLICY = parse_policy(
    """
recipients:
  - name: budi
    channels:
      - {name: telegram, type: telegram, url: piket}
      - {name: email, url: "mailto://x@example.org"}
      - {name: sms, type: sms, url: "+6281234567890"}
    fallback: {channel: sms, after_min: 5}
  - name: sari
    channels: [{name: telegram, type: telegram, url: piket}]
groups: [{name: piket, members: [budi, sari]}]
"""
)
SHORT = (
    "BANJIR Tulang Bawang: Menggala Awas 310cm +12cm/j 14:05 WIB. "
    "Ack: https://siaga.example.go.id/api/v1/ack/eyJpIjo0Mn0.c2ln"
)


def row(recipient: str, channel: str, status: str = PENDING, created_s: int = 0) -> Delivery:
    return Delivery(
        id=delivery_id("m1", recipient, channel),
        message_id="m1",
        group="piket",
        recipient=recipient,
        channel=channel,
        language="id",
        subject="s",
        body="b",
        short=SHORT,
        payload={"alerts": [{"incident_id": 42}]},
        status=status,
        created_ns=created_s * S,
    )


def test_the_sms_says_how_to_answer_instead_of_a_link() -> None:
    text = sms_text(SHORT, [42])
    assert text == "BANJIR Tulang Bawang: Menggala Awas 310cm +12cm/j 14:05 WIB. Balas AKUI 42"
    assert fits_one_sms(text)
    several = sms_text(SHORT, [42, 43])
    assert several.endswith("Balas AKUI <no>: 42,43")
    assert (
        sms_text("Sungai normal kembali. Ack: siaga alerts ack 7", []) == "Sungai normal kembali."
    )


def test_segments_follow_gsm7_and_ucs2_part_sizes() -> None:
    assert segments("a" * 160) == 1
    assert segments("a" * 161) == 2
    assert segments("a" * 306) == 2
    assert segments("a" * 307) == 3
    assert segments("€" * 80) == 1  # two septets each: 160
    assert segments("€" * 81) == 2
    assert segments("a" * 152 + "€" * 5) == 2  # an escape pair is never split across parts
    assert segments("\u03b1" * 70) == 1
    assert segments("\u03b1" * 71) == 2
    assert segments("\u03b1" * 134) == 2
    assert segments("\u03b1" * 135) == 3


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("081234567890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("+62 812-3456-7890", "+6281234567890"),
        ("006281234567890", "+6281234567890"),
        ("+6591234567", "+6591234567"),
    ],
)
def test_numbers_are_compared_in_e164(given: str, expected: str) -> None:
    assert e164(given) == expected


def test_an_sms_is_the_same_sms_whichever_way_its_number_is_written() -> None:
    first = IncomingSms("081234567890", "AKUI 42", None, ((1, 10001),))
    again = IncomingSms("+6281234567890", "AKUI 42", None, ((1, 10002),))
    other = IncomingSms("+6281234567890", "AKUI 43", None, ((1, 10003),))
    assert first.key == again.key != other.key


def test_no_fallback_before_the_wait_nor_once_delivered() -> None:
    pending = [row("budi", "telegram"), row("budi", "email", FAILED)]
    assert fallbacks_due(pending, POLICY, 5 * MIN - 1, 3600) == []
    delivered = [row("budi", "telegram", DELIVERED), row("budi", "email", FAILED)]
    assert fallbacks_due(delivered, POLICY, 60 * MIN, 3600) == []
    assert fallbacks_due([row("sari", "telegram")], POLICY, 60 * MIN, 3600) == []


def test_a_message_falls_back_once_with_a_stable_id() -> None:
    pending = [row("budi", "telegram", created_s=10), row("budi", "email", FAILED, created_s=10)]
    (sms,) = fallbacks_due(pending, POLICY, 10 * S + 5 * MIN, 3600)
    assert sms.channel == "sms"
    assert sms.id == delivery_id("m1", "budi", "sms")
    assert sms.payload["fallback_of"] == delivery_id("m1", "budi", "telegram")
    assert (sms.status, sms.attempts, sms.created_ns) == (PENDING, 0, 10 * S + 5 * MIN)
    assert sms.deadline_ns == sms.created_ns + 3600 * S
    assert sms.short == SHORT
    sent = dataclasses.replace(sms, status=DELIVERED)
    assert fallbacks_due([*pending, sent], POLICY, 60 * MIN, 3600) == []


def test_a_fallback_must_be_one_of_the_recipients_channels() -> None:
    with pytest.raises(PolicyError, match="fallback channel 'sms' is not in"):
        parse_policy(
            "recipients: [{name: a, channels: [{name: tg, type: telegram, url: xyz}],"
            " fallback: {channel: sms}}]"
        )
    with pytest.raises(PolicyError, match="needs another channel"):
        parse_policy(
            "recipients: [{name: a, channels: [{name: sms, type: sms, url: '+62811'}],"
            " fallback: {channel: sms}}]"
        )
    assert [c.name for c in POLICY.recipients[0].primary] == ["telegram", "email"]

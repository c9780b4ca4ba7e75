from __future__ import annotations

import pytest

from alerts.notify.channels import expand_secrets, redact
from alerts.notify.errors import PermanentDeliveryError
from alerts.notify.webhook import sign, verify


def test_signature_is_hmac_sha256_over_the_exact_body() -> None:
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign(b"Jefe", b"what do ya want for nothing?") == f"sha256={expected}"
    assert verify(b"Jefe", b"what do ya want for nothing?", f"sha256={expected}")
    assert not verify(b"Jefe", b"what do ya want for nothing!", f"sha256={expected}")


def test_secrets_expand_from_the_environment_and_missing_ones_are_named() -> None:
    env = {"TOKEN": "abc:123", "CHAT": "-100"}
    assert expand_secrets("tgram://${TOKEN}/${CHAT}", env) == "tgram://abc:123/-100"
    assert expand_secrets("json://host/$NOT_A_REFERENCE", env) == "json://host/$NOT_A_REFERENCE"
    with pytest.raises(PermanentDeliveryError, match="SMTP_PASSWORD is not set") as caught:
        expand_secrets("mailtos://u:${SMTP_PASSWORD}@h", env)
    assert "abc" not in str(caught.value)


def test_redact_keeps_only_scheme_and_host() -> None:
    assert redact("mailtos://user:hunter2@smtp.example.org:587/?to=a@b") == (
        "mailtos://smtp.example.org/…"
    )
    assert redact("tgram://${TOKEN}/${CHAT}") == "tgram://<secret>/…"
    assert "hunter2" not in redact("json://admin:hunter2@10.0.0.1/hook")

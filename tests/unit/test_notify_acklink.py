from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from alerts.notify.acklink import AckLinkError, signed_ack_links, verify_ack
from alerts.notify.message import no_ack_link
from alerts.notify.runtime import settings_ack_link
from alerts.settings import Settings
from ingest.errors import InputError

SECRET = b"ack-secret"


def _parts(url: str | None) -> tuple[str, int, str]:
    assert url is not None
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    return parts.path, int(query["exp"]), query["sig"]


def test_signed_link_verifies_until_it_expires() -> None:
    link = signed_ack_links("https://siaga.example/", SECRET, valid_s=3600, clock=lambda: 1000.0)
    path, expires, sig = _parts(link(42))
    assert path == "/api/v1/incidents/42/ack"
    assert expires == 4600
    verify_ack(SECRET, 42, expires, sig, now_s=4599)


@pytest.mark.parametrize(
    ("incident_id", "shift_s", "secret", "now_s", "reason"),
    [
        (42, 0, SECRET, 4600, "expired"),
        (43, 0, SECRET, 1000, "forged"),  # another incident's signature
        (42, 1, SECRET, 1000, "forged"),  # a later expiry than was signed
        (42, 0, b"other", 1000, "forged"),
        (42, 0, b"other", 9999, "forged"),  # forged says nothing about its expiry
    ],
)
def test_a_bad_link_says_why(
    incident_id: int, shift_s: int, secret: bytes, now_s: float, reason: str
) -> None:
    link = signed_ack_links("https://siaga.example/", SECRET, valid_s=3600, clock=lambda: 1000.0)
    _, expires, sig = _parts(link(42))
    with pytest.raises(AckLinkError) as caught:
        verify_ack(secret, incident_id, expires + shift_s, sig, now_s=now_s)
    assert caught.value.reason == reason
    assert isinstance(caught.value, InputError)


def test_without_configuration_messages_name_the_command() -> None:
    assert signed_ack_links(None, SECRET) is no_ack_link
    assert signed_ack_links("https://x", None) is no_ack_link


def test_the_notifier_links_to_api_public_url_with_the_api_key(tmp_path: Path) -> None:
    key_file = tmp_path / "api-secret.key"
    unset = Settings.model_validate({"api": {"secret_key_file": key_file}})
    assert settings_ack_link(unset) is no_ack_link
    assert not key_file.exists(), "no key is made for links that are never sent"
    linked = Settings.model_validate(
        {"api": {"public_url": "https://siaga.example/", "secret_key": "k" * 32}}
    )
    path, expires, sig = _parts(settings_ack_link(linked)(7))
    assert path == "/api/v1/incidents/7/ack"
    verify_ack(b"k" * 32, 7, expires, sig, now_s=expires - 1)
    # Without api.secret_key: the key file every process on the host reads.
    from_file = Settings.model_validate(
        {"api": {"public_url": "https://siaga.example", "secret_key_file": key_file}}
    )
    _, expires, sig = _parts(settings_ack_link(from_file)(7))
    verify_ack(key_file.read_text().encode(), 7, expires, sig, now_s=expires - 1)

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from alerts.notify.acklink import signed_ack_links, verify_ack
from alerts.notify.message import no_ack_link

SECRET = b"ack-secret"


def test_signed_link_verifies_until_it_expires() -> None:
    link = signed_ack_links("https://siaga.example/", SECRET, valid_s=3600, clock=lambda: 1000.0)
    url = link(42)
    assert url is not None
    parts = urlsplit(url)
    assert parts.path == "/api/v1/incidents/42/ack"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    expires = int(query["exp"])
    assert expires == 4600
    assert verify_ack(SECRET, 42, expires, query["sig"], now_s=4599)
    assert not verify_ack(SECRET, 42, expires, query["sig"], now_s=4600)
    assert not verify_ack(SECRET, 43, expires, query["sig"], now_s=1000)
    assert not verify_ack(SECRET, 42, expires + 1, query["sig"], now_s=1000)
    assert not verify_ack(b"other", 42, expires, query["sig"], now_s=1000)


def test_without_configuration_messages_name_the_command() -> None:
    assert signed_ack_links(None, SECRET) is no_ack_link
    assert signed_ack_links("https://x", None) is no_ack_link

"""The broker's private CA and server certificates."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ops.tls import make_ca, make_server_cert

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def test_the_ca_is_a_self_signed_p256_ca_valid_for_the_days_asked() -> None:
    cert_pem, key_pem = make_ca("Siaga broker CA", 3650, now=NOW)
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = load_pem_private_key(key_pem, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.curve.name == "secp256r1"
    assert cert.public_key() == key.public_key()
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Siaga broker CA"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert.verify_directly_issued_by(cert)
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=3650)
    assert cert.not_valid_before_utc < NOW


def test_the_server_cert_is_signed_by_the_ca_and_names_every_host() -> None:
    ca_pem, ca_key_pem = make_ca("Siaga broker CA", 3650, now=NOW)
    cert_pem, key_pem = make_server_cert(
        ca_pem, ca_key_pem, ["broker.siaga.example", "localhost", "127.0.0.1", "::1"], 397, now=NOW
    )
    ca = x509.load_pem_x509_certificate(ca_pem)
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(ca)
    key = load_pem_private_key(key_pem, password=None)
    assert cert.public_key() == key.public_key()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["broker.siaga.example", "localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.not_valid_after_utc == NOW + dt.timedelta(days=397)


def _handshake(client: ssl.SSLContext, server: ssl.SSLContext, hostname: str) -> None:
    """A TLS handshake between two in-memory ends; raises what the client raises."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_end = client.wrap_bio(c_in, c_out, server_hostname=hostname)
    server_end = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, end in (("client", client_end), ("server", server_end)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_python_ssl_verifies_the_server_by_ip_and_name_with_the_ca(tmp_path: Path) -> None:
    ca_pem, ca_key_pem = make_ca("Siaga broker CA", 30)
    cert_pem, key_pem = make_server_cert(ca_pem, ca_key_pem, ["localhost", "127.0.0.1"], 30)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=ca_pem.decode())
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    _handshake(client, server, "127.0.0.1")
    _handshake(client, server, "localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(client, server, "broker.example")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"self.signed|unable to get local"):
        _handshake(ssl.create_default_context(), server, "127.0.0.1")


@pytest.mark.parametrize(
    ("hostnames", "days", "message"),
    [([], 30, "at least one hostname"), (["localhost"], 0, "days must be at least 1")],
)
def test_bad_arguments_are_refused(hostnames: list[str], days: int, message: str) -> None:
    ca_pem, ca_key_pem = make_ca("CA", 30)
    with pytest.raises(ValueError, match=message):
        make_server_cert(ca_pem, ca_key_pem, hostnames, days)


def test_a_ca_needs_a_name_and_a_lifetime() -> None:
    with pytest.raises(ValueError, match="common_name"):
        make_ca("", 30)
    with pytest.raises(ValueError, match="days"):
        make_ca("CA", 0)

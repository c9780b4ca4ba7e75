"""A private certificate authority and server certificates for the broker's TLS listener.

Everything here returns PEM bytes and writes nothing; :mod:`ops.brokeradmin` puts them on
disk. Keys are EC P-256, unencrypted PKCS#8 (Mosquitto reads them without a passphrase).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLOCK_SKEW = dt.timedelta(minutes=5)
"""Certificates are valid from this long before they were made, for clients whose clock lags."""


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _validity(days: int, now: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    if days < 1:
        raise ValueError("days must be at least 1")
    start = now or dt.datetime.now(dt.UTC)
    return start - CLOCK_SKEW, start + dt.timedelta(days=days)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public: ec.EllipticCurvePublicKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    """A certificate of ``subject``'s key, issued by ``issuer``, with a random serial number."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )


def _key_usage(*, signs_certificates: bool) -> x509.KeyUsage:
    """Digital signatures only; a CA's key also signs certificates and CRLs."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(common_name: str, days: int, *, now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A self-signed CA that may sign server certificates (and no further CAs).

    Args:
        common_name: The CA's subject CN, e.g. ``Siaga broker CA``.
        days: How long it is valid.
        now: The issue time; the current time when not given.

    Returns:
        ``(cert_pem, key_pem)``.

    Raises:
        ValueError: ``days`` is below 1 or ``common_name`` is empty.
    """
    if not common_name:
        raise ValueError("common_name must not be empty")
    not_before, not_after = _validity(days, now)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    cert = (
        _builder(name, name, public, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signs_certificates=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _subject_alternative_names(hostnames: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for hostname in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(hostname)))
        except ValueError:
            names.append(x509.DNSName(hostname))
    return names


def make_server_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    hostnames: Sequence[str],
    days: int,
    *,
    now: dt.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A server certificate signed by the CA, for the names clients connect to.

    Args:
        ca_cert_pem: The CA certificate (from :func:`make_ca`).
        ca_key_pem: The CA's private key, unencrypted.
        hostnames: DNS names and IP addresses (``127.0.0.1``, ``::1``) clients use; the first
            is also the subject CN. IP addresses become IP SAN entries, the rest DNS entries.
        days: How long it is valid.
        now: The issue time; the current time when not given.

    Returns:
        ``(cert_pem, key_pem)``.

    Raises:
        ValueError: No hostnames, or ``days`` below 1.
        TypeError: The CA key is not an EC or RSA private key.
    """
    if not hostnames:
        raise ValueError("give at least one hostname or IP address")
    not_before, not_after = _validity(days, now)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError("the CA key must be an EC or RSA private key")
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])])
    cert = (
        _builder(subject, ca_cert.subject, public, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(_subject_alternative_names(hostnames)), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

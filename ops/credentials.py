"""Broker credentials and access rules in Mosquitto's formats, built without touching a file.

``siaga devices`` keeps the broker's password file and ACL file in step with the registry; this
module makes their text, :mod:`ops.brokeradmin` writes it and tells the broker to reload.

What Mosquitto 2.0.11 does with these files (checked against the real broker):

- A subscription is always granted; ``topic read`` is checked on every message delivered, against
  the message's own topic. So a worker subscribing with ``$share/<group>/siaga/+/telemetry`` needs
  ``topic read siaga/+/telemetry``; an ACL line naming ``$share/...`` grants nothing.
- A publish without ``topic write`` is dropped: MQTT 5 clients get PUBACK "Not authorized",
  MQTT 3.1.1 clients get an ordinary PUBACK. With ``max_queued_messages 0`` the broker then also
  closes the connection (any QoS, either protocol version); with a queue limit it does not.
- ``@`` has no special meaning in a topic or an ACL line; ``+`` in a ``topic`` line matches
  exactly one level, so ``v3/app@tenant/devices/+/up`` admits one device id and no other tenant.
- On SIGHUP the broker re-reads both files and disconnects connected clients whose account is
  gone or whose password changed; other clients stay connected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence

from devices.registry import DIRECT_FORMATS, Integration, Registry
from devices.topics import LORAWAN_FILTERS, TopicScheme

SALT_BYTES = 12
DIGEST_BYTES = 64
DEFAULT_ITERATIONS = 101
"""Mosquitto's own default for ``$7$`` (PBKDF2-HMAC-SHA512) hashes."""

_BAD_USER = re.compile(r"[:\s]")
# A topic level that may appear literally in an ACL line: no separator, no wildcard, nothing
# that would end or split the line.
_LITERAL_LEVEL = re.compile(r"[^/+#\s\x00-\x1f\x7f]+")


def generate_password() -> str:
    """A new random password: 32 URL-safe characters (192 bits)."""
    return secrets.token_urlsafe(24)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(
    password: str, *, salt: bytes | None = None, iterations: int = DEFAULT_ITERATIONS
) -> str:
    """Hash a password the way ``mosquitto_passwd`` does (``$7$``, PBKDF2-HMAC-SHA512).

    Args:
        password: The password in clear.
        salt: The salt; 12 random bytes when not given. Pass one only to get a fixed result.
        iterations: PBKDF2 iterations; Mosquitto writes 101.

    Returns:
        ``$7$<iterations>$<base64 salt>$<base64 digest>``, the part after ``user:``.

    Raises:
        ValueError: The salt is empty or iterations is below 1.
    """
    if salt is None:
        salt = secrets.token_bytes(SALT_BYTES)
    if not salt:
        raise ValueError("salt must not be empty")
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, DIGEST_BYTES)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether ``password`` matches a Mosquitto hash, compared in constant time.

    Args:
        password: The password in clear.
        hashed: A ``$7$`` hash, or an older ``$6$`` (salted SHA-512) one.

    Returns:
        True when it matches; False when it does not or the hash is malformed.
    """
    parts = hashed.split("$")
    try:
        if len(parts) == 5 and parts[:2] == ["", "7"]:
            iterations = int(parts[2])
            salt = base64.b64decode(parts[3], validate=True)
            expected = base64.b64decode(parts[4], validate=True)
            if iterations < 1 or not salt or not expected:
                return False
            actual = hashlib.pbkdf2_hmac(
                "sha512", password.encode(), salt, iterations, len(expected)
            )
        elif len(parts) == 4 and parts[:2] == ["", "6"]:
            salt = base64.b64decode(parts[2], validate=True)
            expected = base64.b64decode(parts[3], validate=True)
            actual = hashlib.sha512(password.encode() + salt).digest()
        else:
            return False
    except ValueError:  # binascii.Error is a ValueError
        return False
    return hmac.compare_digest(actual, expected)


def check_user_name(user: str) -> str:
    """Return ``user`` if Mosquitto's files can name it.

    Raises:
        ValueError: It is empty or holds ``:`` or whitespace, which would corrupt the
            ``user:hash`` line or the ACL's ``user`` line.
    """
    if not user or _BAD_USER.search(user):
        raise ValueError(f"user name {user!r} must be non-empty, without ':' or whitespace")
    return user


def password_file(entries: Mapping[str, str]) -> str:
    """The text of a Mosquitto password file.

    Args:
        entries: User name → hash (from :func:`hash_password`).

    Returns:
        One ``user:hash`` line per user, sorted by user, ending in a newline (empty text for no
        users).

    Raises:
        ValueError: A user name holds ``:`` or whitespace, or a hash holds whitespace.
    """
    lines = []
    for user in sorted(entries):
        hashed = entries[user]
        check_user_name(user)
        if not hashed or re.search(r"\s", hashed):
            raise ValueError(f"hash for {user!r} must be non-empty, without whitespace")
        lines.append(f"{user}:{hashed}\n")
    return "".join(lines)


def _literal(value: str, what: str) -> str:
    if not _LITERAL_LEVEL.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} cannot go into an ACL: it must be one topic level without "
            "'/', '+', '#' or whitespace"
        )
    return value


def _integration_topics(integration: Integration) -> list[str]:
    where = f"integration {integration.id!r}"
    app = _literal(integration.application_id, f"{where}: application_id")
    if integration.kind == "ttn":
        if integration.tenant_id is not None:
            app = f"{app}@{_literal(integration.tenant_id, f'{where}: tenant_id')}"
        return [f"v3/{app}/devices/+/up"]
    return [f"application/{app}/device/+/event/{event}" for event in ("status", "up")]


def _block(user: str, access: str, topics: Iterable[str]) -> list[str]:
    return ["", f"user {user}", *(f"topic {access} {topic}" for topic in sorted(topics))]


def acl_file(
    registry: Registry,
    *,
    topics: TopicScheme,
    worker_accounts: Sequence[str],
    shared_group: str | None,
) -> str:
    """The text of a Mosquitto ACL file that grants each account only what it needs.

    - a native or SenML device: ``topic write <prefix>/<its station>/telemetry``;
    - a ``ttn`` integration: ``topic write v3/<app>[@<tenant>]/devices/+/up``;
    - a ``chirpstack`` integration: ``topic write application/<app>/device/+/event/up``
      and ``.../event/status``;
    - a worker account: ``topic read`` on the native filter and the LoRaWAN filters.

    Revoked devices and integrations get no lines, and so no access. LoRaWAN devices get none
    either: their integration publishes for them. There are no ``pattern`` lines. Blocks are
    sorted by account name within each section, and topics within each block.

    Args:
        registry: The device registry.
        topics: The native topic scheme (its prefix).
        worker_accounts: The ingest workers' user names.
        shared_group: The workers' shared-subscription group, if they use one. Mosquitto checks
            read access against each delivered message's topic, never the ``$share/...``
            filter, so the group changes only the file's comments.

    Returns:
        The ACL text, ending in a newline.

    Raises:
        ValueError: An account name is unusable or given twice, the prefix or an application or
            tenant id cannot be written literally, or the shared group is not one topic level.
    """
    for level in topics.prefix.split("/"):
        _literal(level, "topic prefix level")
    if shared_group is not None:
        _literal(shared_group, "shared group")

    device_blocks: list[str] = []
    for device in sorted(registry.devices.values(), key=lambda d: d.id):
        if device.revoked or device.format not in DIRECT_FORMATS:
            continue
        station = _literal(device.station, f"device {device.id!r}: station")
        device_blocks += _block(check_user_name(device.id), "write", [topics.telemetry(station)])

    integration_blocks: list[str] = []
    for integration in sorted(registry.integrations.values(), key=lambda i: i.id):
        if integration.revoked:
            continue
        integration_blocks += _block(
            check_user_name(integration.id), "write", _integration_topics(integration)
        )

    taken = set(registry.devices) | set(registry.integrations)
    seen: set[str] = set()
    worker_blocks: list[str] = []
    worker_topics = [topics.subscription(None), *LORAWAN_FILTERS]
    for worker in sorted(worker_accounts):
        check_user_name(worker)
        if worker in taken:
            raise ValueError(f"worker account {worker!r} is also a device or integration")
        if worker in seen:
            raise ValueError(f"worker account {worker!r} is listed twice")
        seen.add(worker)
        worker_blocks += _block(worker, "read", worker_topics)

    lines = [
        "# Mosquitto ACL generated by `siaga devices` from the device registry.",
        "# Do not edit by hand: the next `siaga devices` run overwrites it.",
        "# An account may do only what is listed under it; anything else is denied.",
        "",
        "# Devices: each publishes for its own station only.",
        *device_blocks,
        "",
        "# LoRaWAN network servers: each publishes uplinks for its own application only.",
        *integration_blocks,
        "",
        "# Ingest workers: read only. Mosquitto checks each delivered message's topic, so",
        "# these plain filters also cover shared subscriptions"
        + (f" ($share/{shared_group}/...)." if shared_group else "."),
        *worker_blocks,
    ]
    return "\n".join(lines) + "\n"

"""The broker's password, ACL and TLS files on disk, and the signal that makes it re-read them.

The text of those files is made by :mod:`ops.credentials` and :mod:`ops.tls`, which do
no I/O; this module only writes, reads and signals. Every file is replaced atomically (a
temporary file in the same directory, fsynced, then renamed over the old one), so a broker
reloading at any moment reads either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import ConfigError
from ops.credentials import password_file

PASSWORD_FILE_MODE = 0o600
ACL_FILE_MODE = 0o644
KEY_FILE_MODE = 0o600
CERT_FILE_MODE = 0o644


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` so that readers see the old or the new content, whole.

    The new file gets ``mode`` and, when it replaces one, the old file's owner and group (the
    broker must still be able to read it).

    Raises:
        OSError: The directory is not writable, the disk is full, or the owner cannot be kept.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        previous: os.stat_result | None = path.stat()
    except FileNotFoundError:
        previous = None
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            if previous is not None and (previous.st_uid, previous.st_gid) != (
                os.geteuid(),
                os.getegid(),
            ):
                os.fchown(file.fileno(), previous.st_uid, previous.st_gid)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


@dataclass(frozen=True, slots=True)
class TlsPaths:
    """Where the broker's TLS listener finds its CA, certificate and key.

    Attributes:
        cafile: The CA certificate clients are told to trust (PEM).
        certfile: The server certificate (PEM).
        keyfile: The server's private key (PEM, unencrypted).
    """

    cafile: Path
    certfile: Path
    keyfile: Path

    def write(self, *, ca_cert_pem: bytes, cert_pem: bytes, key_pem: bytes) -> None:
        """Write the three PEM files atomically; the key readable by its owner only.

        Raises:
            OSError: A file could not be written.
        """
        write_atomically(self.cafile, ca_cert_pem, CERT_FILE_MODE)
        write_atomically(self.keyfile, key_pem, KEY_FILE_MODE)
        write_atomically(self.certfile, cert_pem, CERT_FILE_MODE)


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """The Mosquitto files ``siaga devices`` maintains.

    Attributes:
        password_file: ``user:hash`` lines (``password_file`` in mosquitto.conf).
        acl_file: The access rules (``acl_file`` in mosquitto.conf).
        pid_file: Where the broker writes its process id; when set, :meth:`reload_broker`
            signals that process.
    """

    password_file: Path
    acl_file: Path
    pid_file: Path | None = None

    def read_passwords(self) -> dict[str, str]:
        """The current user → hash entries; empty when the file does not exist yet.

        Raises:
            ConfigError: The file cannot be read or a line is not ``user:hash``.
        """
        try:
            text = self.password_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read password file {self.password_file}: {exc}") from None
        entries: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            user, sep, hashed = line.partition(":")
            if not sep or not user or not hashed:
                raise ConfigError(f"{self.password_file}:{number}: expected user:hash")
            if user in entries:
                raise ConfigError(f"{self.password_file}:{number}: user {user!r} appears twice")
            entries[user] = hashed
        return entries

    def write(self, passwords: Mapping[str, str], acl_text: str) -> None:
        """Replace both files atomically: the ACL first, then the passwords.

        In that order a crash between the two never grants more than either version: a revoked
        account loses its rights before its password, a new account gets its password after
        its rights.

        Args:
            passwords: User → hash, as :func:`ops.credentials.hash_password` makes them.
            acl_text: From :func:`ops.credentials.acl_file`.

        Raises:
            ValueError: A user name or hash cannot be written.
            OSError: A file could not be written.
        """
        password_text = password_file(passwords)
        write_atomically(self.acl_file, acl_text.encode(), ACL_FILE_MODE)
        write_atomically(self.password_file, password_text.encode(), PASSWORD_FILE_MODE)

    def broker_pid(self) -> int | None:
        """The broker's process id from the pid file, or None when there is no pid file.

        Raises:
            ConfigError: The pid file holds something other than a process id.
        """
        if self.pid_file is None:
            return None
        try:
            text = self.pid_file.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read pid file {self.pid_file}: {exc}") from None
        if not text:
            return None
        if not text.isdigit() or int(text) < 2:
            raise ConfigError(f"pid file {self.pid_file} does not hold a process id: {text!r}")
        return int(text)

    def reload_broker(self) -> bool:
        """Send the broker SIGHUP so it re-reads the password and ACL files.

        Mosquitto then disconnects clients whose account was removed or whose password changed;
        everyone else stays connected.

        Returns:
            True when a broker was signalled; False when no pid file is configured, it does not
            exist or is empty, or no process has that id any more.

        Raises:
            ConfigError: The pid file holds something other than a process id.
            PermissionError: The process belongs to another user.
        """
        pid = self.broker_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            return False
        return True


def _config_path(path: Path) -> str:
    text = str(path.absolute())
    if "\n" in text or "\r" in text:
        raise ValueError(f"path {text!r} cannot go into mosquitto.conf")
    return text


def mosquitto_listener_config(
    files: BrokerFiles,
    *,
    port: int = 8883,
    tls: TlsPaths | None = None,
    bind_address: str | None = None,
) -> list[str]:
    """mosquitto.conf lines that make the broker use these files, and a TLS listener.

    The lines rely on ``per_listener_settings false`` (Mosquitto's default): the password file,
    ACL and ``allow_anonymous false`` then hold for every listener, the plain and the TLS one.
    They go after the broker's own ``listener`` line, e.g. as
    ``MosquittoServer(extra_config=...)``.

    Args:
        files: The password, ACL and (optional) pid files.
        port: The TLS listener's port; unused without ``tls``.
        tls: The TLS listener's CA, certificate and key; no TLS listener when None.
        bind_address: The address the TLS listener binds to; every address when None.

    Returns:
        The configuration lines, without newlines.

    Raises:
        ValueError: A path holds a line break, or the port is out of range.
    """
    lines = [
        f"password_file {_config_path(files.password_file)}",
        f"acl_file {_config_path(files.acl_file)}",
        "allow_anonymous false",
    ]
    if files.pid_file is not None:
        lines.append(f"pid_file {_config_path(files.pid_file)}")
    if tls is not None:
        if not 0 < port < 65536:
            raise ValueError(f"port {port} is not between 1 and 65535")
        lines += [
            f"listener {port}" + (f" {bind_address}" if bind_address else ""),
            f"cafile {_config_path(tls.cafile)}",
            f"certfile {_config_path(tls.certfile)}",
            f"keyfile {_config_path(tls.keyfile)}",
            "tls_version tlsv1.2",
        ]
    return lines

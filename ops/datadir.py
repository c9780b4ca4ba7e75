"""The data directory of ``siaga up``: one lock, one place for state, ports and secrets.

Layout (default ``./.siaga``)::

    siaga.lock        held while a ``siaga up`` runs here (a second one is refused)
    state.json        ports chosen on the first run, so a second run keeps the same addresses
    platform.json     what `siaga users/alerts/devices` need to serve this platform: the
                      database, the broker, the settings file (no secret)
    secrets.json      MQTT passwords of the local accounts (0600; hashes go to the broker)
    broker/           mosquitto.conf, passwd, acl, persistence, its log
    influxdb/         influxd's data (when Siaga starts its own)
    siaga.db          incidents, notifications, users (SQLite)
    readings.db       readings when no InfluxDB is available (embedded storage)
    spool/, spool-alerts/   batches waiting for storage (the worker's, the engine's)
    logs/             one log per part
    inbox/            notifications delivered by the demo's local channel
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.errors import ServerError


class AlreadyRunningError(ServerError):
    """Another ``siaga up`` holds this data directory."""


@dataclass(frozen=True)
class DataDir:
    """Paths under one data directory."""

    root: Path

    def adopt_old_layout(self) -> None:
        """Move what an older ``siaga up`` kept under another name, so nothing it left waiting
        is forgotten: the engine's spool was ``alerts-spool/`` (now ``spool-alerts/``, named
        after ``spool.dir`` as the engine derives it)."""
        old, new = self.root / "alerts-spool", self.root / "spool-alerts"
        if old.is_dir() and not new.exists():
            old.rename(new)

    @property
    def lock(self) -> Path:
        """Held while ``siaga up`` runs."""
        return self.root / "siaga.lock"

    @property
    def state_file(self) -> Path:
        """Ports and choices of the first run."""
        return self.root / "state.json"

    @property
    def secrets_file(self) -> Path:
        """Local MQTT passwords (account → password), readable by this user only."""
        return self.root / "secrets.json"

    @property
    def broker(self) -> Path:
        """Siaga's own mosquitto."""
        return self.root / "broker"

    @property
    def influxdb(self) -> Path:
        """Siaga's own influxd."""
        return self.root / "influxdb"

    @property
    def database(self) -> Path:
        """The SQLite database of incidents, notifications and users."""
        return self.root / "siaga.db"

    @property
    def readings_db(self) -> Path:
        """The embedded readings store."""
        return self.root / "readings.db"

    @property
    def logs(self) -> Path:
        """One log file per part."""
        return self.root / "logs"

    @property
    def inbox(self) -> Path:
        """Where the demo's notifications are delivered."""
        return self.root / "inbox"

    @property
    def platform_file(self) -> Path:
        """Where ``siaga up`` records the platform it runs, for the other commands."""
        return self.root / "platform.json"

    def write_platform(self, record: dict[str, Any]) -> None:
        """Record the running platform (see :func:`ops.platform.platform_settings`)."""
        _write_private(self.platform_file, json.dumps(record, indent=2, sort_keys=True) + "\n")

    def read_platform(self) -> dict[str, Any] | None:
        """The recorded platform; None when no ``siaga up`` recorded one here."""
        try:
            loaded = json.loads(self.platform_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ServerError(f"{self.platform_file} is unreadable ({exc})") from None
        return loaded if isinstance(loaded, dict) else None

    def is_new(self) -> bool:
        """No earlier ``siaga up`` ran here."""
        return not self.state_file.exists()

    def read_state(self) -> dict[str, Any]:
        """The saved state; empty for a new directory."""
        try:
            loaded = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ServerError(f"{self.state_file} is unreadable ({exc}); move it away") from None
        return loaded if isinstance(loaded, dict) else {}

    def write_state(self, state: dict[str, Any]) -> None:
        """Save the state atomically."""
        _write_private(self.state_file, json.dumps(state, indent=2, sort_keys=True) + "\n")

    def read_secrets(self) -> dict[str, str]:
        """The local accounts' passwords."""
        try:
            loaded = json.loads(self.secrets_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ServerError(f"{self.secrets_file} is unreadable ({exc})") from None
        return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}

    def write_secrets(self, secrets: dict[str, str]) -> None:
        """Save the passwords, readable by this user only."""
        _write_private(self.secrets_file, json.dumps(secrets, indent=2, sort_keys=True) + "\n")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock for the block.

        Raises:
            AlreadyRunningError: Another process holds it; the message names its pid.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
                raise AlreadyRunningError(
                    f"Siaga is already running on the data directory {self.root} "
                    f"(pid {holder or 'unknown'}). Stop it first (Ctrl-C in its terminal, or "
                    f"kill {holder or '<pid>'}), or give another --data-dir."
                ) from None
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock, also when the process is killed


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)

"""Local Mosquitto and InfluxDB servers for development, demos, benchmarks and tests.

Each server runs from Debian's binaries with a configuration written into its own directory, on
the port it is given, and is stopped when its context ends. Nothing here is used in production,
where the regency's own broker and database are configured instead.
"""

from __future__ import annotations

import contextlib
import ctypes
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ops.errors import ServerError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds, or raise :class:`ServerError` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay_s = 0.01
    while not condition():
        if time.monotonic() > deadline:
            raise ServerError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(delay_s)
        delay_s = min(delay_s * 2, 0.2)


def require_binary(name: str) -> str:
    """The path of an installed program, or a ServerError telling how to install it."""
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if found is None:
        raise ServerError(
            f"{name} is not installed; run ./scripts/test once as root, or "
            "apt-get install mosquitto mosquitto-clients influxdb"
        )
    return found


def _die_with_parent() -> None:
    """In the child: be sent SIGTERM when the process that started us dies, however it dies.

    Without it a server started by ``siaga up`` or a test outlives a SIGKILL of its parent.
    Linux only; elsewhere the servers are stopped the ordinary way only.
    """
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_PR_SET_PDEATHSIG = 1


def _become(user: str | None) -> Callable[[], None]:
    """A ``preexec_fn``: switch to ``user`` (when given), then die with the parent.

    The order matters: Linux clears the parent-death signal when credentials change.
    """
    if user is None:
        return _die_with_parent
    import pwd  # noqa: PLC0415

    entry = pwd.getpwnam(user)

    def switch() -> None:
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
        _die_with_parent()

    return switch


@dataclass
class _Process:
    command: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    user: str | None = None

    def spawn(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_become(self.user),  # noqa: PLW1509 - a few syscalls, no locks
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.running() and self.process is not None else None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class MosquittoServer:
    """A Mosquitto broker with persistence, listening on 127.0.0.1.

    Args:
        directory: Where its configuration, persistence file and log live.
        port: The TCP port of its MQTT listener.
        extra_config: More mosquitto.conf lines (passwords, ACLs, TLS listeners).
        allow_anonymous: Whether clients without credentials may connect.
        max_packet_bytes: Its ``max_packet_size``: a larger PUBLISH is refused with the reason
            (``validation.broker_max_packet_bytes``); None: mosquitto's own limit.
    """

    directory: Path
    port: int = field(default_factory=free_port)
    extra_config: list[str] = field(default_factory=list)
    allow_anonymous: bool = True
    max_packet_bytes: int | None = None
    _process: _Process | None = None

    @property
    def url(self) -> str:
        """The broker's MQTT URL."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        """The generated mosquitto.conf."""
        return self.directory / "mosquitto.conf"

    def write_config(self) -> None:
        """Write mosquitto.conf; persistence on and no queue limit, so nothing queued is lost."""
        self.directory.mkdir(parents=True, exist_ok=True)
        lines = [
            f"user {getpass.getuser()}",
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "persistence true",
            f"persistence_location {self.directory}/",
            # Mosquitto drops messages beyond 1000 queued for an offline session by default.
            "max_queued_messages 0",
            "max_inflight_messages 0",
            "set_tcp_nodelay true",
            *(
                []
                if self.max_packet_bytes is None
                else [f"max_packet_size {self.max_packet_bytes}"]
            ),
            f"log_dest file {self.directory}/mosquitto.log",
            "log_type error",
            "log_type warning",
            "log_type notice",
            *self.extra_config,
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        self.write_config()
        binary = require_binary("mosquitto")
        self._process = _Process(
            [binary, "-c", str(self.config_path)], self.directory / "stdout.log"
        )
        self._process.spawn()
        try:
            wait_until(self._ready, 15, f"mosquitto on port {self.port}")
        except ServerError:
            raise ServerError(
                f"mosquitto did not start:\n{self._process.log_tail()}\n"
                f"{(self.directory / 'mosquitto.log').read_text(errors='replace')[-2000:]}"
                if (self.directory / "mosquitto.log").exists()
                else f"mosquitto did not start:\n{self._process.log_tail()}"
            ) from None

    def _ready(self) -> bool:
        if self._process is None or not self._process.running():
            raise ServerError("mosquitto exited during start-up")
        return port_open(self.port)

    def stop(self) -> None:
        """Stop the broker gracefully: it writes its persistence file on the way out."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def reload(self) -> None:
        """Ask the broker to re-read password and ACL files (SIGHUP) without dropping clients."""
        if self._process is not None and self._process.process is not None:
            self._process.process.send_signal(signal.SIGHUP)

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> MosquittoServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class InfluxServer:
    """An InfluxDB 1.x server (Debian's ``influxd``) listening on 127.0.0.1, reporting off.

    Args:
        directory: Where its configuration, data, WAL and meta directories live.
        port: The TCP port of its HTTP API.
        data_config: More lines for its ``[data]`` section (e.g. ``index-version = "tsi1"``).
    """

    directory: Path
    port: int = field(default_factory=free_port)
    data_config: list[str] = field(default_factory=list)
    _process: _Process | None = None

    @property
    def url(self) -> str:
        """The HTTP API's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        """Write influxdb.conf into the server's directory and return its path."""
        self.directory.mkdir(parents=True, exist_ok=True)
        rpc_port = free_port()
        path = self.directory / "influxdb.conf"
        extra_data = "".join(f"  {line}\n" for line in self.data_config)
        path.write_text(
            f"""reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{self.directory}/meta"
[data]
  dir = "{self.directory}/data"
  wal-dir = "{self.directory}/wal"
  query-log-enabled = false
{extra_data}[http]
  bind-address = "127.0.0.1:{self.port}"
  log-enabled = false
  max-body-size = 0
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
"""
        )
        return path

    def start(self) -> None:
        """Start influxd and wait until /ping answers."""
        config = self.write_config()
        binary = require_binary("influxd")
        env_free = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}
        self._process = _Process([binary, "-config", str(config)], self.directory / "influxd.log")
        with contextlib.ExitStack():
            saved = dict(os.environ)
            os.environ.clear()
            os.environ.update(env_free)
            try:
                self._process.spawn()
            finally:
                os.environ.clear()
                os.environ.update(saved)
        try:
            wait_until(self._ready, 30, f"influxd on port {self.port}")
        except ServerError:
            raise ServerError(f"influxd did not start:\n{self._process.log_tail()}") from None

    def _ready(self) -> bool:
        if self._process is None or not self._process.running():
            raise ServerError("influxd exited during start-up")
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:  # noqa: S310
                return bool(response.status == 204)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def pid(self) -> int | None:
        """influxd's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Stop influxd gracefully."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def __enter__(self) -> InfluxServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


_POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
_POSTGRES_USER = "postgres"


def _postgres_binary(name: str) -> str:
    found = _POSTGRES_BIN / name
    if not found.exists():
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        if not candidates:
            raise ServerError(f"{name} is not installed; apt-get install postgresql")
        found = candidates[-1]
    return str(found)


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster (initdb + postgres) on 127.0.0.1, trust authentication.

    PostgreSQL refuses to run as root, so as root the cluster lives in a fresh directory under
    the system temp dir owned by the ``postgres`` user and runs as that user; ``directory``
    then only keeps the log. The cluster's files are removed when it stops.

    Args:
        directory: Where its log (and, when not root, its data) live.
        port: The TCP port it listens on.
        database: A database created at start for the tests.
    """

    directory: Path
    port: int = field(default_factory=free_port)
    database: str = "siaga"
    _process: _Process | None = None
    _data: Path | None = None
    _owned_temp: Path | None = None

    @property
    def url(self) -> str:
        """A SQLAlchemy URL of the test database (psycopg 3)."""
        return self.database_url(self.database)

    def database_url(self, name: str) -> str:
        """A SQLAlchemy URL of database ``name`` on this server."""
        return f"postgresql+psycopg://{_POSTGRES_USER}@127.0.0.1:{self.port}/{name}"

    @property
    def _owner(self) -> str | None:
        return _POSTGRES_USER if os.geteuid() == 0 else None

    def start(self) -> None:
        """initdb, start postgres, wait until it accepts connections, create the database."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            import tempfile  # noqa: PLC0415

            self._owned_temp = Path(tempfile.mkdtemp(prefix="siaga-pg-"))
            shutil.chown(self._owned_temp, _POSTGRES_USER, _POSTGRES_USER)
            self._data = self._owned_temp / "data"
        else:
            self._data = self.directory / "data"
        initdb = subprocess.run(
            [
                _postgres_binary("initdb"),
                "-D",
                str(self._data),
                "-U",
                _POSTGRES_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            check=False,
            cwd="/",
            preexec_fn=_become(self._owner),
        )
        if initdb.returncode != 0:
            raise ServerError(
                f"initdb failed:\n{initdb.stdout[-2000:]!r}\n{initdb.stderr[-2000:]!r}"
            )
        log_path = self.directory / "postgres.log"
        if os.geteuid() == 0:
            log_path.touch()
            shutil.chown(log_path, _POSTGRES_USER)
        self._process = _Process(
            [
                _postgres_binary("postgres"),
                "-D",
                str(self._data),
                "-p",
                str(self.port),
                "-k",
                str(self._data),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            log_path,
            user=self._owner,
        )
        self._process.spawn()
        try:
            wait_until(self._ready, 30, f"postgres on port {self.port}")
        except ServerError:
            raise ServerError(f"postgres did not start:\n{self._process.log_tail()}") from None
        self.create_database(self.database)

    def _ready(self) -> bool:
        if self._process is None or not self._process.running():
            raise ServerError("postgres exited during start-up")
        return self.psql("SELECT 1", database="postgres", check=False).returncode == 0

    def psql(
        self, sql: str, database: str | None = None, *, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        """Run one SQL command with psql over TCP."""
        return subprocess.run(
            [
                _postgres_binary("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                _POSTGRES_USER,
                "-d",
                database or self.database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ],
            capture_output=True,
            check=check,
            timeout=30,
        )

    def create_database(self, name: str) -> str:
        """Create database ``name`` (letters, digits, underscores) and return its URL."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain database name: {name!r}")
        self.psql(f'CREATE DATABASE "{name}"', database="postgres")
        return self.database_url(name)

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        """Stop postgres (fast shutdown) and remove a temp cluster."""
        if self._process is not None:
            self._process.stop(signal.SIGINT)
            self._process = None
        if self._owned_temp is not None:
            shutil.rmtree(self._owned_temp, ignore_errors=True)
            self._owned_temp = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def local_stack(directory: Path) -> Iterator[tuple[MosquittoServer, InfluxServer]]:
    """A broker and a database side by side under one directory, stopped on exit."""
    with (
        MosquittoServer(directory / "mosquitto") as broker,
        InfluxServer(directory / "influxdb") as influx,
    ):
        yield broker, influx

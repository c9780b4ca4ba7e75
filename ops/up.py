"""``siaga up``: the whole platform in one command, supervised, with a flood to watch.

It starts, in order: Siaga's own mosquitto (or checks the MQTT 5 broker it is given), InfluxDB
(the configured one when it answers, else its own ``influxd``, else the embedded storage), the
ingest worker, the alert engine, the web UI and API, and on a first run the demo flood. All of it
keeps its data under one data directory, so a second ``siaga up`` there continues where the first
stopped. Deciding what to start (:func:`plan_storage`, :func:`accounts`) is pure; the supervisor
(:mod:`ops.supervisor`) moves the processes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import logging
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from alerts.incidents.migrations import upgrade
from alerts.incidents.ports import IncidentStore
from alerts.incidents.records import IncidentFilter
from alerts.incidents.store import SqlIncidentStore
from dashboards.api.accounts import AccountError, Role
from dashboards.api.service import add_user
from devices.registry import DIRECT_FORMATS, Registry, load_registry
from devices.topics import TopicScheme
from ingest.errors import ConfigError, SiagaError
from ingest.runtime import loop_restart, open_storage
from ingest.settings import DEFAULT_CONFIG, MqttSettings
from ingest.storage.base import Storage
from ingest.supervise import LoopFactory, supervised
from ops.brokeradmin import BrokerFiles
from ops.credentials import acl_file, generate_password, hash_password, verify_password
from ops.datadir import DataDir
from ops.errors import ServerError
from ops.platform import without_credentials
from ops.probe import MqttProbe, http_ok, influx_answers, probe_mqtt5
from ops.servers import InfluxServer, MosquittoServer, free_port, port_open, require_binary
from ops.settings import Settings
from ops.status import Status, read_metrics, status_from_metrics, status_line
from ops.supervisor import Part, PartFailedError, Supervisor

log = logging.getLogger(__name__)

INGEST_ACCOUNT = "siaga-up-ingest"
ALERTS_ACCOUNT = "siaga-up-alerts"
DEMO_SCENARIO = "way-tulang-bawang-flood"
ACK_SIGNER_ENTRY = "notify-ack-links"  # in secrets.json: the key signing one-click ack links
INBOX_NAME = "inbox"
StorageChoice = Literal["auto", "influx", "sqlite"]

BROKER_REQUIREMENTS = """\
An existing broker keeps Siaga's promise ("nothing acknowledged is ever lost") only when it has:
  - MQTT 5 with persistent sessions, and QoS 1 kept for offline sessions without a queue cap
    (mosquitto: persistence true, max_queued_messages 0, a memory bound in bytes);
  - no anonymous access, one account per device with an ACL (see `siaga devices`);
  - shared subscriptions ($share/...) when several ingest workers split the stream;
  - a maximum packet size of {max_packet} bytes (mosquitto: max_packet_size {max_packet}), so a
    device hears that its message is too large instead of it being dropped unseen.
See config/mosquitto/mosquitto.conf."""


@dataclass(frozen=True)
class UpOptions:
    """What the user asked of ``siaga up``.

    Attributes:
        data_dir: Where everything started here keeps its data.
        demo: Run the demo flood; None: only on a first run (a new data directory).
        config: The settings file the children read (None: their default).
        web_host: The web UI's address.
        web_port: The web UI's port.
        broker_url: An existing MQTT 5 broker to use instead of Siaga's own mosquitto.
        storage: ``influx``, ``sqlite`` (embedded), or ``auto`` (InfluxDB when one answers or
            ``influxd`` is installed, else embedded).
        demo_speed: Simulated seconds per wall second of the demo flood.
        status_interval_s: How often the status line is refreshed.
    """

    data_dir: Path = Path(".siaga")
    demo: bool | None = None
    config: Path | None = None
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    broker_url: str | None = None
    storage: StorageChoice = "auto"
    demo_speed: float = 3600.0
    status_interval_s: float = 2.0


def plan_storage(
    choice: StorageChoice, *, configured_answers: bool, influxd_installed: bool
) -> Literal["external-influx", "own-influx", "sqlite"]:
    """Which storage ``siaga up`` uses.

    Args:
        choice: What the user asked for.
        configured_answers: The configured InfluxDB answers ``/ping``.
        influxd_installed: ``influxd`` can be started locally.

    Raises:
        ServerError: InfluxDB was asked for and none can be had.
    """
    if choice == "sqlite":
        return "sqlite"
    if configured_answers:
        return "external-influx"
    if influxd_installed:
        return "own-influx"
    if choice == "influx":
        raise ServerError(
            "storage: no InfluxDB answers and influxd is not installed; "
            "apt-get install influxdb, set influx.url, or use --storage sqlite"
        )
    return "sqlite"


def accounts(registry: Registry) -> list[str]:
    """The MQTT accounts of a local broker: the registry's publishers plus Siaga's own readers."""
    publishers = [
        device.id
        for device in registry.devices.values()
        if not device.revoked and device.format in DIRECT_FORMATS
    ]
    publishers += [i.id for i in registry.integrations.values() if not i.revoked]
    return sorted({*publishers, INGEST_ACCOUNT, ALERTS_ACCOUNT})


def broker_hashes(
    names: Iterable[str], passwords: Mapping[str, str], existing: Mapping[str, str]
) -> dict[str, str]:
    """The local broker's password hashes, keeping what ``siaga devices`` set.

    ``siaga devices`` serves this data directory too: an account it added, or whose credential
    it rotated, has a hash in the broker's file that ``passwords`` (``secrets.json``) does not
    match; that hash stays, or the credential it printed once would stop working at the next
    start. Siaga's own reader accounts always take their password from ``passwords``.
    """
    hashes = {}
    for name in names:
        kept = existing.get(name)
        own = name in {INGEST_ACCOUNT, ALERTS_ACCOUNT}
        if kept is not None and not own and not verify_password(passwords[name], kept):
            hashes[name] = kept
        else:
            hashes[name] = hash_password(passwords[name])
    return hashes


def with_passwords(known: dict[str, str], names: Iterable[str]) -> dict[str, str]:
    """``known`` plus a new password for each account that has none."""
    return {name: known.get(name) or generate_password() for name in names}


def demo_policy(smtp_port: int) -> str:
    """The notification policy of ``siaga up``: every alert, in Bahasa Indonesia, to the local
    inbox. E-mail is not a phone, so the demo's back-dated (late) readings still reach it."""
    return f"""\
# Written by `siaga up` on every start: every alert goes to the local inbox ({INBOX_NAME}).
recipients:
  - name: inbox
    language: id
    channels:
      - name: email
        url: "mailto://127.0.0.1:{smtp_port}?from=siaga@localhost&to=piket@bpbd.localhost"
        pages: false
groups:
  - {{name: inbox, members: [inbox]}}
routes: []
default_groups: [inbox]
group_by: [regency, kind]
group_wait_s: 5
group_interval_s: 30
repeat_interval_s: 3600
"""


def ingest_environment(
    common: Mapping[str, str], *, client_id: str, metrics_port: int
) -> dict[str, str]:
    """The ingest worker's environment: the common one, its MQTT session and metrics port.

    The worker's device-health tracker is off whatever the settings file says: the engine
    that ``siaga up`` starts beside it stores health from every reading, and a worker's
    snapshots (of its share of the stream) would overwrite that view.
    """
    return {
        **common,
        "SIAGA_MQTT__CLIENT_ID": client_id,
        "SIAGA_METRICS__PORT": str(metrics_port),
        "SIAGA_HEALTH__ENABLED": "false",
    }


def client_id(data_dir: Path, role: str) -> str:
    """The MQTT client id of ``role`` for one data directory.

    Stable per data directory, distinct between data directories: two platforms on one broker
    never take over each other's session.
    """
    tag = hashlib.blake2b(str(data_dir).encode(), digest_size=4).hexdigest()
    return f"siaga-{role}-{tag}"


@dataclass(frozen=True)
class Wiring:
    """Where the parts of one ``siaga up`` run find each other.

    Attributes:
        data_dir: Where every part keeps what it writes.
        mqtt_url: The broker.
        influx_url: The InfluxDB in use; None: the embedded (SQLite) storage.
        web_url: The web UI's address (acknowledgement links point at it).
        secret_key: Signs one-click acknowledgement links (``api.secret_key``).
        config: The settings file the children read (None: their default).
        metrics_port: The ingest worker's Prometheus port.
        alerts_metrics_port: The engine's Prometheus port.
        broker_passwords: Account → password on Siaga's own broker; None for a broker given
            with ``--broker`` (its URL carries the credentials).
    """

    data_dir: DataDir
    mqtt_url: str
    influx_url: str | None
    web_url: str
    secret_key: str
    config: Path | None
    metrics_port: int
    alerts_metrics_port: int
    broker_passwords: Mapping[str, str] | None


def part_environments(wiring: Wiring) -> dict[str, dict[str, str]]:
    """The environment of each child (``ingest``, ``alerts``, ``web``, ``demo``).

    Every place a part writes is under the data directory, and every MQTT session is named
    after it: the worker's is ``mqtt.client_id``, the engine's ``mqtt.client_id`` with
    ``-alerts`` (its spool ``spool.dir`` with ``-alerts``), so each part gets its own id.
    """
    root = wiring.data_dir.root
    common = {
        "SIAGA_MQTT__URL": wiring.mqtt_url,
        "SIAGA_SPOOL__DIR": str(root / "spool"),
        "SIAGA_DATABASE__URL": f"sqlite:///{wiring.data_dir.database}",
        "SIAGA_API__SECRET_KEY_FILE": str(root / "api-secret.key"),
        "SIAGA_API__PUBLIC_URL": wiring.web_url,
        "SIAGA_API__SECRET_KEY": wiring.secret_key,
        "SIAGA_NOTIFY__POLICY_FILE": str(root / "alerts.yaml"),
        # The engine and the API read the models `siaga forecast fit --models-dir` wrote.
        "SIAGA_FORECAST__MODELS_DIR": str(root / "forecast-models"),
        # Set whether used or not (the embedded storage only as the backend, the broker's files
        # by `siaga devices`): no part's setting may point outside the data directory.
        "SIAGA_STORAGE__SQLITE_PATH": str(wiring.data_dir.readings_db),
        "SIAGA_BROKER__PASSWORD_FILE": str(wiring.data_dir.broker / "passwd"),
        "SIAGA_BROKER__ACL_FILE": str(wiring.data_dir.broker / "acl"),
        "PYTHONUNBUFFERED": "1",
    }
    if wiring.config is not None:
        common["SIAGA_CONFIG"] = str(wiring.config.resolve())
    if wiring.influx_url is not None:
        common["SIAGA_INFLUX__URL"] = wiring.influx_url
        common["SIAGA_STORAGE__BACKEND"] = "influx"
    else:
        common["SIAGA_STORAGE__BACKEND"] = "sqlite"
    ingest = ingest_environment(
        common, client_id=client_id(root, "ingest"), metrics_port=wiring.metrics_port
    )
    alerts = {
        **common,
        # The engine's session and leader lock: this id with -alerts.
        "SIAGA_MQTT__CLIENT_ID": client_id(root, "engine"),
        "SIAGA_METRICS__PORT": str(wiring.alerts_metrics_port),
    }
    if wiring.broker_passwords is not None:
        for part_env, account in ((ingest, INGEST_ACCOUNT), (alerts, ALERTS_ACCOUNT)):
            part_env["SIAGA_MQTT__USERNAME"] = account
            part_env["SIAGA_MQTT__PASSWORD"] = wiring.broker_passwords[account]
    return {"ingest": ingest, "alerts": alerts, "web": dict(common), "demo": dict(common)}


def _port(state: dict[str, object], key: str) -> int:
    """The port saved under ``key``, or a new free one when it is unset or taken now."""
    saved = state.get(key)
    if isinstance(saved, int) and not port_open(saved):
        return saved
    port = free_port()
    state[key] = port
    return port


class Platform:
    """One ``siaga up`` run over a data directory."""

    def __init__(
        self,
        settings: Settings,
        options: UpOptions,
        say: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self._options = options
        self._say = say
        self._dir = DataDir(options.data_dir.resolve())
        self._supervisor = Supervisor(self._dir.logs, report=say)
        self._siaga = [sys.executable, "-m", "siaga"]
        self.first_run = self._dir.is_new()
        self.demo = options.demo if options.demo is not None else self.first_run
        self._state: dict[str, object] = {}
        self._secrets: dict[str, str] = {}
        self._mqtt_url = ""
        self._influx_url: str | None = None
        self._metrics_port = 0
        self._database_url = f"sqlite:///{self._dir.database}"
        self._web_url = f"http://{options.web_host}:{options.web_port}"
        self.admin_password: str | None = None
        self.loop_restarts: Counter[str] = Counter()
        """How often each of :meth:`keep_running`'s loops failed and was restarted."""

    # -- the parts ----------------------------------------------------------------------------

    def _registry(self) -> Registry:
        stations = self._settings.stations
        return load_registry(stations.file, stations.devices_file)

    def _broker(self, registry: Registry) -> Part | None:
        options = self._options
        if options.broker_url is not None:
            self._use_existing_broker(options.broker_url)
            return None
        try:
            binary = require_binary("mosquitto")
        except ServerError:
            raise PartFailedError(
                "broker",
                "mosquitto is not installed. Install it (apt-get install mosquitto), or give "
                "--broker mqtt://host:port of an MQTT 5 broker. Siaga does not embed a broker: "
                "the Python ones tried do not keep its guarantees (README, 'siaga up').",
            ) from None
        port = _port(self._state, "mqtt_port")
        files = BrokerFiles(self._dir.broker / "passwd", self._dir.broker / "acl")
        try:
            existing = files.read_passwords()
        except ConfigError as exc:
            self._say(f"broker password file rewritten: {exc}")
            existing = {}
        files.write(
            broker_hashes(accounts(registry), self._secrets, existing),
            acl_file(
                registry,
                topics=TopicScheme(self._settings.mqtt.topic_prefix),
                worker_accounts=[INGEST_ACCOUNT, ALERTS_ACCOUNT],
                shared_group=self._settings.mqtt.shared_group,
            ),
        )
        server = MosquittoServer(
            self._dir.broker,
            port=port,
            allow_anonymous=False,
            extra_config=[f"password_file {files.password_file}", f"acl_file {files.acl_file}"],
            max_packet_bytes=self._settings.validation.broker_max_packet_bytes,
        )
        server.write_config()
        self._mqtt_url = server.url
        password = self._secrets[INGEST_ACCOUNT]
        return Part(
            "broker",
            [binary, "-c", str(server.config_path)],
            ready=lambda: (
                probe_mqtt5("127.0.0.1", port, username=INGEST_ACCOUNT, password=password).accepted
            ),
            ready_timeout_s=20,
        )

    def _use_existing_broker(self, url: str) -> None:
        mqtt = MqttSettings(url=url)
        found: MqttProbe = probe_mqtt5(
            mqtt.host,
            mqtt.port,
            username=mqtt.username,
            password=None if mqtt.password is None else mqtt.password.get_secret_value(),
        )
        if not found.is_mqtt5:
            raise PartFailedError("broker", f"{mqtt.url}: {found.detail}")
        if not found.accepted:
            raise PartFailedError("broker", f"{mqtt.url}: {found.detail}")
        requirements = BROKER_REQUIREMENTS.format(
            max_packet=self._settings.validation.broker_max_packet_bytes
        )
        self._say(f"using the MQTT 5 broker at {mqtt.url}.\n{requirements}")
        self._mqtt_url = url

    def _storage(self) -> Part | None:
        influx = self._settings.influx
        where = plan_storage(
            self._options.storage,
            configured_answers=self._options.storage != "sqlite" and influx_answers(influx.url),
            influxd_installed=_installed("influxd"),
        )
        if where == "external-influx":
            self._influx_url = influx.url
            self._say(f"storage: the InfluxDB at {influx.url}")
            return None
        if where == "sqlite":
            self._influx_url = None
            self._say(
                f"storage: embedded (SQLite, {self._dir.readings_db}); no InfluxDB answers and "
                "influxd is not installed (apt-get install influxdb for production scale)"
            )
            return None
        port = _port(self._state, "influx_port")
        server = InfluxServer(self._dir.influxdb, port=port)
        config = server.write_config()
        self._influx_url = server.url
        self._say(f"storage: Siaga's own influxd at {server.url} ({self._dir.influxdb})")
        return Part(
            "influxdb",
            [require_binary("influxd"), "-config", str(config)],
            ready=lambda: influx_answers(server.url),
            ready_timeout_s=60,
        )

    def _platform(self) -> dict[str, Any]:
        """What ``siaga users/alerts/devices`` need to serve this platform (never a secret)."""
        record: dict[str, Any] = {
            "database": {"url": self._database_url},
            "mqtt": {"url": without_credentials(self._mqtt_url)},
            "api": {
                "secret_key_file": str(self._dir.root / "api-secret.key"),
                "public_url": self._web_url,
            },
        }
        if self._options.broker_url is None:
            record["broker"] = {
                "password_file": str(self._dir.broker / "passwd"),
                "acl_file": str(self._dir.broker / "acl"),
            }
        # Absolute paths: the commands may run from any directory.
        stations = self._settings.stations
        record["stations"] = {
            "file": str(stations.file.resolve()),
            "devices_file": str(stations.devices_file.resolve()),
        }
        config = self._options.config
        if config is None and DEFAULT_CONFIG.is_file():
            config = DEFAULT_CONFIG
        if config is not None:
            record["config"] = str(config.resolve())
        return record

    def _child_settings(self) -> Settings:
        """The settings tree as the children read it (their environment applied)."""
        storage = self._settings.storage.model_copy(
            update={
                "backend": "sqlite" if self._influx_url is None else "influx",
                "sqlite_path": self._dir.readings_db,
            }
        )
        update: dict[str, object] = {
            "storage": storage,
            "database": self._settings.database.model_copy(update={"url": self._database_url}),
            "api": self._settings.api.model_copy(
                update={"secret_key_file": self._dir.root / "api-secret.key"}
            ),
        }
        if self._influx_url is not None:
            update["influx"] = self._settings.influx.model_copy(update={"url": self._influx_url})
        return self._settings.model_copy(update=update)

    def _prepare_database(self) -> None:
        """Migrate the database once, before any child does (SQLite: no racing migrations),
        and create the first admin on a first run (the password is shown once, kept hashed)."""

        upgrade(self._database_url)
        if self._state.get("admin") is not None:
            return
        try:
            user, generated = add_user(self._child_settings(), "admin", Role.ADMIN, None)
        except AccountError as exc:
            # An earlier run created it but was killed before saving its state.
            self._say(f"first admin not created: {exc}")
            self._state["admin"] = "admin"
            return
        self._state["admin"] = user.username
        self.admin_password = generated

    def _inbox(self) -> Part:
        port = _port(self._state, "smtp_port")
        policy = self._dir.root / "alerts.yaml"
        policy.write_text(demo_policy(port), encoding="utf-8")
        return Part(
            INBOX_NAME,
            [sys.executable, "-m", "ops.inbox", "--dir", str(self._dir.inbox), "--port", str(port)],
            ready=lambda: port_open(port),
            ready_timeout_s=20,
        )

    def _processes(self) -> list[Part]:
        mqtt_url = self._mqtt_url
        self._metrics_port = _port(self._state, "metrics_port")
        own_broker = self._options.broker_url is None
        environments = part_environments(
            Wiring(
                data_dir=self._dir,
                mqtt_url=mqtt_url,
                influx_url=self._influx_url,
                web_url=self._web_url,
                secret_key=self._secrets[ACK_SIGNER_ENTRY],
                config=self._options.config,
                metrics_port=self._metrics_port,
                alerts_metrics_port=_port(self._state, "alerts_metrics_port"),
                broker_passwords=self._secrets if own_broker else None,
            )
        )
        web = f"http://{self._options.web_host}:{self._options.web_port}"
        metrics_url = f"http://127.0.0.1:{self._metrics_port}/metrics"
        parts = [
            Part(
                "ingest",
                [*self._siaga, "ingest"],
                environments["ingest"],
                ready=lambda: read_metrics(metrics_url) is not None,
                ready_timeout_s=60,
            ),
            Part(
                "alerts",
                [*self._siaga, "alerts", "run"],
                environments["alerts"],
                ready_timeout_s=60,
            ),
            Part(
                "web",
                [
                    *self._siaga,
                    "serve",
                    "--host",
                    self._options.web_host,
                    "--port",
                    str(self._options.web_port),
                ],
                environments["web"],
                ready=lambda: http_ok(f"{web}/healthz"),
                ready_timeout_s=60,
            ),
        ]
        if self.demo:
            parts.append(
                Part(
                    "demo",
                    [
                        *self._siaga,
                        "simulate",
                        "--scenario",
                        DEMO_SCENARIO,
                        "--speed",
                        str(self._options.demo_speed),
                        "--broker",
                        mqtt_url,
                        "--credentials",
                        str(self._dir.secrets_file),
                    ],
                    environments["demo"],
                    restart=False,
                )
            )
        return parts

    def _check_web_port(self) -> None:
        port = self._options.web_port
        if port_open(port, self._options.web_host):
            raise PartFailedError(
                "web",
                f"port {port} on {self._options.web_host} is taken by another program; "
                "stop it or choose another port with --port",
            )

    # -- running ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Start everything, report, keep it running until ``stop``, then stop it all cleanly.

        Raises:
            AlreadyRunningError: Another ``siaga up`` holds the data directory.
            PartFailedError: A part could not start (named, with the reason); the rest stopped.
        """
        with self._dir.locked():
            self._dir.adopt_old_layout()
            self._state = self._dir.read_state()
            registry = self._registry()
            self._secrets = with_passwords(
                self._dir.read_secrets(), [*accounts(registry), ACK_SIGNER_ENTRY]
            )
            self._dir.write_secrets(self._secrets)
            self._check_web_port()
            started = False
            try:
                broker = self._broker(registry)
                storage = self._storage()
                for part in (broker, storage):
                    if part is not None:
                        await self._supervisor.start(part)
                await asyncio.to_thread(self._prepare_database)
                await self._supervisor.start(self._inbox())
                self._dir.write_platform(self._platform())
                for part in self._processes():
                    await self._supervisor.start(part)
                self._dir.write_state(self._state)
                started = True
                self._say(self._summary())
                self._say("ready")
                await self.keep_running(stop)
            finally:
                if not started:
                    self._say("stopping what was started")
                await self._supervisor.stop_all()
            self._say(f"Siaga stopped; everything acknowledged was stored under {self._dir.root}")

    async def keep_running(self, stop: asyncio.Event) -> None:
        """Watch the parts and show the status line until ``stop``.

        Both loops run supervised: one that raises is reported, counted in
        :attr:`loop_restarts` and started again, so a bug there never leaves the parts unwatched.
        """
        loops: dict[str, LoopFactory] = {
            "watch": self._supervisor.watch,
            "status": functools.partial(self._report_status, stop),
        }
        async with supervised(
            loops,
            restart=loop_restart(self._settings),
            on_failure=self._loop_failed,
            task_prefix="siaga.up",
        ):
            await stop.wait()

    def _loop_failed(self, name: str) -> None:
        self.loop_restarts[name] += 1
        self._say(f"siaga up's {name} loop failed (the traceback is logged); restarting it")

    def _command(self, group: str) -> str:
        """``siaga GROUP``, naming the data directory unless it is ``./.siaga`` from here."""
        if self._dir.root == (Path.cwd() / ".siaga").resolve():
            return f"siaga {group}"
        return f"siaga {group} --data-dir {self._dir.root}"

    def _summary(self) -> str:
        options = self._options
        lines = [
            "",
            "Siaga is running.",
            f"  web UI and API   http://{options.web_host}:{options.web_port}/",
            f"  MQTT broker      {self._mqtt_url}"
            + (" (Siaga's own mosquitto; per-device passwords)" if not options.broker_url else ""),
            f"  storage          {self._influx_url or f'embedded SQLite {self._dir.readings_db}'}",
            f"  incidents, users {self._dir.database}",
            f"  data directory   {self._dir.root}",
            f"  from a terminal  {self._command('alerts')} list, {self._command('users')} list "
            "(they serve this platform)",
            f"  logs             {self._dir.logs}/<part>.log",
            f"  metrics          http://127.0.0.1:{self._metrics_port}/metrics",
        ]
        if self.admin_password is not None:
            lines += [
                "First admin (created now; the password is shown this once and stored hashed):",
                f"  user admin   password {self.admin_password}",
                f"  more users: {self._command('users')} add NAME --role viewer|operator|admin",
            ]
        else:
            lines.append("  login            the admin created on the first run")
        if options.broker_url is None:
            lines += [
                "Publish a first reading as the device of station tb-menggala:",
                f"  mosquitto_pub -V mqttv5 -p {self._mqtt_url.rsplit(':', 1)[1]} -q 1 "
                f'-u gauge-tb-menggala -P "$(python3 -c "import json;print(json.load(open('
                f"'{self._dir.secrets_file}'))['gauge-tb-menggala'])\")\" "
                "-t siaga/tb-menggala/telemetry "
                '-m \'{"ts": "\'$(date -u +%FT%TZ)\'", "water_level_cm": 182.4}\'',
            ]
        if self.demo:
            lines.append(
                f"Demo: the {DEMO_SCENARIO} flood plays at {options.demo_speed:g}x; its readings "
                "carry simulated (back-dated) times, so they count as late data. Menggala crosses "
                "Waspada, Siaga and Awas within a few minutes; notifications go to "
                f"{self._dir.inbox}."
            )
        lines.append("Ctrl-C stops everything; nothing acknowledged is lost.")
        return "\n".join(lines)

    async def _report_status(self, stop: asyncio.Event) -> None:
        backend: Literal["influx", "sqlite"] = "sqlite" if self._influx_url is None else "influx"
        storage = open_storage(self._child_settings(), backend, lambda _: {})
        async with SqlIncidentStore(self._database_url) as incidents:
            try:
                await self._status_loop(stop, storage, incidents)
            finally:
                await storage.aclose()

    async def _status_loop(
        self, stop: asyncio.Event, storage: Storage, incidents: IncidentStore
    ) -> None:
        url = f"http://127.0.0.1:{self._metrics_port}/metrics"
        previous: Status | None = None
        previous_at = time.monotonic()
        interactive = sys.stderr.isatty()
        last_printed = 0.0
        while not stop.is_set():
            await asyncio.sleep(self._options.status_interval_s)
            samples = await asyncio.to_thread(read_metrics, url)
            if samples is None:
                continue
            try:
                reporting = len(await storage.latest())
                active = len(await incidents.list(IncidentFilter(limit=100_000)))
            except SiagaError as exc:
                self._say(f"status: {exc}")
                reporting = active = -1
            current = dataclasses.replace(
                status_from_metrics(samples),
                stations_reporting=None if reporting < 0 else reporting,
                active_incidents=None if active < 0 else active,
            )
            now = time.monotonic()
            line = status_line(previous, current, now - previous_at)
            previous, previous_at = current, now
            if interactive:
                print(f"\r\x1b[2K{line}", end="", file=sys.stderr, flush=True)
            elif now - last_printed >= 30:
                self._say(line)
                last_printed = now


def _installed(name: str) -> bool:
    try:
        require_binary(name)
    except ServerError:
        return False
    return True


def run_up(settings: Settings, options: UpOptions, say: Callable[[str], None]) -> None:
    """Run the platform until SIGINT or SIGTERM.

    Raises:
        ServerError: A part could not start, or the data directory is in use.
    """

    # Migrations are run once here; their step-by-step INFO lines are not news to the operator.
    logging.getLogger("alembic").setLevel(logging.WARNING)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await Platform(settings, options, say).run(stop)

    asyncio.run(main())

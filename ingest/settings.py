"""Siaga's one typed settings tree: YAML file, overridden by ``SIAGA_*`` environment variables.

``SIAGA_MQTT__URL=mqtt://user:pass@host:1883`` sets ``mqtt.url``; ``__`` separates levels.
Units are in field names; secrets are :class:`~pydantic.SecretStr` and never printed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import unquote, urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from devices.topics import DEFAULT_PREFIX
from ingest.errors import ConfigError

DEFAULT_CONFIG = Path("config/siaga.yaml")


class Section(BaseModel):
    """Base of every settings section: unknown keys are refused, values are frozen.

    A key that was folded into another is named in :attr:`retired` (old key -> what to set
    instead): a settings file or environment that still gives it is refused with the new key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    retired: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_retired(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for old, instead in cls.retired.items():
                if old in data:
                    raise ValueError(f"{old} is no longer a setting: {instead}")
        return data


class MqttSettings(Section):
    """The broker the worker subscribes to."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: SecretStr | None = None
    client_id: str = Field(
        default_factory=lambda: f"siaga-ingest-{socket.gethostname()}"[:64], min_length=1
    )
    topic_prefix: str = Field(default=DEFAULT_PREFIX, pattern=r"^[A-Za-z0-9_./-]+$")
    shared_group: str | None = Field(default="siaga-ingest", pattern=r"^[A-Za-z0-9_-]+$")
    keepalive_s: int = Field(default=30, ge=5, le=65535)
    session_expiry_s: int = Field(default=7 * 86400, ge=0)
    receive_maximum: int = Field(default=65535, ge=1, le=65535)
    lorawan: bool = Field(
        default=True, description="also subscribe to The Things Stack and ChirpStack uplinks"
    )
    connect_timeout_s: float = Field(default=10.0, gt=0)
    ca_file: Path | None = Field(
        default=None, description="CA certificate to trust for mqtts:// (default: the system's)"
    )
    reconnect_initial_s: float = Field(default=0.2, gt=0)
    reconnect_max_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _credentials_from_url(cls, data: Any) -> Any:
        # Credentials in the URL move to their own fields so the URL can be logged.
        if isinstance(data, dict) and isinstance(data.get("url"), str):
            parts = urlsplit(data["url"])
            if parts.username is not None:
                data = dict(data)
                data.setdefault("username", unquote(parts.username))
                if parts.password is not None:
                    data.setdefault("password", unquote(parts.password))
                netloc = parts.netloc.rpartition("@")[2]
                data["url"] = parts._replace(netloc=netloc).geturl()
        return data

    @field_validator("url")
    @classmethod
    def _mqtt_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"mqtt", "tcp", "mqtts", "ssl"}:
            raise ValueError(
                f"scheme must be mqtt:// or mqtts:// (got {parts.scheme or 'none'}://)"
            )
        if not parts.hostname:
            raise ValueError("URL has no host")
        try:
            _ = parts.port
        except ValueError:
            raise ValueError("port is not a number between 0 and 65535") from None
        return url

    @property
    def host(self) -> str:
        """The broker's host name."""
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def tls(self) -> bool:
        """Whether the URL asks for TLS (``mqtts://``)."""
        return urlsplit(self.url).scheme in {"mqtts", "ssl"}

    @property
    def port(self) -> int:
        """The broker's port (1883, or 8883 for mqtts://, when the URL names none)."""
        return urlsplit(self.url).port or (8883 if self.tls else 1883)


class InfluxSettings(Section):
    """The InfluxDB server, through its v1 HTTP API (also served by InfluxDB 2.x and 3.x)."""

    url: str = "http://127.0.0.1:8086"
    database: str = Field(default="siaga", pattern=r"^[A-Za-z0-9_-]+$")
    retention_policy: str = Field(default="siaga_1y", pattern=r"^[A-Za-z0-9_-]+$")
    retention_days: int = Field(default=365, ge=1)
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    create_database: bool = True
    rollups: bool = Field(
        default=True,
        description="keep hourly mean/min/max/sum/count of telemetry (a continuous query into "
        "retention policy rollup_policy) so long charts read 60 times fewer points; "
        "InfluxDB 1.x only",
    )
    rollup_policy: str = Field(default="siaga_rollup", pattern=r"^[A-Za-z0-9_-]+$")
    rollup_retention_days: int = Field(default=5 * 365, ge=1)
    rollup_interval_s: float = Field(
        default=300.0,
        gt=0,
        description="how often the hours that late readings made dirty are rolled up again "
        "(in the background; charts read those hours raw until then); as often as the "
        "continuous query runs: an hour of a draining backlog is recomputed once per interval, "
        "and that costs InfluxDB about as much as writing it",
    )
    rollup_settle_s: float = Field(
        default=30.0,
        ge=0,
        description="dirty marks younger than this wait for the next pass: another worker's "
        "write that made them may still be on its way",
    )
    rollup_timeout_s: float = Field(
        default=300.0,
        gt=0,
        description="how long one rollup recompute may take (a backlog's hour of every "
        "station is far more than a chart's query)",
    )
    rollup_marks_per_batch: int = Field(
        default=256,
        ge=1,
        description="dirty (hour, station) marks one batch writes at most; beyond, the busiest "
        "hours are marked dirty for every station",
    )
    gzip: bool = True
    timeout_s: float = Field(default=10.0, gt=0)
    write_retry_initial_s: float = Field(default=0.05, gt=0)
    write_retry_max_s: float = Field(default=1.0, gt=0)
    write_retry_deadline_s: float = Field(
        default=2.0, ge=0, description="then the batch goes to the spool"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.username or parts.password:
            raise ValueError("put credentials in influx.username/password or influx.token")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _one_kind_of_auth(self) -> InfluxSettings:
        if self.token is not None and (self.username or self.password):
            raise ValueError("give either token or username/password, not both")
        return self


class StorageSettings(Section):
    """Which backend stores readings: InfluxDB, or the embedded SQLite file.

    ``auto`` uses InfluxDB when it is configured (a URL other than the default, or credentials)
    or answers at the default URL, and SQLite otherwise: a laptop without InfluxDB still runs.
    """

    backend: Literal["influx", "sqlite", "auto"] = "auto"
    sqlite_path: Path = Path("var/siaga-telemetry.sqlite")
    sqlite_synchronous: Literal["full", "normal"] = Field(
        default="full", description="full: an acknowledged batch survives a power cut"
    )
    probe_timeout_s: float = Field(default=1.0, gt=0, description="auto: how long to ask InfluxDB")


class BatchSettings(Section):
    """When the worker flushes a batch to storage."""

    max_points: int = Field(default=5000, ge=1, le=100_000)
    flush_interval_s: float = Field(default=0.05, gt=0, le=60)
    idle_flush_s: float | None = Field(
        default=0.002,
        ge=0,
        le=60,
        description="flush early once input is idle this long with acknowledgements pending "
        "and the writer idle (brokers that keep one message in flight); null: never",
    )
    idle_flush_max_messages: int = Field(
        default=16,
        ge=1,
        le=65535,
        description="only while at most this many messages wait for acknowledgement: a broker "
        "holding back more than that already gets max/flush_interval_s messages a second",
    )
    max_batches_in_flight: int = Field(default=4, ge=1, le=64)


class SpoolSettings(Section):
    """The on-disk spool that keeps batches while storage is down."""

    dir: Path = Path("var/spool")
    max_bytes: int = Field(default=2 << 30, ge=1 << 20)
    segment_bytes: int = Field(default=64 << 20, ge=4096)
    warn_fraction: float = Field(default=0.8, gt=0, le=1)
    drain_retry_initial_s: float = Field(default=0.5, gt=0)
    drain_retry_max_s: float = Field(default=10.0, gt=0)


PACKET_HEADROOM_BYTES = 8 * 1024
"""Room for the topic and properties of a PUBLISH above ``validation.max_payload_bytes``."""


class ValidationSettings(Section):
    """Bounds every message and reading must respect.

    ``max_payload_bytes`` is the one source of every size limit on the way in: the broker
    refuses at publish, with the reason, what no subscriber would take
    (:attr:`broker_max_packet_bytes`), and the subscribers take whatever the broker accepts
    (:attr:`subscriber_max_packet_bytes`), storing a payload over the limit as a
    ``payload_too_large`` rejection. Nothing is dropped between the two in silence.
    """

    max_payload_bytes: int = Field(default=64 * 1024, ge=64)
    max_readings_per_message: int = Field(default=1000, ge=1)
    max_future_s: float = Field(default=300.0, ge=0)
    max_age_s: float | None = Field(
        default=None, gt=0, description="defaults to the retention window"
    )

    @property
    def subscriber_max_packet_bytes(self) -> int:
        """The Maximum Packet Size the worker and the engine announce in CONNECT."""
        return self.max_payload_bytes + PACKET_HEADROOM_BYTES

    @property
    def broker_max_packet_bytes(self) -> int:
        """The broker's ``max_packet_size``: a device's PUBLISH past it is refused (MQTT 5:
        DISCONNECT with reason 0x95, Packet too large).

        Half the headroom below the subscribers' limit: what the broker forwards is the
        device's packet plus at most a few bytes of properties it adds, so everything it
        accepts reaches them.
        """
        return self.max_payload_bytes + PACKET_HEADROOM_BYTES // 2


class StationsSettings(Section):
    """Where the station and device registry comes from."""

    file: Path = Path("config/stations.yaml")
    devices_file: Path = Path("config/devices.yaml")
    reload_interval_s: float = Field(default=2.0, gt=0)


class HealthSettings(Section):
    """Device health snapshots (measurement ``device_health``)."""

    enabled: bool = Field(
        default=False,
        description="the worker's own tracker, for one worker without the alert engine; the "
        "engine (siaga alerts run) stores health from every reading whatever this says",
    )
    interval_s: float = Field(default=60.0, gt=0)
    restart_initial_s: float = Field(
        default=1.0,
        gt=0,
        description="backoff of a failed secondary loop: the worker's (health, registry watch) "
        "and the engine's companions (registry and rules watch, the notifier's tasks)",
    )
    restart_max_s: float = Field(default=60.0, gt=0)
    heartbeat_s: float = Field(default=900.0, gt=0)
    """A station's snapshot is stored when it changed materially, and at least this often."""


class MetricsSettings(Section):
    """The Prometheus endpoint."""

    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)
    enabled: bool = True


class LogSettings(Section):
    """Logging."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class Settings(BaseSettings):
    """The data plane's settings: the root of Siaga's one settings tree.

    Each package that builds on ``ingest`` extends this class with its own sections
    (``alerts.settings.Settings`` adds alerting, ``dashboards.settings.Settings`` the API,
    ``ops.settings.Settings`` the broker files and the supervisor). The ``siaga`` command loads
    the most derived one, so every process validates the whole tree at start-up.
    """

    model_config = SettingsConfigDict(
        env_prefix="SIAGA_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    storage: StorageSettings = StorageSettings()
    batch: BatchSettings = BatchSettings()
    spool: SpoolSettings = SpoolSettings()
    validation: ValidationSettings = ValidationSettings()
    stations: StationsSettings = StationsSettings()
    health: HealthSettings = HealthSettings()
    metrics: MetricsSettings = MetricsSettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: explicit arguments, then environment, then the YAML file."""
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        yaml_file = _CONFIG_FILE.get("path")
        if yaml_file is not None:
            sources += (YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file),)
        return sources

    @property
    def max_age_s(self) -> float:
        """How old a reading may be: the configured bound, or the retention window."""
        if self.validation.max_age_s is not None:
            return self.validation.max_age_s
        return self.influx.retention_days * 86400.0


_CONFIG_FILE: dict[str, Path] = {}
SettingsT = TypeVar("SettingsT", bound=Settings)


def load_settings(
    config_file: Path | None = None,
    *,
    settings_cls: type[SettingsT] | None = None,
    **overrides: Any,
) -> SettingsT:
    """Read the settings tree, refusing bad values with the key that holds them.

    Args:
        config_file: A YAML file; ``config/siaga.yaml`` is used when it exists and none is given.
        settings_cls: The tree to read (default: this package's :class:`Settings`); the
            ``siaga`` command passes the most derived one.
        overrides: Top-level sections given directly (tests, benchmarks).

    Raises:
        ConfigError: Naming each bad key (``mqtt.url: ...``) and what is wrong with it.
    """
    if config_file is None and DEFAULT_CONFIG.exists() and "SIAGA_CONFIG" not in os.environ:
        config_file = DEFAULT_CONFIG
    if config_file is None and "SIAGA_CONFIG" in os.environ:
        config_file = Path(os.environ["SIAGA_CONFIG"])
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    _CONFIG_FILE.clear()
    if config_file is not None:
        _CONFIG_FILE["path"] = config_file
    try:
        cls: type[Any] = Settings if settings_cls is None else settings_cls
        settings: SettingsT = cls(**overrides)
        return settings
    except ValidationError as exc:
        raise ConfigError(_describe(exc, config_file)) from None
    except (ValueError, OSError, yaml.YAMLError) as exc:  # malformed YAML or environment JSON
        raise ConfigError(f"cannot read configuration: {exc}") from None
    finally:
        _CONFIG_FILE.clear()


def _describe(exc: ValidationError, config_file: Path | None) -> str:
    where = (
        f" (file {config_file}, environment SIAGA_*)" if config_file else " (environment SIAGA_*)"
    )
    lines = [f"invalid configuration{where}:"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting"
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)

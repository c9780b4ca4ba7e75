"""Alerting's settings: the data plane's tree plus the incident database and the engine."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from ingest.settings import Section
from ingest.settings import Settings as IngestSettings


class DatabaseSettings(Section):
    """The SQL database of incidents, notifications and users (SQLite or PostgreSQL)."""

    url: str = Field(
        default="sqlite:///var/siaga.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )


class NotifySettings(Section):
    """Notifications: the policy file, CAP identity, and how the sender retries."""

    retired = {
        "ack_base_url": "set api.public_url (messages link the API there)",
        "ack_secret": "set api.secret_key (or leave it to api.secret_key_file)",
    }

    policy_file: str = Field(default="config/alerts.yaml", description="Routing policy (YAML)")
    in_engine: bool = Field(
        default=True,
        description="run the notifier inside siaga alerts run (else: siaga alerts notify)",
    )
    policy_reload_s: float = Field(default=5.0, gt=0)
    cap_sender: str = Field(default="siaga@bpbd.example.go.id", min_length=1)
    cap_status: Literal["Actual", "Exercise", "System", "Test", "Draft"] = "Actual"
    cap_radius_km: float = Field(default=5.0, gt=0)
    tick_s: float = Field(default=0.2, gt=0, description="Dispatcher/sender poll period")
    claim_limit: int = Field(default=200, gt=0)
    lease_s: float = Field(default=60.0, gt=0, description="A claimed delivery's send budget")
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    retry_multiplier: float = Field(default=2.0, ge=1)
    retry_jitter: Literal["equal", "full"] = "equal"
    delivery_deadline_s: float = Field(default=6 * 3600.0, gt=0)
    channel_concurrency: int = Field(default=8, gt=0)
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    ack_link_valid_s: float = Field(default=48 * 3600.0, gt=0)
    fallback_check_s: float = Field(
        default=5.0, gt=0, description="how often undelivered messages are checked for fallback"
    )
    escalation_check_s: float = Field(
        default=1.0, gt=0, description="how often unacknowledged incidents are checked to escalate"
    )


class TelegramSettings(Section):
    """The two-way Telegram bot (``alerts/notify/telegram.py``), in the notifier's process."""

    bot_token: SecretStr | None = Field(
        default=None, description="the bot's token from @BotFather (no token: no bot)"
    )
    api_base_url: str = Field(
        default="https://api.telegram.org",
        description="the Bot API's base URL (tests point it at their scripted server)",
    )
    chats: dict[str, str] = Field(
        default_factory=dict,
        description="chat name -> chat id ('-100…' for a group); the policy's telegram channels "
        "name a chat; presses are honoured only on messages in these chats",
    )
    mode: Literal["polling", "webhook"] = Field(
        default="polling", description="long polling works behind NAT; webhook needs HTTPS in"
    )
    poll_timeout_s: int = Field(default=30, ge=0, le=50, description="getUpdates long poll")
    poll_retry_max_s: float = Field(default=30.0, gt=0)
    webhook_url: str | None = Field(default=None, description="public HTTPS URL (webhook mode)")
    webhook_secret: SecretStr | None = Field(
        default=None, description="checked against X-Telegram-Bot-Api-Secret-Token"
    )
    webhook_host: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=0, le=65535)
    link_code_valid_s: float = Field(default=600.0, gt=0, description="a one-time link code")
    silence_s: float = Field(default=3600.0, gt=0, description="what 'Bisukan 1 jam' silences")
    act_role: Literal["operator", "admin"] = Field(
        default="operator", description="the least role whose presses are honoured"
    )

    @property
    def enabled(self) -> bool:
        """Whether a bot token is set."""
        return self.bot_token is not None and bool(self.bot_token.get_secret_value())


class SmsSettings(Section):
    """SMS through a local GSM modem driven by Gammu (``alerts/notify/gammu_sms.py``)."""

    enabled: bool = Field(default=False, description="drive a modem in the notifier's process")
    gammu_device: str = Field(default="/dev/ttyUSB0", description="the modem (or a directory)")
    gammu_connection: str = Field(
        default="at", description="Gammu's connection: at, at115200, … or none for its dummy"
    )
    gammu_model: str = Field(default="", description="Gammu's model; 'dummy' for tests")
    inbox_poll_s: float = Field(default=10.0, gt=0, description="how often replies are read")
    send_timeout_s: float = Field(default=60.0, gt=0)
    act_role: Literal["operator", "admin"] = Field(
        default="operator", description="the least role whose replies are honoured"
    )


class AlertsSettings(Section):
    """The alert engine (``siaga alerts run``) and its rules.

    The engine's MQTT session and spool come from ``mqtt.client_id`` and ``spool.dir``
    (:attr:`Settings.engine_client_id`, :attr:`Settings.engine_spool_dir`).
    """

    retired = {
        "client_id": "set mqtt.client_id (the engine's session is that id with -alerts)",
        "spool_dir": "set spool.dir (the engine spools beside it, in <spool.dir>-alerts)",
    }

    rules_file: Path | None = Field(
        default=Path("config/rules.yaml"),
        description="rule overrides; a missing file means the defaults (the registry alone)",
    )
    reload_interval_s: float = Field(default=2.0, gt=0)
    stations: list[str] | None = Field(
        default=None, description="evaluate only these stations (with regencies: either)"
    )
    regencies: list[str] | None = Field(
        default=None, description="evaluate only the stations of these regencies"
    )
    late_lag_s: float = Field(
        default=600.0, gt=0, description="readings older than this on arrival are marked late"
    )
    tick_interval_s: float = Field(
        default=10.0, gt=0, description="how often time-driven rules (no data) are judged"
    )
    health_window_s: float = Field(default=86400.0, gt=0)
    # -- the running engine (siaga alerts run) --
    commit_interval_s: float = Field(
        default=0.02, gt=0, description="the longest a reading waits before its commit"
    )
    commit_max_messages: int = Field(
        default=5000, gt=0, description="messages evaluated per commit at most"
    )
    checkpoint_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="how often the engine's inputs since the last checkpoint (a journal entry) "
        "are made durable and the messages evaluated since acknowledged (transitions are "
        "committed every commit_interval_s)",
    )
    checkpoint_max_messages: int = Field(
        default=20_000,
        gt=0,
        le=60_000,
        description="a checkpoint at the latest after this many messages (below the broker's "
        "65,535 unacknowledged messages per session)",
    )
    snapshot_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="how often the engine's state is saved whole, replacing the journal entries "
        "since the last snapshot (a restart replays at most this much)",
    )
    snapshot_max_readings: int = Field(
        default=200_000,
        gt=0,
        description="a snapshot at the latest after this many journaled readings (bounds the "
        "replay at a restart or a standby's takeover: about 20 µs a reading)",
    )
    leader_poll_s: float = Field(
        default=1.0, gt=0, description="how often a standby tries to take the leader lock"
    )
    leader_check_s: float = Field(
        default=2.0, gt=0, description="how often the leader checks it still holds the lock"
    )
    max_cycles_in_flight: int = Field(
        default=16,
        gt=0,
        description="evaluated cycles that may wait for the committer; evaluation waits beyond",
    )
    retry_initial_s: float = Field(
        default=0.1,
        gt=0,
        description="first wait before a failed incident commit, alert spool write or alert "
        "write is tried again (doubling, no jitter: it retries until it succeeds)",
    )
    retry_max_s: float = Field(default=5.0, gt=0, description="longest wait between those tries")
    backtest_tick_s: float = Field(
        default=60.0,
        gt=0,
        description="how often siaga alerts backtest ticks the time-driven rules, in replayed "
        "time: coarser than tick_interval_s (the live engine's, in wall-clock time) to keep "
        "long replays fast (a replayed year is 525,600 ticks at 60 s, 3.2 million at 10 s)",
    )


class ForecastSettings(Section):
    """Stage forecasts: how models are fitted, where they are kept, and when they warn."""

    enabled: bool = Field(
        default=True, description="forecast with the fitted models found in models_dir"
    )
    models_dir: Path = Field(
        default=Path("var/forecast-models"),
        description="versioned model files written by siaga forecast fit",
    )
    horizon_h: int = Field(default=12, ge=1, le=72, description="leads 1..horizon_h hours")
    coverage: float = Field(default=0.8, gt=0, lt=1, description="the interval's probability")
    min_rows: int = Field(
        default=576, ge=20, description="fewer usable issue times: a persistence model"
    )
    folds: int = Field(
        default=5, ge=2, le=20, description="blocked folds in time that score a model"
    )
    issue_step_s: float = Field(default=900.0, gt=0, description="issue times in a fit, at most")
    max_stale_s: float = Field(
        default=7200.0, gt=0, description="a reading older than this does not stand for now"
    )
    error_correction: bool = Field(
        default=False,
        description="the last hour's error of the 1-hour forecast as a term (skill at 1-2 h only)",
    )
    rising_cm_per_h: float = Field(
        default=1.0, ge=0, description="a rise over the last hour that makes the rising regime"
    )
    wet_mm: float = Field(
        default=1.0, gt=0, description="rain over the last 6 h that makes the wet regime"
    )
    min_regime_rows: int = Field(
        default=50, ge=10, description="fewer held-out residuals: a regime borrows pooled ones"
    )
    confirm: int = Field(
        default=2, ge=1, description="forecasts in a row that must reach a level to warn"
    )
    min_rise_cm: float = Field(
        default=10.0, ge=0, description="a forecast rising less than this never warns"
    )
    hold_s: float = Field(
        default=3600.0, gt=0, description="how long below a warned level before the episode ends"
    )
    recovery_band_pct: float = Field(default=5.0, ge=0, lt=100)


class ApiSettings(Section):
    """Where people reach the HTTP API and the key that signs its links: what a message needs
    for a one-click acknowledgement link. ``dashboards.settings.ApiSettings`` adds the server's
    own settings to this section."""

    public_url: str | None = Field(
        default=None,
        description="where people reach the API: the base of the acknowledgement links in "
        "messages (none: messages name the command siaga alerts ack) and of the CAP feed "
        "(none: http://api.host:api.port)",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="signs acknowledgement links; when unset, read from (or created in) "
        "secret_key_file so that every process on this host agrees",
    )
    secret_key_file: Path = Path("var/api-secret.key")

    def resolve_secret_key(self) -> bytes:
        """The signing key: configured, or read from the key file (created once, mode 0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.secret_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)
            if not path.read_text(encoding="ascii").strip():
                path.write_text(secrets.token_urlsafe(48), encoding="ascii")
        return path.read_text(encoding="ascii").strip().encode()


ENGINE_CLIENT_ID = "siaga-alerts"
"""The engine's MQTT session when ``mqtt.client_id`` is not set (host-independent: the two
engines of a hot-standby pair share it)."""
ENGINE_SUFFIX = "-alerts"


class Settings(IngestSettings):
    """The data plane's settings plus alerting's."""

    api: ApiSettings = ApiSettings()
    database: DatabaseSettings = DatabaseSettings()
    notify: NotifySettings = NotifySettings()
    alerts: AlertsSettings = AlertsSettings()
    forecast: ForecastSettings = ForecastSettings()
    telegram: TelegramSettings = TelegramSettings()
    sms: SmsSettings = SmsSettings()

    @property
    def engine_client_id(self) -> str:
        """The MQTT client id of the engine's own persistent session (outside the ingest group).

        ``mqtt.client_id`` with ``-alerts`` when it is set, so that a worker and an engine
        reading one settings file never take each other's session; ``siaga-alerts`` when it is
        not (the default worker id names the host, and a hot-standby pair on two hosts must
        share one session). The leader lock is named after it too: the two engines of a pair
        share it, engines of different scopes need different ``mqtt.client_id``.
        """
        if "client_id" in self.mqtt.model_fields_set:
            return f"{self.mqtt.client_id}{ENGINE_SUFFIX}"
        return ENGINE_CLIENT_ID

    @property
    def engine_spool_dir(self) -> Path:
        """Where the engine's alert events wait while InfluxDB is down: beside the worker's
        spool (``var/spool`` -> ``var/spool-alerts``), never inside it."""
        spool = self.spool.dir
        return spool.with_name(f"{spool.name}{ENGINE_SUFFIX}")

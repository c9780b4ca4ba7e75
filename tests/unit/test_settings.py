"""Settings: YAML file under SIAGA_* environment, refused values named by key, secrets hidden."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from ingest.batch import BatchPolicy
from ingest.errors import ConfigError
from ingest.mqtt.client import ConnectOptions
from ingest.runtime import connect_options, drain_retry, loop_restart, write_retry
from ingest.settings import InfluxSettings, MqttSettings, Settings, load_settings
from ingest.validation import Limits

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "siaga.yaml"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SIAGA_* variable of the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.upper().startswith("SIAGA_"):
            monkeypatch.delenv(name)


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "siaga.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


def test_repository_config_file_loads() -> None:
    settings = load_settings(REPO_CONFIG)
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"
    assert settings.mqtt.topic_prefix == "siaga"
    assert settings.mqtt.shared_group == "siaga-ingest"
    assert settings.mqtt.session_expiry_s == 604800
    assert settings.influx.database == "siaga"
    assert settings.influx.retention_days == 365
    assert settings.spool.max_bytes == 2 * 1024**3
    assert settings.validation.max_future_s == 300.0
    assert settings.stations.file == Path("config/stations.yaml")
    assert settings.stations.devices_file == Path("config/devices.yaml")


def test_yaml_values_are_loaded(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        """
mqtt:
  url: mqtt://broker.jember.example:8883
  client_id: worker-7
  shared_group: null
influx:
  url: https://influx.example/
  database: jember
  timeout_s: 2.5
batch: {max_points: 100, flush_interval_s: 0.5}
spool: {dir: /var/lib/siaga/spool}
log: {level: DEBUG, format: json}
""",
    )
    settings = load_settings(path)
    assert settings.mqtt.url == "mqtt://broker.jember.example:8883"
    assert settings.mqtt.host == "broker.jember.example"
    assert settings.mqtt.port == 8883
    assert settings.mqtt.client_id == "worker-7"
    assert settings.mqtt.shared_group is None
    assert settings.influx.url == "https://influx.example"  # trailing slash dropped
    assert settings.influx.database == "jember"
    assert settings.influx.timeout_s == 2.5
    assert settings.batch.max_points == 100
    assert settings.batch.flush_interval_s == 0.5
    assert settings.spool.dir == Path("/var/lib/siaga/spool")
    assert settings.log.level == "DEBUG"
    assert settings.log.format == "json"
    # Untouched sections keep their defaults.
    assert settings.validation.max_payload_bytes == 65536


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, ""))
    assert settings.mqtt.url == "mqtt://127.0.0.1:1883"
    assert settings.mqtt.port == 1883
    assert settings.mqtt.username is None
    assert settings.mqtt.password is None
    assert settings.mqtt.client_id.startswith("siaga-ingest-")
    assert len(settings.mqtt.client_id) <= 64
    assert settings.influx.url == "http://127.0.0.1:8086"
    assert settings.batch.max_points == 5000


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config(tmp_path, "influx: {database: from_file, timeout_s: 3}\n")
    monkeypatch.setenv("SIAGA_INFLUX__DATABASE", "from_env")
    settings = load_settings(path)
    assert settings.influx.database == "from_env"
    assert settings.influx.timeout_s == 3.0  # the rest of the section still comes from the file


def test_env_mqtt_url_credentials_move_to_their_own_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(tmp_path, "mqtt: {url: 'mqtt://127.0.0.1:1883', topic_prefix: pemda}\n")
    monkeypatch.setenv("SIAGA_MQTT__URL", "mqtt://ingest:s3cr%40t%3Aw@broker.example:1884")
    settings = load_settings(path)
    assert settings.mqtt.url == "mqtt://broker.example:1884"
    assert settings.mqtt.username == "ingest"
    assert settings.mqtt.password == SecretStr("s3cr@t:w")
    assert settings.mqtt.host == "broker.example"
    assert settings.mqtt.port == 1884
    assert settings.mqtt.topic_prefix == "pemda"


def test_url_with_user_name_only(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, "mqtt: {url: 'mqtt://reader@broker.example'}\n"))
    assert settings.mqtt.url == "mqtt://broker.example"
    assert settings.mqtt.username == "reader"
    assert settings.mqtt.password is None
    assert settings.mqtt.port == 1883


def test_explicit_credentials_win_over_the_url(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        "mqtt: {url: 'mqtt://a:b@broker.example', username: explicit, password: pw}\n",
    )
    settings = load_settings(path)
    assert settings.mqtt.url == "mqtt://broker.example"
    assert settings.mqtt.username == "explicit"
    assert settings.mqtt.password == SecretStr("pw")


def test_url_credentials_with_an_ipv6_host(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, "mqtt: {url: 'mqtt://u:p@[::1]:1883'}\n"))
    assert settings.mqtt.url == "mqtt://[::1]:1883"
    assert settings.mqtt.host == "::1"


def test_ipv6_host_without_credentials(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, "mqtt: {url: 'mqtt://[::1]:1999'}\n"))
    assert settings.mqtt.host == "::1"
    assert settings.mqtt.port == 1999


def test_secrets_never_appear_in_repr_or_str(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIAGA_MQTT__URL", "mqtt://ingest:hunter2-mqtt@broker.example")
    monkeypatch.setenv("SIAGA_INFLUX__PASSWORD", "hunter2-influx")
    monkeypatch.setenv("SIAGA_INFLUX__USERNAME", "writer")
    settings = load_settings(config(tmp_path, ""))
    for text in (
        repr(settings),
        str(settings),
        repr(settings.mqtt),
        str(settings.influx),
        settings.model_dump_json(),
    ):
        assert "hunter2" not in text
    assert "**********" in repr(settings.mqtt)
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "hunter2-mqtt"
    assert settings.influx.password is not None
    assert settings.influx.password.get_secret_value() == "hunter2-influx"


def test_token_alone_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAGA_INFLUX__TOKEN", "tok-123")
    settings = load_settings(config(tmp_path, ""))
    assert settings.influx.token == SecretStr("tok-123")
    assert "tok-123" not in repr(settings)


@pytest.mark.parametrize(
    "section",
    ["{token: t, username: u}", "{token: t, password: p}", "{token: t, username: u, password: p}"],
)
def test_token_with_username_or_password_is_refused(tmp_path: Path, section: str) -> None:
    message = refusal(config(tmp_path, f"influx: {section}\n"))
    assert "  influx: give either token or username/password, not both" in message.splitlines()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "mqtt: {url: 'http://broker'}",
            "mqtt.url: scheme must be mqtt:// or mqtts:// (got http://)",
        ),
        (
            "mqtt: {url: 'broker:1883'}",
            "mqtt.url: scheme must be mqtt:// or mqtts:// (got broker://)",
        ),
        ("mqtt: {url: 'mqtt://'}", "mqtt.url: URL has no host"),
        ("mqtt: {url: 'mqtt://h:99999'}", "mqtt.url: port is not a number between 0 and 65535"),
        ("mqtt: {url: 'mqtt://h:port'}", "mqtt.url: port is not a number between 0 and 65535"),
        ("mqtt: {bogus: 1}", "mqtt.bogus: unknown setting"),
        ("bogus: {a: 1}", "bogus: unknown setting"),
        ("mqtt: {keepalive_s: 4}", "mqtt.keepalive_s: Input should be greater than or equal to 5"),
        (
            "mqtt: {receive_maximum: 0}",
            "mqtt.receive_maximum: Input should be greater than or equal to 1",
        ),
        ("mqtt: {topic_prefix: 'a b'}", "mqtt.topic_prefix: String should match pattern"),
        ("mqtt: {shared_group: 'a/b'}", "mqtt.shared_group: String should match pattern"),
        ("mqtt: {client_id: ''}", "mqtt.client_id: String should have at least 1 character"),
        ("influx: {timeout_s: 0}", "influx.timeout_s: Input should be greater than 0"),
        (
            "influx: {timeout_s: soon}",
            "influx.timeout_s: Input should be a valid number, unable to parse string as a number",
        ),
        ("influx: {url: 'ftp://h'}", "influx.url: must be an http:// or https:// URL with a host"),
        (
            "influx: {url: 'http://u:p@h'}",
            "influx.url: put credentials in influx.username/password or influx.token",
        ),
        ("influx: {database: 'a;drop'}", "influx.database: String should match pattern"),
        (
            "influx: {retention_days: 0}",
            "influx.retention_days: Input should be greater than or equal to 1",
        ),
        ("batch: {max_points: 0}", "batch.max_points: Input should be greater than or equal to 1"),
        (
            "batch: {flush_interval_s: 61}",
            "batch.flush_interval_s: Input should be less than or equal to 60",
        ),
        (
            "spool: {max_bytes: 1000}",
            "spool.max_bytes: Input should be greater than or equal to 1048576",
        ),
        (
            "spool: {warn_fraction: 1.5}",
            "spool.warn_fraction: Input should be less than or equal to 1",
        ),
        ("validation: {max_age_s: 0}", "validation.max_age_s: Input should be greater than 0"),
        (
            "stations: {reload_interval_s: 0}",
            "stations.reload_interval_s: Input should be greater than 0",
        ),
        ("metrics: {port: 70000}", "metrics.port: Input should be less than or equal to 65535"),
        ("log: {level: LOUD}", "log.level: Input should be 'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    ],
)
def test_bad_values_are_named_by_key(tmp_path: Path, text: str, line: str) -> None:
    path = config(tmp_path, text + "\n")
    message = refusal(path)
    lines = message.splitlines()
    assert lines[0] == f"invalid configuration (file {path}, environment SIAGA_*):"
    assert any(entry.startswith(f"  {line}") for entry in lines[1:]), message


def test_every_bad_key_is_listed(tmp_path: Path) -> None:
    message = refusal(config(tmp_path, "mqtt: {bogus: 1}\ninflux: {timeout_s: -1}\n"))
    assert message.splitlines()[1:] == [
        "  mqtt.bogus: unknown setting",
        "  influx.timeout_s: Input should be greater than 0",
    ]


def test_bad_environment_value_is_named_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIAGA_BATCH__MAX_POINTS", "lots")
    message = refusal(config(tmp_path, ""))
    assert "  batch.max_points: Input should be a valid integer" in message


def test_secret_is_not_echoed_in_a_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAGA_MQTT__URL", "http://ingest:hunter2@broker.example")
    message = refusal(config(tmp_path, ""))
    assert "mqtt.url: scheme must be mqtt://" in message
    assert "hunter2" not in message


def test_bad_port_in_a_url_with_credentials_is_named_mqtt_url(tmp_path: Path) -> None:
    message = refusal(config(tmp_path, "mqtt: {url: 'mqtt://u:p@h:99999'}\n"))
    assert "  mqtt.url: port is not a number between 0 and 65535" in message


def test_malformed_environment_json_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIAGA_MQTT", "{not json")
    message = refusal(config(tmp_path, ""))
    assert message.startswith("cannot read configuration:")


def test_yaml_that_is_not_a_mapping_is_a_config_error(tmp_path: Path) -> None:
    assert refusal(config(tmp_path, "- a\n- b\n")).startswith("cannot read configuration:")


def test_malformed_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = config(tmp_path, "mqtt: [unclosed\n")
    message = refusal(path)
    assert message.startswith("cannot read configuration:")
    assert f'in "{path}", line 1, column 7' in message  # where the operator must look


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=f"config file {missing} does not exist"):
        load_settings(missing)


def test_siaga_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config(tmp_path, "influx: {database: via_env}\n")
    monkeypatch.setenv("SIAGA_CONFIG", str(path))
    monkeypatch.chdir(tmp_path)  # no config/siaga.yaml here
    assert load_settings().influx.database == "via_env"


def test_siaga_config_wins_over_the_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "siaga.yaml").write_text("influx: {database: default_file}\n")
    chosen = config(tmp_path, "influx: {database: chosen}\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().influx.database == "default_file"
    monkeypatch.setenv("SIAGA_CONFIG", str(chosen))
    assert load_settings().influx.database == "chosen"


def test_overrides_win_over_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIAGA_INFLUX__DATABASE", "from_env")
    settings = load_settings(
        config(tmp_path, "influx: {database: from_file}\n"),
        influx=InfluxSettings(database="explicit"),
    )
    assert settings.influx.database == "explicit"


def test_file_is_not_remembered_between_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_settings(config(tmp_path, "influx: {database: first}\n"))
    monkeypatch.chdir(tmp_path)  # no config/siaga.yaml here, no SIAGA_CONFIG
    assert load_settings().influx.database == "siaga"


def test_max_age_defaults_to_the_retention_window(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, "")).max_age_s == 365 * 86400.0
    retention = load_settings(config(tmp_path, "influx: {retention_days: 30}\n"))
    assert retention.max_age_s == 30 * 86400.0
    explicit = load_settings(
        config(tmp_path, "influx: {retention_days: 30}\nvalidation: {max_age_s: 3600}\n")
    )
    assert explicit.max_age_s == 3600.0


def test_sections_are_frozen(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, ""))
    with pytest.raises(ValueError, match="frozen"):
        settings.mqtt.url = "mqtt://elsewhere"  # type: ignore[misc]
    assert isinstance(settings, Settings)
    assert isinstance(settings.mqtt, MqttSettings)


def test_value_objects_take_their_defaults_from_the_settings_tree() -> None:
    settings = Settings(mqtt=MqttSettings(client_id="c", shared_group=None, lorawan=False))
    assert BatchPolicy() == BatchPolicy.from_settings(settings.batch)
    assert Limits() == Limits.from_settings(settings)
    built = connect_options(settings)
    bare = ConnectOptions(built.host, built.port, "c", built.topic_filters)
    for name in ("keepalive_s", "session_expiry_s", "receive_maximum", "connect_timeout_s"):
        assert getattr(bare, name) == getattr(built, name), name
    assert bare.reconnect == built.reconnect
    assert (write_retry(settings).initial_s, write_retry(settings).max_s) == (0.05, 1.0)
    assert write_retry(settings).deadline_s == settings.influx.write_retry_deadline_s
    assert drain_retry(settings).max_s == settings.spool.drain_retry_max_s
    assert loop_restart(settings).initial_s == settings.health.restart_initial_s

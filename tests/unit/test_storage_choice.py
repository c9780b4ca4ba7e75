"""Which storage backend a worker uses: a pure decision, tested directly."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ingest.runtime import choose_backend, influx_configured
from ingest.settings import InfluxSettings, StorageSettings, load_settings


@pytest.mark.parametrize(
    ("requested", "configured", "answering", "expected"),
    [
        ("auto", False, False, "sqlite"),  # nothing installed or configured: embedded
        ("auto", False, True, "influx"),  # a local InfluxDB answers at the default URL
        ("auto", True, False, "influx"),  # configured but down: the spool covers the outage
        ("auto", True, True, "influx"),
        ("influx", False, False, "influx"),  # asked for explicitly: never second-guessed
        ("sqlite", True, True, "sqlite"),
    ],
)
def test_choose_backend(requested: str, configured: bool, answering: bool, expected: str) -> None:
    chosen = choose_backend(requested, configured=configured, answering=answering)  # type: ignore[arg-type]
    assert chosen == expected


def test_configured_means_another_url_or_credentials() -> None:
    assert not influx_configured(InfluxSettings())
    assert not influx_configured(InfluxSettings(url="http://127.0.0.1:8086/"))
    assert influx_configured(InfluxSettings(url="http://influx.example:8086"))
    assert influx_configured(InfluxSettings(token=SecretStr("t")))
    assert influx_configured(InfluxSettings(username="siaga", password=SecretStr("p")))


def test_storage_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert StorageSettings().backend == "auto"
    monkeypatch.setenv("SIAGA_STORAGE__BACKEND", "sqlite")
    monkeypatch.setenv("SIAGA_STORAGE__SQLITE_PATH", "/tmp/x.sqlite")
    settings = load_settings()
    assert settings.storage.backend == "sqlite"
    assert str(settings.storage.sqlite_path) == "/tmp/x.sqlite"
    assert settings.storage.sqlite_synchronous == "full"

"""Which storage backend a worker uses: a pure decision, tested directly."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ingest.runtime import choose_backend, influx_configured
from ingest.settings import InfluxSettings, StorageSettings, load_settings


@pytest.mark.parametrize(
    ("requested", "configured", "installed", "answering", "expected"),
    [
        ("auto", False, False, False, "sqlite"),  # nothing installed, configured or answering
        ("auto", False, False, True, "influx"),  # one answers at the default URL (elsewhere)
        ("auto", False, True, False, "influx"),  # installed, still starting: spool meanwhile
        ("auto", True, False, False, "influx"),  # configured but down: the spool covers it
        ("auto", True, True, True, "influx"),
        ("influx", False, False, False, "influx"),  # asked for explicitly: never second-guessed
        ("sqlite", True, True, True, "sqlite"),
    ],
)
def test_choose_backend(
    requested: str, configured: bool, installed: bool, answering: bool, expected: str
) -> None:
    chosen = choose_backend(
        requested,  # type: ignore[arg-type]
        configured=configured,
        installed=installed,
        answering=answering,
    )
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

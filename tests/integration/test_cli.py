"""The `siaga` command at its boundary: bad configuration, and `siaga up` on a bare machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.drivers import run_siaga, siaga_env

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SIAGA_MQTT__URL", "http://broker:1883", "mqtt.url: scheme must be mqtt://"),
        ("SIAGA_INFLUX__TIMEOUT_S", "-1", "influx.timeout_s: Input should be greater than 0"),
        ("SIAGA_BATCH__MAX_POINTS", "lots", "batch.max_points: Input should be a valid integer"),
        ("SIAGA_STATIONS__FILE", "/nonexistent/stations.yaml", "cannot read"),
    ],
)
def test_bad_configuration_is_refused_at_start_naming_the_key(
    variable: str, value: str, message: str, tmp_path: Path
) -> None:
    result = run_siaga(
        "ingest",
        env=siaga_env(
            **{variable: value},
            SIAGA_SPOOL__DIR=str(tmp_path / "spool"),
            SIAGA_METRICS__ENABLED="false",
        ),
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_keys_in_the_config_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "siaga.yaml"
    config.write_text("mqtt:\n  urll: mqtt://x\n")
    result = run_siaga("ingest", "--config", str(config), env=siaga_env())
    assert result.returncode == 2
    assert "mqtt.urll: unknown setting" in result.stderr

"""The rain-driven flood end to end over MQTT: `tabalong-rain-flood` published to Mosquitto,
`siaga alerts run` forecasting with models fitted on the scenario's first three weeks, and the
forecast warning of SIAGA at Tanjung in the incident database before the observed crossing."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from alerts.forecasting import fit_models
from devices.topics import TopicScheme
from forecast import store
from forecast.models import ModelSpec
from ingest.validation import Limits, Validator
from ops.servers import InfluxServer, MosquittoServer
from tests.conftest import unique_name
from tests.helpers import wait_for
from tests.integration.alert_drivers import (
    EngineProcess,
    committed_keys,
    registry,
    scenario_messages,
)
from tests.integration.drivers import paho_publish

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DAY_NS = 86400 * 10**9


def test_the_rain_driven_flood_is_forecast_before_it_is_observed(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    broker: MosquittoServer,
    influx_session: InfluxServer,
) -> None:
    name = unique_name(request)
    prefix = f"p{name}"
    messages = scenario_messages("tabalong-rain-flood", prefix)
    validator = Validator(registry(), TopicScheme(prefix), Limits(max_age_s=400 * 86400.0))
    now_ns = time.time_ns()
    readings = [r for t, p in messages for r in validator.validate(t, p, now_ns).readings]
    first = min(r.ts_ns for r in readings)
    models = fit_models(readings, registry(), ModelSpec(horizon_h=12), until_ns=first + 21 * DAY_NS)
    assert models["tl-tanjung"].method == "arx"
    store.save(tmp_path / "models", models.values())
    url = f"sqlite:///{tmp_path / 'siaga.db'}"
    engine = EngineProcess(
        tmp_path / "engine",
        broker.url,
        influx_session.url,
        f"a_{name}",
        url,
        client_id=f"e-{name}",
        topic_prefix=prefix,
        extra_env={"SIAGA_FORECAST__MODELS_DIR": str(tmp_path / "models")},
    )
    with engine:
        assert "forecasting 2 stations with the models in" in engine.log()
        paho_publish(broker.port, messages, client_id=f"flood-{name}")

        def tanjung_siaga() -> bool:
            return any(
                k[0] == "tl-tanjung" and k[1] == "level" and k[3] == "SIAGA"
                for k in committed_keys(url)
            )

        wait_for(tanjung_siaga, 180, "Tanjung's observed Siaga in the incident database")
    keys = committed_keys(url)
    forecasts = [k for k in keys if k[1] == "forecast"]
    warned = [k for k in forecasts if k[0] == "tl-tanjung" and k[2] == "firing" and k[3] == "SIAGA"]
    observed = min(
        k[4] for k in keys if k[0] == "tl-tanjung" and k[1] == "level" and k[3] == "SIAGA"
    )
    assert warned, forecasts
    assert warned[0][4] < observed  # warned before the water got there
    lead_h = (observed - warned[0][4]) / 3.6e12
    print(f"Tanjung: forecast SIAGA {lead_h:.1f} h before it was observed")
    # One warning per level per episode: no transition repeated.
    repeated = [k for k, n in Counter(forecasts).items() if n > 1]
    assert not repeated, repeated

"""What the LoRaWAN decoder tests share: a gauge's metrics, the DDS75 profile, its station, a sanity
check."""

from __future__ import annotations

import math

from devices import MetricSpec, Reason, Station
from devices.readings import Decoded
from devices.registry import DeviceProfile, FieldMap

LORAWAN_METRICS = {
    "water_level_cm": MetricSpec(unit="cm", min=0, max=2000),
    "battery_v": MetricSpec(unit="V", min=0, max=15),
    "battery_pct": MetricSpec(unit="%", min=0, max=100),
    "rssi_dbm": MetricSpec(unit="dBm", min=-150, max=0),
    "snr_db": MetricSpec(unit="dB", min=-30, max=30),
}
DDS75_FIELDS = {
    "Bat": FieldMap(metric="battery_v", unit="V"),
    "distance": FieldMap(metric="water_level_cm", unit="mm", kind="distance"),
    "batteryLevel": FieldMap(metric="battery_pct", unit="%"),
}
DDS75 = DeviceProfile(fields=DDS75_FIELDS, distance_absent_mm=0, distance_min_valid_mm=280)
DENTE_TELADAS = "tb-dente-teladas"


def dente_teladas(
    metrics: dict[str, MetricSpec] | None = None, mounting_height_cm: float | None = 600
) -> Station:
    """The station a DDS75 gauge measures, 6 m above the river bed (``LORAWAN_METRICS``)."""
    return Station(
        id=DENTE_TELADAS,
        name="Way Tulang Bawang at Dente Teladas",
        regency="Tulang Bawang",
        latitude=-4.3295,
        longitude=105.7702,
        metrics=LORAWAN_METRICS if metrics is None else metrics,
        mounting_height_cm=mounting_height_cm,
    )


def check_well_formed(
    decoded: Decoded, station: str, metrics: dict[str, MetricSpec], *, seq_required: bool
) -> None:
    """What every decoder result must be, whatever the input: readings or reasoned rejections."""
    assert isinstance(decoded, Decoded)
    assert len(decoded.readings) <= 1
    for reading in decoded.readings:
        assert reading.station_id == station
        assert type(reading.ts_ns) is int
        if seq_required or reading.seq is not None:
            assert type(reading.seq) is int
            assert reading.seq >= 0
        assert reading.values
        assert set(reading.values) <= set(metrics)
        assert all(type(v) is float and math.isfinite(v) for v in reading.values.values())
    for rejection in decoded.rejections:
        assert isinstance(rejection.reason, Reason)
        assert rejection.detail
        assert len(rejection.detail) < 400
        assert rejection.station_id == station
    assert decoded.readings or decoded.rejections

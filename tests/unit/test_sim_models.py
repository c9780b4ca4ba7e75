"""The pure models: hydrographs, routing, tides, rain, batteries, radios, clocks, sampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.levels import Level, Thresholds
from simulators.models import (
    M2_PERIOD_S,
    Channel,
    Clock,
    DeviceModel,
    FloodEvent,
    Gauge,
    Grid,
    Hydrograph,
    Power,
    Radio,
    RiverNetwork,
    Runoff,
    Schedule,
    Tide,
    battery,
    clock_offset_s,
    crest,
    flood_waves,
    radio,
    rain_mm,
    report_indices,
    river_truth,
    route,
    runoff_cm,
    sample_station,
    tide_cm,
    tipping_bucket,
    warning_levels,
)

START_NS = 1_772_323_200 * 10**9  # 2026-03-01T00:00:00Z
HOUR = 3600.0
DAY = 86_400.0


def jakarta_network(events: list[FloodEvent] | None = None) -> RiverNetwork:
    return RiverNetwork(
        {
            "katulampa": Gauge("katulampa", 40, wander_cm=2, seasonal_cm=5),
            "depok": Gauge("depok", 120, wander_cm=2),
            "manggarai": Gauge("manggarai", 690, wander_cm=2),
        },
        [Channel("katulampa", "depok", 180 * 60), Channel("depok", "manggarai", 360 * 60)],
        events
        if events is not None
        else [FloodEvent("katulampa", 2 * HOUR, Hydrograph(210, 29 * 60, 4 * HOUR))],
    )


def test_same_seed_same_arrays_and_another_seed_differs() -> None:
    grid = Grid.covering(START_NS, 2 * DAY, 300)
    network = RiverNetwork(
        {"tidal": Gauge("tidal", 150, wander_cm=3, tide=Tide(50, 10, 20, 8))},
        events=[FloodEvent("tidal", HOUR, Hydrograph(80, 6 * HOUR, 2 * DAY), rain_mm=50)],
    )
    first, again, other = (river_truth(network, grid, seed) for seed in (7, 7, 8))
    assert np.array_equal(first.levels_cm["tidal"], again.levels_cm["tidal"])
    assert not np.array_equal(first.levels_cm["tidal"], other.levels_cm["tidal"])
    events = list(network.events)
    rain_a = rain_mm("rain", events, grid, 7, longitude=105)
    assert np.array_equal(rain_a, rain_mm("rain", events, grid, 7, longitude=105))
    assert not np.array_equal(rain_a, rain_mm("rain", events, grid, 8, longitude=105))
    power = Power("solar-12v")
    assert np.array_equal(
        battery(power, grid, 7, "s", longitude=105)[0],
        battery(power, grid, 7, "s", longitude=105)[0],
    )
    assert np.array_equal(radio(Radio(), 50, 7, "s")[0], radio(Radio(), 50, 7, "s")[0])
    assert not np.array_equal(radio(Radio(), 50, 7, "s")[0], radio(Radio(), 50, 8, "s")[0])


def test_the_katulampa_hydrograph_rises_like_21_september_2020() -> None:
    # 40 cm at 17:49, 120 cm at 17:53, 220 cm at 18:10, 250 cm at 18:18.
    shape = Hydrograph(210, 29 * 60, 4 * HOUR)
    minutes = np.array([-5, 0, 4, 21, 29, 60, 240], dtype=np.float64) * 60
    level = 40 + shape.at(minutes)
    assert level[0] == level[1] == 40
    assert 110 <= level[2] <= 140
    assert 215 <= level[3] <= 250
    assert level[4] == pytest.approx(250, abs=0.01)
    assert level[5] < level[4]
    assert level[6] > 40  # the recession is slow


@settings(max_examples=40, deadline=None)
@given(
    peak=st.floats(1, 500),
    time_to_peak_h=st.floats(0.1, 100),
    ratio=st.floats(1.2, 50),
)
def test_hydrograph_crest_is_where_and_as_high_as_asked(
    peak: float, time_to_peak_h: float, ratio: float
) -> None:
    shape = Hydrograph(peak, time_to_peak_h * HOUR, time_to_peak_h * HOUR * ratio)
    step = time_to_peak_h * HOUR / 200
    times = np.arange(0, time_to_peak_h * HOUR * 3, step)
    when, height = crest(shape.at(times), step)
    assert when == pytest.approx(time_to_peak_h * HOUR, abs=step)
    assert height == pytest.approx(peak, rel=1e-3)
    # Fast rise, slow recession: halfway down takes longer than the whole rise.
    after = shape.at(times[times > time_to_peak_h * HOUR])
    if np.any(after < peak / 2):
        assert np.argmax(after < peak / 2) * step > time_to_peak_h * HOUR


def test_a_hydrograph_refuses_a_recession_shorter_than_its_rise() -> None:
    with pytest.raises(ValueError, match="recession"):
        Hydrograph(100, 3600, 1800)


@pytest.mark.parametrize("step_s", [60.0, 300.0])
def test_downstream_crests_lag_by_the_travel_time_and_are_attenuated(step_s: float) -> None:
    grid = Grid.covering(START_NS, 20 * HOUR, step_s)
    truth = river_truth(jakarta_network(), grid, seed=3)
    crests = {s: crest(truth.waves_cm[s], step_s) for s in ("katulampa", "depok", "manggarai")}
    assert crests["depok"][0] - crests["katulampa"][0] == pytest.approx(180 * 60, abs=step_s)
    assert crests["manggarai"][0] - crests["depok"][0] == pytest.approx(360 * 60, abs=step_s)
    assert crests["depok"][1] == pytest.approx(0.8 * crests["katulampa"][1], rel=0.01)
    assert crests["manggarai"][1] == pytest.approx(0.8 * crests["depok"][1], rel=0.01)


def test_a_wave_spreads_as_it_travels() -> None:
    grid = Grid.covering(START_NS, 20 * HOUR, 60)
    truth = river_truth(jakarta_network(), grid, seed=3)

    def width_above_half(series: np.ndarray) -> int:
        return int(np.count_nonzero(series > series.max() / 2))

    widths = [width_above_half(truth.waves_cm[s]) for s in ("katulampa", "depok", "manggarai")]
    assert widths[0] < widths[1] < widths[2]


def test_each_event_keeps_its_own_travel_time() -> None:
    events = [
        FloodEvent("katulampa", 1 * HOUR, Hydrograph(150, 30 * 60, 3 * HOUR)),
        FloodEvent("katulampa", 10 * HOUR, Hydrograph(100, 2 * HOUR, 8 * HOUR)),
    ]
    grid = Grid.covering(START_NS, 40 * HOUR, 60)
    network = jakarta_network(events)
    for event in events:
        alone = river_truth(RiverNetwork(network.gauges, network.channels, [event]), grid, 1)
        lag = crest(alone.waves_cm["depok"], 60)[0] - crest(alone.waves_cm["katulampa"], 60)[0]
        assert lag == pytest.approx(180 * 60, abs=60)


def test_route_of_no_wave_is_no_wave() -> None:
    assert not route(np.zeros(100), Channel("a", "b", 3600), 60).any()


def dominant_period_h(series: np.ndarray, step_s: float, band_h: tuple[float, float]) -> float:
    """The period of the strongest component within a band, from a zero-padded periodogram."""
    centred = series - series.mean()
    padded = len(centred) * 16
    power = np.abs(np.fft.rfft(centred * np.hanning(len(centred)), n=padded)) ** 2
    frequencies = np.fft.rfftfreq(padded, d=step_s)
    with np.errstate(divide="ignore"):
        periods_h = 1 / frequencies / 3600
    inside = (periods_h >= band_h[0]) & (periods_h <= band_h[1])
    return float(periods_h[inside][np.argmax(power[inside])])


def test_the_tide_has_the_m2_period_and_a_diurnal_part() -> None:
    grid = Grid.covering(START_NS, 30 * DAY, 600)
    tide = tide_cm(Tide(m2_cm=50, s2_cm=10, k1_cm=20, o1_cm=8), grid, seed=1, station="t")
    assert dominant_period_h(tide, 600, (10, 14)) == pytest.approx(M2_PERIOD_S / 3600, abs=0.05)
    assert 22 < dominant_period_h(tide, 600, (20, 28)) < 27
    assert tide.max() <= 88 + 1e-9


def test_rain_comes_in_bursts_around_events() -> None:
    grid = Grid.covering(START_NS, 3 * DAY, 300)
    event = FloodEvent(
        "river",
        DAY,
        Hydrograph(100, 6 * HOUR, DAY),
        rain_mm=100,
        rain_lead_s=6 * HOUR,
        rain_duration_s=8 * HOUR,
    )
    rain = rain_mm("gauge", [event], grid, 5, longitude=105)
    window = (grid.offsets_s >= DAY - 6 * HOUR) & (grid.offsets_s < DAY + 2 * HOUR)
    assert 80 <= rain[window].sum() <= 120
    assert rain[window].sum() > 3 * rain[~window].sum()
    wet_share = np.count_nonzero(rain[window] > 0.01) / np.count_nonzero(window)
    assert wet_share < 0.9  # bursts, not a steady drizzle
    assert (rain >= 0).all()


def test_a_tipping_bucket_reports_whole_tips_that_add_up() -> None:
    rain = np.random.default_rng(1).gamma(0.3, 0.5, size=500)
    reports = np.arange(0, 500, 7, dtype=np.int64)
    counted = tipping_bucket(rain, reports)
    assert np.allclose(counted / 0.2, np.round(counted / 0.2))
    assert rain[: reports[-1] + 1].sum() - 0.2 <= counted.sum() <= rain[: reports[-1] + 1].sum()


def test_solar_batteries_charge_by_day_and_primary_cells_only_drain() -> None:
    grid = Grid.covering(START_NS, 4 * DAY, 600)
    volts, charge = battery(Power("solar-12v"), grid, 1, "s", longitude=105)
    local_hour = (grid.epoch_s / 3600 + 7) % 24
    noon = (local_hour > 11) & (local_hour < 13)
    night = (local_hour > 0) & (local_hour < 4)
    assert volts[noon].mean() > volts[night].mean() + 0.5
    assert volts.min() > 11
    assert volts.max() < 15
    assert ((charge >= 0.02) & (charge <= 1)).all()
    cell, cell_charge = battery(Power("primary-lithium", 0.01, 0.0), grid, 1, "d", longitude=105)
    assert (np.diff(cell_charge) <= 0).all()
    assert cell.min() > 3.2
    assert cell.max() < 3.7


def test_radio_values_look_like_a_network_servers() -> None:
    rssi, snr = radio(Radio(rssi_range_dbm=(-118, -95)), 500, 4, "s", np.zeros(500))
    assert np.array_equal(rssi, np.round(rssi))
    assert np.array_equal(snr * 4, np.round(snr * 4))
    assert -130 < rssi.mean() < -90
    assert rssi.std() > 0.5


def test_clocks_drift_between_syncs_and_network_time_does_not() -> None:
    times = np.arange(0, 3 * DAY, 600, dtype=np.float64)
    offsets = clock_offset_s(Clock(drift_ppm=20, sync_every_s=DAY), times, 1, "s")
    within_day = times < DAY
    slope = np.polyfit(times[within_day], offsets[within_day], 1)[0]
    assert slope == pytest.approx(20e-6, rel=1e-6)
    assert abs(offsets[times == DAY][0]) < 0.5  # resynchronised
    assert not clock_offset_s(Clock(synced=False), times, 1, "s").any()


def test_stations_report_faster_at_waspada_and_above() -> None:
    grid = Grid.covering(START_NS, 20 * HOUR, 60)
    truth = river_truth(jakarta_network(), grid, seed=3)
    thresholds = [Thresholds(waspada_cm=80, siaga_cm=150, awas_cm=200, inclusive=False)]
    warning = warning_levels(truth.levels_cm["katulampa"], thresholds, grid)
    indices = report_indices(grid, Schedule(3600, 900), warning, 1, "katulampa")
    gaps = np.diff(indices) * 60
    alarmed = warning[indices[:-1]] >= int(Level.WASPADA)
    assert set(gaps[alarmed]) == {900}
    assert set(gaps[~alarmed]) == {3600}


def test_warning_levels_use_the_thresholds_valid_at_each_moment() -> None:
    grid = Grid.covering(START_NS, 2 * DAY, 3600)
    old = Thresholds(waspada_cm=250, siaga_cm=350, awas_cm=450)
    new = Thresholds.model_validate(
        {"valid_from": "2026-03-02T00:00:00Z", "waspada_cm": 230, "siaga_cm": 330, "awas_cm": 430}
    )
    levels = warning_levels(np.full(grid.count, 240.0), [old, new], grid)
    assert set(levels[:24]) == {int(Level.NORMAL)}
    assert set(levels[24:]) == {int(Level.WASPADA)}


def test_samples_stay_within_the_metric_ranges_and_carry_device_time() -> None:
    grid = Grid.covering(START_NS, DAY, 300)
    level = np.linspace(-50, 2100, grid.count)  # beyond both ends of the range
    indices = np.arange(0, grid.count, 3, dtype=np.int64)
    metrics = {"water_level_cm": (0.0, 2000.0), "battery_v": (0.0, 15.0), "rssi_dbm": (-150, 0)}
    samples = sample_station(
        "s", metrics, grid, indices, device=DeviceModel(), seed=1, longitude=105, level_cm=level
    )
    assert set(samples.values) == set(metrics)
    for name, (low, high) in metrics.items():
        assert (samples.values[name] >= low).all()
        assert (samples.values[name] <= high).all()
    true_ms = START_NS // 10**6 + indices * 300_000
    assert np.abs(samples.ts_ms - true_ms).max() < 5_000  # drift of a few seconds at most
    assert (np.diff(samples.ts_ms) > 0).all()


def test_rain_raises_a_river_through_a_lagged_reservoir() -> None:
    step_s = 900.0
    rain = np.zeros(400)
    rain[10] = 10.0  # 10 mm in one step, on wet ground (dry_fraction 1: all of it runs off)
    spec = Runoff(gain_cm_per_mm=2.0, lag_s=3 * 3600, reservoir_s=6 * 3600, dry_fraction=1.0)
    rise = runoff_cm(rain, step_s, spec)
    assert not rise[: 10 + 12].any()  # nothing until the lag has passed
    assert rise[22] == pytest.approx(20.0)
    # Then it empties with the reservoir's time constant.
    assert rise[22 + 24] == pytest.approx(20.0 * np.exp(-1.0))


def test_the_same_storm_raises_a_wet_catchment_more() -> None:
    step_s = 900.0
    storm = np.zeros(2000)
    storm[1000:1040] = 2.5  # 100 mm over 10 h
    wet = storm.copy()
    wet[808:848] = 2.5  # the same storm two days earlier
    spec = Runoff(gain_cm_per_mm=1.0, lag_s=3600, reservoir_s=10 * 3600)
    dry_rise = runoff_cm(storm, step_s, spec)[1000:].max()
    wet_rise = runoff_cm(wet, step_s, spec)[1000:].max()
    assert wet_rise > 1.2 * dry_rise


def test_runoff_is_routed_down_the_river() -> None:
    grid = Grid(0, 900.0, 400)
    rise = np.zeros(400)
    rise[100:120] = 50.0
    network = RiverNetwork(
        {"a": Gauge("a", 100.0), "b": Gauge("b", 100.0)},
        [Channel("a", "b", 5 * 3600.0, attenuation=0.8, spread=0.0)],
        runoff={"a": rise},
    )
    waves = flood_waves(network, grid)
    assert waves["a"].max() == pytest.approx(50.0)
    assert int(np.argmax(waves["b"])) == 100 + 20
    assert waves["b"].max() == pytest.approx(40.0)

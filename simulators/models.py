"""Pure, seeded models of rivers, rain and field devices, computed on numpy arrays.

Everything here is a function of its arguments and a seed: the same inputs give the same arrays,
bit for bit. Each station and purpose draws from its own random stream (see :func:`stream`), so
adding a station to a scenario does not change the numbers of the others.

River levels are built as a sum, on a regular time grid:

* a base level with a slow seasonal swing (wettest around 1 February, Indonesia's wet-season
  peak), an optional linear drift and a smooth random wander;
* for tidal reaches, the principal tidal constituents: M2 (12.42 h, semi-diurnal lunar), S2
  (12.00 h), K1 (23.93 h) and O1 (25.82 h, diurnal);
* flood waves. A rain event raises a wave at its station with a *two-exponential* hydrograph,
  ``A (exp(-τ/T_fall) - exp(-τ/T_rise))``: a steep start, a rounded crest and a long exponential
  recession, which is the shape of the 21 Sep 2020 Katulampa record (40 → 120 cm in 4 min,
  250 cm at 29 min). The wave then travels down the registry's river links: on each link it is
  spread (a Gaussian of width ``spread * travel time``), delayed so that its *crest* arrives
  exactly ``travel_min`` later (travel times are crest travel times), and scaled so that its
  crest is ``attenuation`` times the upstream crest. Each event is routed on its own and the
  waves are summed, so every event's crest keeps its travel time.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from devices.levels import Level, Thresholds, thresholds_at

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

NS_PER_S = 1_000_000_000
SECONDS_PER_DAY = 86_400.0
SECONDS_PER_YEAR = 365.25 * SECONDS_PER_DAY

M2_PERIOD_S = 12.4206012 * 3600
"""Principal lunar semi-diurnal constituent."""
S2_PERIOD_S = 12.0 * 3600
"""Principal solar semi-diurnal constituent."""
K1_PERIOD_S = 23.9344697 * 3600
"""Lunisolar diurnal constituent."""
O1_PERIOD_S = 25.8193417 * 3600
"""Principal lunar diurnal constituent."""

_WET_SEASON_PEAK_DAY = 32.0
"""Day of year when the seasonal swing is highest (1 February)."""


def stream(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent random generator for ``seed`` and a purpose, e.g. ``(seed, station, "tide")``.

    Strings are hashed with CRC-32, which is stable across processes and Python versions
    (unlike ``hash``), so a scenario replays identically anywhere.
    """
    words = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF]
    for key in keys:
        words.append(zlib.crc32(key.encode()) if isinstance(key, str) else key & 0xFFFFFFFF)
    return np.random.default_rng(words)


# -- the time grid ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Grid:
    """A regular time grid: ``count`` points ``step_s`` apart from ``start_ns``.

    Attributes:
        start_ns: The first point, nanoseconds since the Unix epoch (UTC).
        step_s: Seconds between points.
        count: Number of points.
    """

    start_ns: int
    step_s: float
    count: int

    def __post_init__(self) -> None:
        if self.step_s <= 0 or self.count < 1:
            raise ValueError("a grid needs step_s > 0 and at least one point")

    @classmethod
    def covering(cls, start_ns: int, duration_s: float, step_s: float) -> Grid:
        """The grid from ``start_ns`` over ``duration_s``, both ends included."""
        return cls(start_ns, step_s, math.floor(duration_s / step_s + 1e-9) + 1)

    @property
    def offsets_s(self) -> FloatArray:
        """Seconds since the start, one per point."""
        return np.arange(self.count, dtype=np.float64) * self.step_s

    @property
    def epoch_s(self) -> FloatArray:
        """Seconds since the Unix epoch, one per point."""
        return self.start_ns / NS_PER_S + self.offsets_s

    def index_at(self, offset_s: float) -> int:
        """The grid index nearest to ``offset_s`` seconds after the start, clipped to the grid."""
        return int(min(max(round(offset_s / self.step_s), 0), self.count - 1))


# -- hydrographs --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hydrograph:
    """A flood wave's shape at the station where the rain fell.

    ``rise(τ) = A (exp(-τ/T_fall) - exp(-τ/T_rise))`` for ``τ ≥ 0``: the rise starts at full
    speed, the crest comes ``time_to_peak_s`` after the onset, and the recession decays with
    e-folding time ``recession_s``. ``T_rise`` and ``A`` are solved so that the crest is
    exactly ``peak_cm`` at exactly ``time_to_peak_s``.

    Attributes:
        peak_cm: Height of the crest above the level the water would otherwise have.
        time_to_peak_s: Seconds from onset to crest.
        recession_s: E-folding time of the recession; must exceed ``time_to_peak_s``.
    """

    peak_cm: float
    time_to_peak_s: float
    recession_s: float
    rise_s: float = field(init=False)
    _scale: float = field(init=False)

    def __post_init__(self) -> None:
        if self.peak_cm < 0 or self.time_to_peak_s <= 0:
            raise ValueError("a hydrograph needs peak_cm >= 0 and time_to_peak_s > 0")
        if self.recession_s <= self.time_to_peak_s:
            raise ValueError("the recession time must be longer than the time to peak")
        rise_s = _solve_rise_time(self.time_to_peak_s, self.recession_s)
        crest = math.exp(-self.time_to_peak_s / self.recession_s) - math.exp(
            -self.time_to_peak_s / rise_s
        )
        object.__setattr__(self, "rise_s", rise_s)
        object.__setattr__(self, "_scale", self.peak_cm / crest)

    def at(self, since_onset_s: FloatArray) -> FloatArray:
        """The rise (cm) at these times since the onset; zero before it."""
        tau = np.maximum(since_onset_s, 0.0)
        rise = self._scale * (np.exp(-tau / self.recession_s) - np.exp(-tau / self.rise_s))
        return np.where(since_onset_s > 0, rise, 0.0)


def _solve_rise_time(time_to_peak_s: float, recession_s: float) -> float:
    """``T_rise`` such that the two-exponential crest falls at ``time_to_peak_s``.

    The crest time ``T_r T_f ln(T_f/T_r) / (T_f - T_r)`` grows monotonically from 0 to ``T_f``
    as ``T_r`` goes from 0 to ``T_f``, so bisection (in log space) always converges.
    """

    def crest_time(rise_s: float) -> float:
        return rise_s * recession_s * math.log(recession_s / rise_s) / (recession_s - rise_s)

    low, high = recession_s * 1e-9, recession_s * (1 - 1e-9)
    for _ in range(200):
        middle = math.sqrt(low * high)
        if crest_time(middle) < time_to_peak_s:
            low = middle
        else:
            high = middle
    return math.sqrt(low * high)


# -- rivers -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tide:
    """Tidal constituents' amplitudes (cm); phases are drawn from the seed unless given.

    Attributes:
        m2_cm: Principal lunar semi-diurnal (12.42 h).
        s2_cm: Principal solar semi-diurnal (12.00 h); with M2 it makes the spring-neap cycle.
        k1_cm: Lunisolar diurnal (23.93 h).
        o1_cm: Principal lunar diurnal (25.82 h).
        phases_deg: Phases of M2, S2, K1, O1 in degrees at the Unix epoch, or None.
    """

    m2_cm: float = 0.0
    s2_cm: float = 0.0
    k1_cm: float = 0.0
    o1_cm: float = 0.0
    phases_deg: tuple[float, float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class Gauge:
    """A river gauge's undisturbed level.

    Attributes:
        station: Station id.
        base_cm: Mean level in normal flow.
        seasonal_cm: Half the seasonal swing (highest around 1 February).
        drift_cm_per_day: A linear trend over the run.
        wander_cm: Amplitude of a smooth random wander (periods of two to ten days).
        tide: Tidal constituents, for tidal reaches.
    """

    station: str
    base_cm: float
    seasonal_cm: float = 0.0
    drift_cm_per_day: float = 0.0
    wander_cm: float = 0.0
    tide: Tide | None = None


@dataclass(frozen=True, slots=True)
class Channel:
    """A river link as the model routes it.

    Attributes:
        source: Upstream station.
        target: Downstream station.
        travel_s: Crest travel time.
        attenuation: Downstream crest / upstream crest, for one wave.
        spread: Width of the spreading kernel as a fraction of the travel time.
    """

    source: str
    target: str
    travel_s: float
    attenuation: float = 0.8
    spread: float = 0.15


@dataclass(frozen=True, slots=True)
class FloodEvent:
    """Rain at a station that raises a flood wave there.

    Attributes:
        station: Where the wave starts.
        onset_s: When the water starts rising, seconds after the grid start.
        hydrograph: The wave's shape at ``station``.
        rain_mm: Total rain the event brings to rain gauges of the same basin.
        rain_lead_s: How long before the onset the rain starts.
        rain_duration_s: How long the rain lasts.
    """

    station: str
    onset_s: float
    hydrograph: Hydrograph
    rain_mm: float = 0.0
    rain_lead_s: float = 0.0
    rain_duration_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class RiverNetwork:
    """The gauges, the links between them and the flood events of a run.

    Attributes:
        runoff: Station → the rise its own catchment's rain gives it, on the grid (see
            :func:`runoff_cm`); routed down the links like the events' waves.
    """

    gauges: Mapping[str, Gauge]
    channels: Sequence[Channel] = ()
    events: Sequence[FloodEvent] = ()
    runoff: Mapping[str, FloatArray] = field(default_factory=dict)

    def downstream_of(self, station: str) -> list[Channel]:
        """The channels leaving ``station`` whose target is a gauge of this network."""
        return [c for c in self.channels if c.source == station and c.target in self.gauges]


@dataclass(frozen=True, slots=True)
class Truth:
    """Noise-free levels per station on a grid.

    Attributes:
        grid: The time grid.
        levels_cm: Station → level on the grid.
        waves_cm: Station → the flood waves' part of the level (zero where none arrives).
        tides_cm: Station → the tidal part of the level.
    """

    grid: Grid
    levels_cm: dict[str, FloatArray]
    waves_cm: dict[str, FloatArray]
    tides_cm: dict[str, FloatArray]


def base_level_cm(gauge: Gauge, grid: Grid, seed: int) -> FloatArray:
    """A gauge's level without floods or tides: base, season, drift and a smooth wander."""
    epoch_s = grid.epoch_s
    day_of_year = (epoch_s % SECONDS_PER_YEAR) / SECONDS_PER_DAY
    season = gauge.seasonal_cm * np.cos(
        2 * np.pi * (day_of_year - _WET_SEASON_PEAK_DAY) / (SECONDS_PER_YEAR / SECONDS_PER_DAY)
    )
    drift = gauge.drift_cm_per_day * grid.offsets_s / SECONDS_PER_DAY
    wander = np.zeros(grid.count)
    if gauge.wander_cm > 0:
        rng = stream(seed, gauge.station, "wander")
        periods_s = rng.uniform(2, 10, size=4) * SECONDS_PER_DAY
        phases = rng.uniform(0, 2 * np.pi, size=4)
        weights = rng.uniform(0.5, 1.0, size=4)
        weights *= gauge.wander_cm / weights.sum()
        for period_s, phase, weight in zip(periods_s, phases, weights, strict=True):
            # Anchored to absolute time, so overlapping runs agree where they overlap.
            wander += weight * np.sin(2 * np.pi * epoch_s / period_s + phase)
    return gauge.base_cm + season + drift + wander


def tide_cm(tide: Tide, grid: Grid, seed: int, station: str) -> FloatArray:
    """The tidal part of a level: the sum of the constituents at absolute time."""
    phases = tide.phases_deg
    if phases is None:
        drawn = stream(seed, station, "tide").uniform(0, 360, size=4)
        phases = (float(drawn[0]), float(drawn[1]), float(drawn[2]), float(drawn[3]))
    epoch_s = grid.epoch_s
    total = np.zeros(grid.count)
    for amplitude, period_s, phase in zip(
        (tide.m2_cm, tide.s2_cm, tide.k1_cm, tide.o1_cm),
        (M2_PERIOD_S, S2_PERIOD_S, K1_PERIOD_S, O1_PERIOD_S),
        phases,
        strict=True,
    ):
        if amplitude:
            total += amplitude * np.cos(
                2 * np.pi * (epoch_s % period_s) / period_s - np.radians(phase)
            )
    return total


def crest(series: FloatArray, step_s: float) -> tuple[float, float]:
    """The crest of a sampled series: (time in seconds from its start, height).

    A parabola through the highest sample and its neighbours places the crest between grid
    points, so travel times are kept to well within one step.
    """
    index = int(np.argmax(series))
    height = float(series[index])
    if 0 < index < len(series) - 1:
        before, after = float(series[index - 1]), float(series[index + 1])
        curvature = before - 2 * height + after
        if curvature < 0:
            shift = 0.5 * (before - after) / curvature
            return (index + shift) * step_s, height - 0.25 * (before - after) * shift
    return index * step_s, height


def route(wave: FloatArray, channel: Channel, step_s: float) -> FloatArray:
    """Carry one wave down a channel: spread it, delay its crest, scale its crest.

    Args:
        wave: The wave at the upstream station, on a grid of ``step_s`` (zero before it).
        channel: The link.
        step_s: The grid step.

    Returns:
        The wave at the downstream station on the same grid, its crest ``channel.travel_s``
        later and ``channel.attenuation`` times as high.
    """
    if not np.any(wave > 0):
        return np.zeros_like(wave)
    sigma_steps = channel.spread * channel.travel_s / step_s
    spread = wave
    if sigma_steps >= 0.5:
        half = math.ceil(4 * sigma_steps)
        offsets = np.arange(-half, half + 1, dtype=np.float64)
        kernel = np.exp(-0.5 * (offsets / sigma_steps) ** 2)
        kernel /= kernel.sum()
        spread = np.convolve(wave, kernel, mode="full")[half : half + len(wave)]
    crest_up_s, height_up = crest(wave, step_s)
    crest_spread_s, height_spread = crest(spread, step_s)
    # Spreading a skewed wave moves its crest; the delay makes up for it, so that the crest
    # travels exactly travel_s, which is what published travel times measure.
    delay_s = max(channel.travel_s - (crest_spread_s - crest_up_s), 0.0)
    times = np.arange(len(wave), dtype=np.float64) * step_s
    delayed = np.interp(times - delay_s, times, spread, left=0.0)
    scale = channel.attenuation * height_up / height_spread if height_spread > 0 else 0.0
    result: FloatArray = delayed * scale
    return result


def _path_lengths_s(network: RiverNetwork, station: str, seen: frozenset[str]) -> float:
    """The longest crest travel time from ``station`` down the network."""
    longest = 0.0
    for channel in network.downstream_of(station):
        if channel.target in seen:
            raise ValueError(f"river links form a loop through {channel.target!r}")
        below = _path_lengths_s(network, channel.target, seen | {channel.target})
        longest = max(longest, channel.travel_s + below)
    return longest


def flood_waves(network: RiverNetwork, grid: Grid) -> dict[str, FloatArray]:
    """Every gauge's flood waves on the grid: each event routed down the network and summed.

    Waves are computed on a longer grid than asked for, so that a crest beyond the end of the run
    still sets its wave's height and timing correctly, then cut to the grid.
    """
    waves = {station: np.zeros(grid.count) for station in network.gauges}
    pending: list[tuple[str, FloatArray]] = [
        (station, wave) for station, wave in network.runoff.items() if station in waves
    ]
    while pending:
        station, wave = pending.pop()
        waves[station] += wave
        pending.extend(
            (channel.target, route(wave, channel, grid.step_s))
            for channel in network.downstream_of(station)
        )
    for event in network.events:
        if event.station not in network.gauges:
            continue
        hydrograph = event.hydrograph
        reach_s = _path_lengths_s(network, event.station, frozenset({event.station}))
        # Long enough for the crest to reach the farthest gauge, with room for spreading.
        horizon_s = event.onset_s + hydrograph.time_to_peak_s * 3 + reach_s * 1.6
        count = max(grid.count, math.ceil(horizon_s / grid.step_s) + 2)
        times = np.arange(count, dtype=np.float64) * grid.step_s
        pending = [(event.station, hydrograph.at(times - event.onset_s))]
        while pending:
            station, wave = pending.pop()
            waves[station] += wave[: grid.count]
            pending.extend(
                (channel.target, route(wave, channel, grid.step_s))
                for channel in network.downstream_of(station)
            )
    return waves


def river_truth(network: RiverNetwork, grid: Grid, seed: int) -> Truth:
    """The noise-free level of every gauge at every grid point.

    Args:
        network: Gauges, links and flood events.
        grid: Where to evaluate.
        seed: The run's seed (base wander and tidal phases).

    Returns:
        Levels, and their wave and tide parts, per station.
    """
    waves = flood_waves(network, grid)
    tides: dict[str, FloatArray] = {}
    levels: dict[str, FloatArray] = {}
    for station, gauge in network.gauges.items():
        tides[station] = (
            tide_cm(gauge.tide, grid, seed, station) if gauge.tide else np.zeros(grid.count)
        )
        levels[station] = base_level_cm(gauge, grid, seed) + tides[station] + waves[station]
    return Truth(grid, levels, waves, tides)


def warning_levels(
    levels_cm: FloatArray, versions: Sequence[Thresholds], grid: Grid
) -> NDArray[np.int8]:
    """The canonical :class:`~devices.levels.Level` of each grid point, judged by the thresholds
    valid at that point's own time (-1 where no version applies)."""
    result = np.full(grid.count, -1, dtype=np.int8)
    if not versions:
        return result
    times_ns = grid.start_ns + np.round(grid.offsets_s * NS_PER_S).astype(np.int64)
    starts = sorted({v.valid_from_ns for v in versions})
    for start_ns in starts:
        version = thresholds_at(versions, start_ns)
        assert version is not None
        later = [s for s in starts if s > start_ns]
        mask = times_ns >= start_ns
        if later:
            mask &= times_ns < later[0]
        if not mask.any():
            continue
        values = levels_cm[mask]
        level = np.zeros(values.shape, dtype=np.int8)
        for threshold, candidate in (
            (version.waspada_cm, Level.WASPADA),
            (version.siaga_cm, Level.SIAGA),
            (version.awas_cm, Level.AWAS),
        ):
            reached = values >= threshold if version.inclusive else values > threshold
            level[reached] = int(candidate)
        result[mask] = level
    return result


# -- rainfall-runoff ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Runoff:
    """How the rain on a station's catchment raises its river.

    A lagged linear reservoir (the exponential unit hydrograph): rain reaches the reservoir
    ``lag_s`` after it falls, and the level rises by ``gain_cm_per_mm`` for each millimetre
    held, the reservoir emptying with e-folding time ``reservoir_s``. Only part of the rain runs
    off: ``dry_fraction`` on dry ground, rising towards all of it as the ground wets (the
    antecedent rain of the last ``memory_s``, with ``wet_mm`` of it making the ground two
    thirds of the way to saturated). That part is what makes a catchment's response nonlinear:
    the same storm raises the river more after a wet week than after a dry one.
    """

    gain_cm_per_mm: float
    lag_s: float
    reservoir_s: float
    dry_fraction: float = 0.3
    wet_mm: float = 60.0
    memory_s: float = 3 * SECONDS_PER_DAY


def runoff_cm(rain_per_step_mm: FloatArray, step_s: float, runoff: Runoff) -> FloatArray:
    """The rise of a river's level (cm) from the rain on its catchment, step by step."""
    count = len(rain_per_step_mm)
    lag = round(runoff.lag_s / step_s)
    keep = math.exp(-step_s / runoff.reservoir_s)
    remember = math.exp(-step_s / runoff.memory_s)
    wetness = 0.0
    store = 0.0
    rise = np.zeros(count)
    rain = np.asarray(rain_per_step_mm, dtype=np.float64)
    effective = np.zeros(count)
    for index in range(count):
        fraction = runoff.dry_fraction + (1 - runoff.dry_fraction) * (
            1 - math.exp(-wetness / runoff.wet_mm)
        )
        effective[index] = rain[index] * fraction
        wetness = wetness * remember + rain[index]
    for index in range(count):
        store = store * keep + (effective[index - lag] if index >= lag else 0.0)
        rise[index] = runoff.gain_cm_per_mm * store
    return rise


# -- rain ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RainClimate:
    """Background showers at a rain gauge, besides the scenario's events.

    Attributes:
        shower_chance_per_day: Probability of an afternoon convective shower on a given day.
        shower_mean_mm: Mean total of one shower (exponentially distributed).
    """

    shower_chance_per_day: float = 0.25
    shower_mean_mm: float = 6.0


def rain_mm(
    station: str,
    events: Iterable[FloodEvent],
    grid: Grid,
    seed: int,
    *,
    longitude: float,
    climate: RainClimate | None = None,
) -> FloatArray:
    """Rain (mm) falling in each grid step at a rain gauge: bursty, clustered around events.

    Each event's rain falls from ``onset - rain_lead`` for ``rain_duration`` with a smooth
    envelope broken into bursts: an on/off Markov chain (wet spells persist) times heavy-tailed
    gamma intensities, rescaled so the event's total is ``rain_mm`` within ±20 %. Afternoon
    showers (14:00-17:00 local solar time) come on top, one day in four by default.

    Args:
        station: The rain gauge (its own random stream).
        events: The events whose rain reaches this gauge.
        grid: Where to evaluate.
        seed: The run's seed.
        longitude: For local solar time.
        climate: Background showers; None for the default.
    """
    climate = climate or RainClimate()
    rng = stream(seed, station, "rain")
    offsets = grid.offsets_s
    total = np.zeros(grid.count)
    for event in events:
        begin = event.onset_s - event.rain_lead_s
        phase = (offsets - begin) / max(event.rain_duration_s, grid.step_s)
        inside = (phase >= 0) & (phase < 1)
        if not inside.any() or event.rain_mm <= 0:
            continue
        envelope = np.where(inside, np.sin(np.pi * np.clip(phase, 0, 1)) ** 2 + 0.05, 0.0)
        bursts = _bursts(rng, grid.count, wet_persistence=0.85, dry_persistence=0.6)
        intensity = envelope * bursts * rng.gamma(0.6, 1.0, size=grid.count)
        if intensity.sum() <= 0:
            intensity = envelope
        total += intensity * (event.rain_mm * rng.uniform(0.8, 1.2) / intensity.sum())
    local_hour = ((grid.epoch_s / 3600 + longitude / 15) % 24 + 24) % 24
    day = np.floor((grid.epoch_s + longitude / 15 * 3600) / SECONDS_PER_DAY).astype(np.int64)
    afternoon = (local_hour >= 14) & (local_hour < 17)
    for day_number in np.unique(day[afternoon]):
        # One draw per calendar day from a stream keyed by the day: overlapping runs agree.
        day_rng = stream(seed, station, "shower", int(day_number))
        if day_rng.random() >= climate.shower_chance_per_day:
            continue
        mask = afternoon & (day == day_number)
        weights = day_rng.gamma(0.8, 1.0, size=int(mask.sum()))
        if weights.sum() > 0:
            total[mask] += weights / weights.sum() * day_rng.exponential(climate.shower_mean_mm)
    return total


def _bursts(
    rng: np.random.Generator, count: int, wet_persistence: float, dry_persistence: float
) -> FloatArray:
    """A two-state Markov chain of wet (1) and dry (0) steps."""
    draws = rng.random(count)
    state = np.empty(count)
    wet = True
    for index in range(count):
        stay = wet_persistence if wet else dry_persistence
        if draws[index] >= stay:
            wet = not wet
        state[index] = 1.0 if wet else 0.0
    return state


def tipping_bucket(
    rain_per_step_mm: FloatArray, report_indices: IntArray, tip_mm: float = 0.2
) -> FloatArray:
    """Rain reported at each report, as a tipping bucket counts it.

    Each report gives the whole tips since the previous report; the part of a tip not yet full
    carries over, so the reports add up to the rain that fell, to within one tip.
    """
    cumulative = np.cumsum(rain_per_step_mm)
    at_reports = cumulative[report_indices]
    tips = np.floor(at_reports / tip_mm + 1e-9)
    counts = np.diff(np.concatenate(([0.0], tips)))
    return np.round(counts * tip_mm, 4)


# -- field devices --------------------------------------------------------------------------


PowerKind = Literal["solar-12v", "solar-liion", "primary-lithium"]


@dataclass(frozen=True, slots=True)
class Power:
    """A device's power supply.

    Attributes:
        kind: ``solar-12v`` (sealed lead-acid and a panel, typical for AWLR loggers),
            ``solar-liion`` (a single Li-ion cell and a small panel) or ``primary-lithium``
            (a Li-SOCl2 cell, as in LoRaWAN sensors such as the Dragino DDS75; no recharge).
        drain_per_day: Fraction of the capacity the load uses per day.
        solar_per_day: Fraction of the capacity a clear day's sun returns (solar kinds).
        initial_charge: State of charge at the start, 0-1; None draws one from the seed.
    """

    kind: PowerKind = "solar-12v"
    drain_per_day: float = 0.15
    solar_per_day: float = 0.30
    initial_charge: float | None = None


_VOLTAGE_CURVES: dict[str, tuple[float, float, float]] = {
    # (empty volts, full volts, extra volts while charging in the sun)
    "solar-12v": (11.6, 12.8, 1.0),
    "solar-liion": (3.4, 4.15, 0.05),
    "primary-lithium": (3.2, 3.65, 0.0),
}


def battery(
    power: Power,
    grid: Grid,
    seed: int,
    station: str,
    *,
    longitude: float,
    cloud: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Battery voltage and state of charge on the grid: drain, and solar recharge by day.

    The sun's power follows ``sin`` of the hour angle between 06:00 and 18:00 local solar time
    (from the longitude), reduced by cloud (0-1, e.g. from rain). Charge is integrated step by
    step and kept between 2 % and 100 %; voltage follows the charge, plus a charging bump.

    Returns:
        (volts, state of charge 0-1).
    """
    rng = stream(seed, station, "battery")
    charge0 = power.initial_charge if power.initial_charge is not None else rng.uniform(0.6, 0.95)
    local_hour = ((grid.epoch_s / 3600 + longitude / 15) % 24 + 24) % 24
    sun = np.clip(np.sin(np.pi * (local_hour - 6) / 12), 0, None)
    if cloud is not None:
        sun = sun * (1 - 0.8 * np.clip(cloud, 0, 1))
    step_days = grid.step_s / SECONDS_PER_DAY
    gain = np.zeros(grid.count)
    if power.kind != "primary-lithium":
        # sin over the 12 daylight hours integrates to 1/pi of a day: a clear day then returns
        # exactly solar_per_day.
        gain = sun * power.solar_per_day * step_days * np.pi
    delta = gain - power.drain_per_day * step_days
    charge = np.empty(grid.count)
    level = charge0
    for index in range(grid.count):
        charge[index] = level
        level = min(max(level + float(delta[index]), 0.02), 1.0)
    empty_v, full_v, charging_v = _VOLTAGE_CURVES[power.kind]
    # Li-SOCl2 holds its voltage until nearly empty: a flat curve with a knee.
    shape = charge if power.kind != "primary-lithium" else 1 - (1 - charge) ** 4
    volts = empty_v + (full_v - empty_v) * shape + charging_v * np.where(gain > 0, sun, 0.0)
    volts = volts + rng.normal(0, 0.003, size=grid.count)
    return volts, charge


@dataclass(frozen=True, slots=True)
class Radio:
    """Link quality as the network reports it.

    Attributes:
        rssi_dbm: Mean RSSI; None draws one from the seed within ``rssi_range_dbm``.
        rssi_range_dbm: Where a drawn mean falls.
        rssi_sigma_db: Fading around the mean (AR(1), correlated from one report to the next).
        snr_db: Mean SNR (LoRa); None draws one within ``snr_range_db``.
        snr_range_db: Where a drawn mean falls.
        snr_sigma_db: Spread of the SNR.
        rain_fade_db_per_mm: Extra loss per mm of rain in the step.
    """

    rssi_dbm: float | None = None
    rssi_range_dbm: tuple[float, float] = (-100.0, -75.0)
    rssi_sigma_db: float = 2.5
    snr_db: float | None = None
    snr_range_db: tuple[float, float] = (-5.0, 9.0)
    snr_sigma_db: float = 2.0
    rain_fade_db_per_mm: float = 0.3


def radio(
    spec: Radio, count: int, seed: int, station: str, rain_per_step_mm: FloatArray | None = None
) -> tuple[FloatArray, FloatArray]:
    """RSSI (dBm, whole numbers) and SNR (dB, LoRa's 0.25 dB steps) for ``count`` reports."""
    rng = stream(seed, station, "radio")
    mean_rssi = float(rng.uniform(*spec.rssi_range_dbm)) if spec.rssi_dbm is None else spec.rssi_dbm
    mean_snr = float(rng.uniform(*spec.snr_range_db)) if spec.snr_db is None else spec.snr_db
    fading = np.empty(count)
    state = 0.0
    innovations = rng.normal(0, spec.rssi_sigma_db * math.sqrt(1 - 0.7**2), size=count)
    for index in range(count):
        state = 0.7 * state + float(innovations[index])
        fading[index] = state
    fade = np.zeros(count)
    if rain_per_step_mm is not None:
        fade = spec.rain_fade_db_per_mm * np.asarray(rain_per_step_mm, dtype=np.float64)
    rssi: FloatArray = np.round(np.clip(mean_rssi + fading - fade, -150.0, 0.0)).astype(np.float64)
    noisy_snr = mean_snr + rng.normal(0, spec.snr_sigma_db, size=count) - fade / 2
    snr: FloatArray = np.round(np.clip(noisy_snr, -30, 30) * 4) / 4
    return rssi, snr


@dataclass(frozen=True, slots=True)
class Clock:
    """A device's real-time clock.

    Attributes:
        drift_ppm: Rate error in parts per million; None draws one within ±``max_drift_ppm``.
        max_drift_ppm: Bound for a drawn rate error (cheap crystals: tens of ppm).
        sync_every_s: The device resynchronises (NTP, GPS, network time) this often; None never.
        synced: False for a device whose timestamps come from the network, not its own clock.
    """

    drift_ppm: float | None = None
    max_drift_ppm: float = 40.0
    sync_every_s: float | None = 86_400.0
    synced: bool = True


def clock_offset_s(spec: Clock, times_s: FloatArray, seed: int, station: str) -> FloatArray:
    """How far the device's clock is ahead of true time at these times since the start (s)."""
    if not spec.synced:
        return np.zeros_like(times_s)
    rng = stream(seed, station, "clock")
    ppm = spec.drift_ppm if spec.drift_ppm is not None else rng.uniform(-1, 1) * spec.max_drift_ppm
    initial = rng.uniform(-0.5, 0.5)  # what the last synchronisation left
    if spec.sync_every_s is None:
        # Never resynchronised: the drift gathered since the last setting (up to a day) goes on.
        since_sync = times_s + rng.uniform(0, 86_400)
    else:
        since_sync = times_s % spec.sync_every_s
    offsets: FloatArray = initial + ppm * 1e-6 * since_sync
    return offsets


# -- sampling what devices report -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sensor:
    """What a device measures with.

    Attributes:
        noise_cm: Standard deviation of a level reading (radar ~0.3 cm, ultrasonic ~1 cm).
        resolution_cm: Readings are rounded to this (0.1 cm for loggers, 0.1 cm = 1 mm for the
            DDS75's millimetre distance).
    """

    noise_cm: float = 0.3
    resolution_cm: float = 0.1


@dataclass(frozen=True, slots=True)
class DeviceModel:
    """The device side of a station: power, radio, clock and sensor."""

    power: Power = Power()
    radio: Radio = Radio()
    clock: Clock = Clock()
    sensor: Sensor = Sensor()

    @classmethod
    def for_format(cls, payload_format: str) -> DeviceModel:
        """Typical hardware for a payload format.

        Native loggers: 12 V lead-acid with a panel, a cellular modem, NTP once a day. SenML
        gauges: a Li-ion cell with a small panel. LoRaWAN distance sensors: a primary lithium
        cell, LoRa link margins, and no clock of their own (the network server stamps uplinks).
        """
        if payload_format in {"ttn", "chirpstack"}:
            return cls(
                Power("primary-lithium", drain_per_day=0.0008, solar_per_day=0.0),
                Radio(rssi_range_dbm=(-118.0, -95.0), snr_range_db=(-8.0, 9.0)),
                Clock(synced=False),
                Sensor(noise_cm=1.0, resolution_cm=0.1),
            )
        if payload_format == "senml":
            return cls(
                Power("solar-liion", drain_per_day=0.2, solar_per_day=0.35), sensor=Sensor(0.5, 0.1)
            )
        return cls()


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a station reports.

    Attributes:
        every_s: The normal interval.
        alert_every_s: The interval while the level is at WASPADA or above (Jakarta's gates go
            from hourly to every 15 minutes at Siaga 3).
    """

    every_s: float
    alert_every_s: float = 900.0


def report_indices(
    grid: Grid, schedule: Schedule, warning: NDArray[np.int8] | None, seed: int, station: str
) -> IntArray:
    """Grid indices at which a station reports, starting at a seeded phase.

    Intervals are rounded to whole grid steps (at least one); after each report the next comes
    after the alert interval when that report's level was WASPADA or higher.
    """
    every = max(round(schedule.every_s / grid.step_s), 1)
    alert = max(round(min(schedule.alert_every_s, schedule.every_s) / grid.step_s), 1)
    index = int(stream(seed, station, "phase").integers(0, every))
    found: list[int] = []
    while index < grid.count:
        found.append(index)
        alarmed = warning is not None and int(warning[index]) >= int(Level.WASPADA)
        index += alert if alarmed else every
    return np.asarray(found, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Samples:
    """What one station's device reports over a run, one entry per report.

    Attributes:
        station: Station id.
        indices: Grid index of each report.
        times_s: True time of each report, seconds after the start.
        ts_ms: The time the device stamps on each report (its own clock), epoch milliseconds.
        values: Metric → reported values (only the station's metrics).
        truth_cm: The noise-free level at each report (level stations), for displays and tests.
    """

    station: str
    indices: IntArray
    times_s: FloatArray
    ts_ms: IntArray
    values: dict[str, FloatArray]
    truth_cm: FloatArray | None = None

    def __len__(self) -> int:
        return len(self.indices)


LEVEL_METRIC = "water_level_cm"
RAIN_METRIC = "rain_mm"


def sample_station(
    station_id: str,
    metrics: Mapping[str, tuple[float, float]],
    grid: Grid,
    indices: IntArray,
    *,
    device: DeviceModel,
    seed: int,
    longitude: float,
    level_cm: FloatArray | None = None,
    rain_per_step_mm: FloatArray | None = None,
) -> Samples:
    """Sample a station's device at the given grid indices.

    Args:
        station_id: Station id (its random streams).
        metrics: The station's metrics and their valid ranges; only these are reported, clipped
            to their range (a real logger clips to its sensor's span too).
        grid: The run's grid.
        indices: Report times as grid indices, ascending.
        device: Power, radio, clock and sensor.
        seed: The run's seed.
        longitude: For the sun.
        level_cm: The true level on the grid (level stations).
        rain_per_step_mm: Rain per grid step at the station (rain gauges; also fades the radio
            and clouds the panel).

    Returns:
        The reported values and timestamps.
    """
    rng = stream(seed, station_id, "sensor")
    times_s = indices.astype(np.float64) * grid.step_s
    offsets_s = clock_offset_s(device.clock, times_s, seed, station_id)
    true_ms = grid.start_ns // 1_000_000 + np.round(times_s * 1000).astype(np.int64)
    ts_ms = true_ms + np.round(offsets_s * 1000).astype(np.int64)
    values: dict[str, FloatArray] = {}
    truth = None
    if level_cm is not None and LEVEL_METRIC in metrics:
        truth = level_cm[indices]
        noisy = truth + rng.normal(0, device.sensor.noise_cm, size=len(indices))
        values[LEVEL_METRIC] = _quantise(noisy, device.sensor.resolution_cm)
    if rain_per_step_mm is not None and RAIN_METRIC in metrics:
        values[RAIN_METRIC] = tipping_bucket(rain_per_step_mm, indices)
    cloud = None
    if rain_per_step_mm is not None:
        cloud = np.clip(rain_per_step_mm / max(grid.step_s / 3600, 1e-9) / 5, 0, 1)
    volts, charge = battery(device.power, grid, seed, station_id, longitude=longitude, cloud=cloud)
    rain_at = None if rain_per_step_mm is None else rain_per_step_mm[indices]
    rssi, snr = radio(device.radio, len(indices), seed, station_id, rain_at)
    extras = {
        "battery_v": np.round(volts[indices], 3),
        "battery_pct": np.round(charge[indices] * 100, 1),
        "rssi_dbm": rssi,
        "snr_db": snr,
    }
    values.update({name: series for name, series in extras.items() if name in metrics})
    for name, series in values.items():
        low, high = metrics[name]
        values[name] = np.clip(series, low, high)
    return Samples(station_id, indices, times_s, ts_ms, values, truth)


def _quantise(values: FloatArray, resolution: float) -> FloatArray:
    decimals = max(0, -math.floor(math.log10(resolution))) if resolution < 1 else 0
    return np.round(np.round(values / resolution) * resolution, decimals + 2)

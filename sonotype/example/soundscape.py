"""Synthetic rainforest soundscape: background, bird song, frog choruses, insects, rain.

Each source is rendered separately so that the ground truth can say which one dominates
each second. How active a source is depends on the local time of day (`activity`):
a dawn chorus and a weaker dusk chorus of birds, cicadas at dusk, frogs and crickets at
night, rain more often in the afternoon, background noise always. The sources differ in
spectro-temporal shape (frequency sweeps, pulse trains, steady buzzes, broadband noise)
so that an unsupervised model has something real to find.
"""

import math

import numpy as np
from scipy.signal import lfilter

SOURCES = ("background", "birds", "frogs", "insects", "rain")
"""Ground-truth labels of the sources, in column order."""
SILENCE = "silence"
"""Ground-truth label of seconds where the recorder wrote digital silence (a dropout)."""


def _bump(hour: float, centre: float, width: float) -> float:
    """A Gaussian bump on the 24 h circle."""
    distance = min(abs(hour - centre), 24 - abs(hour - centre))
    return math.exp(-0.5 * (distance / width) ** 2)


def _night(hour: float) -> float:
    """1 at night, 0 by day, with an hour-long ramp at 19:00–20:00 and 04:30–05:30."""
    evening = np.clip(hour - 19.0, 0.0, 1.0)
    morning = np.clip(5.5 - hour, 0.0, 1.0)
    return float(max(evening, morning))


def activity(hour: float) -> dict[str, float]:
    """How active each source is (0–1) at a local hour of day (0–24); rain is a probability."""
    daytime = 1.0 - _night(hour)
    return {
        "background": 1.0,
        "birds": min(
            1.0, 1.0 * _bump(hour, 6.0, 0.9) + 0.45 * _bump(hour, 17.6, 0.7) + 0.15 * daytime
        ),
        "frogs": 0.9 * _night(hour),
        "insects": min(1.0, 0.9 * _bump(hour, 18.3, 0.6) + 0.35 * _night(hour) + 0.08),
        "rain": 0.15 + 0.3 * _bump(hour, 15.0, 2.5),
    }


def _db(level_dbfs: float) -> float:
    return 10.0 ** (level_dbfs / 20.0)


def _tone_phase(frequency_hz: np.ndarray | float, sample_rate: int, n: int) -> np.ndarray:
    """Phase (rad, float32, wrapped to [0, 2π)) of a tone with constant or per-sample frequency.

    The running phase is accumulated in float64 and wrapped before the cast: float32
    cannot hold minutes of phase to a fraction of a radian.
    """
    if np.isscalar(frequency_hz):
        return 2 * np.pi * _periodic(float(frequency_hz), sample_rate, n)
    cycles = np.cumsum(frequency_hz, dtype=np.float64) / sample_rate
    return (2 * np.pi * (cycles - np.floor(cycles))).astype(np.float32)


def _periodic(rate_hz: float, sample_rate: int, n: int, offset: float = 0.0) -> np.ndarray:
    """Position within a cycle of `rate_hz` (0–1, float32) for each sample."""
    cycles = np.arange(n, dtype=np.float64)
    cycles *= rate_hz / sample_rate
    cycles += offset
    cycles -= np.floor(cycles)  # floor-subtract: several times faster than np.mod
    return cycles.astype(np.float32)


def _background(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    """Brown-ish noise with slow gusts (wind, distant canopy), about −49 dBFS RMS."""
    white = rng.standard_normal(n).astype(np.float32)
    brown = lfilter([1.0], [1.0, -0.995], white).astype(np.float32)
    brown /= np.std(brown) + 1e-9
    noise = 0.75 * brown + 0.25 * white
    gusts = 1.0 + 0.35 * np.sin(
        2 * np.pi * _periodic(rng.uniform(0.02, 0.08), sample_rate, n, rng.uniform(0, 1))
    )
    level = _db(rng.uniform(-52, -46))
    return (level * noise * gusts / (np.std(noise) + 1e-9)).astype(np.float32)


def _syllables(rng: np.random.Generator, species: int) -> list[tuple[float, float, float, float]]:
    """(onset_s, duration_s, start_hz, end_hz) of one song of one of three song types."""
    notes = []
    onset = 0.0
    if species == 0:  # slow descending whistles
        frequency = rng.uniform(3200, 4200)
        for _ in range(rng.integers(3, 7)):
            duration = rng.uniform(0.15, 0.35)
            notes.append((onset, duration, frequency, frequency * 0.8))
            onset += duration + rng.uniform(0.06, 0.12)
            frequency *= 0.92
    elif species == 1:  # fast rising trill
        low, high = rng.uniform(2200, 3000), rng.uniform(4800, 6000)
        for _ in range(rng.integers(10, 26)):
            duration = rng.uniform(0.03, 0.05)
            notes.append((onset, duration, low, high))
            onset += duration + 0.02
    else:  # warble of random short notes
        for _ in range(rng.integers(5, 11)):
            duration = rng.uniform(0.06, 0.12)
            start = rng.uniform(2000, 6500)
            notes.append((onset, duration, start, start * rng.uniform(0.7, 1.4)))
            onset += duration + rng.uniform(0.01, 0.05)
    return notes


def _birds(rng: np.random.Generator, n: int, sample_rate: int, level: float) -> np.ndarray:
    """Songs of three song types, at a rate that follows `level`."""
    out = np.zeros(n, np.float32)
    duration_s = n / sample_rate
    n_songs = rng.poisson(0.5 * level * duration_s)
    for start_s in rng.uniform(0, duration_s, n_songs):
        amplitude = _db(rng.uniform(-24, -9))
        for onset_s, length_s, f_start, f_end in _syllables(rng, int(rng.integers(3))):
            first = int((start_s + onset_s) * sample_rate)
            length = min(int(length_s * sample_rate), n - first)
            if length <= 8:
                continue
            sweep = np.linspace(f_start, f_end, length)
            phase = _tone_phase(sweep, sample_rate, length) + rng.uniform(0, 2 * np.pi)
            wave = np.sin(phase) + np.float32(0.25) * np.sin(2 * phase)
            out[first : first + length] += (amplitude * np.hanning(length) * wave).astype(
                np.float32
            )
    return out


def _frogs(rng: np.random.Generator, n: int, sample_rate: int, level: float) -> np.ndarray:
    """A chorus of pulsed calls (carrier 0.7–1.9 kHz, 8–22 pulses/s)."""
    out = np.zeros(n, np.float32)
    for _ in range(round(level * 4)):
        call_s = rng.uniform(0.4, 1.4)
        period_s = call_s + rng.uniform(0.8, 3.0)
        calling = _periodic(1 / period_s, sample_rate, n, rng.uniform(0, 1)) < call_s / period_s
        pulses = 0.5 - 0.5 * np.cos(2 * np.pi * _periodic(rng.uniform(8, 22), sample_rate, n))
        carrier = np.sin(_tone_phase(rng.uniform(700, 1900), sample_rate, n))
        amplitude = np.float32(_db(rng.uniform(-24, -13)))
        out += amplitude * calling * (pulses * pulses * pulses) * carrier
    return out


def _insects(rng: np.random.Generator, n: int, sample_rate: int, level: float) -> np.ndarray:
    """Steady amplitude-modulated buzzes (cicadas, crickets) at 4.5–9.5 kHz."""
    out = np.zeros(n, np.float32)
    for _ in range(round(level * 3)):
        buzz = 0.5 + 0.5 * np.sin(2 * np.pi * _periodic(rng.uniform(25, 120), sample_rate, n))
        on_s, off_s = rng.uniform(5, 20), rng.uniform(1, 6)
        cycle = on_s + off_s
        sounding = _periodic(1 / cycle, sample_rate, n, rng.uniform(0, 1)) < on_s / cycle
        carrier = np.sin(_tone_phase(rng.uniform(4500, 9500), sample_rate, n))
        amplitude = np.float32(_db(rng.uniform(-27, -16)) * math.sqrt(level))
        out += amplitude * sounding * (buzz * buzz) * carrier
    return out


def _rain(
    rng: np.random.Generator, n: int, sample_rate: int, probability: float, heavy: bool
) -> np.ndarray:
    """Bursts of broadband rain noise with drop impacts; `heavy` makes a burst that clips."""
    out = np.zeros(n, np.float32)
    if not heavy and rng.random() >= probability:
        return out
    length = min(n, int(rng.uniform(15, 60) * sample_rate))
    first = int(rng.integers(0, n - length + 1))
    hiss = lfilter([0.5], [1.0, -0.5], rng.standard_normal(length))
    drops = (rng.random(length) < 60 / sample_rate) * rng.standard_normal(length) * 8
    drops = lfilter([1.0], [1.0, -0.93], drops)
    burst = hiss + drops
    ramp = min(length // 2, 2 * sample_rate)
    envelope = np.ones(length)
    envelope[:ramp] = np.linspace(0, 1, ramp)
    envelope[length - ramp :] = np.linspace(1, 0, ramp)
    level = _db(-4.0) if heavy else _db(rng.uniform(-26, -15))
    burst *= level * envelope / (np.std(burst) + 1e-9)
    out[first : first + length] = burst.astype(np.float32)
    return out


def synthesize(
    rng: np.random.Generator, hour: float, n: int, sample_rate: int, heavy_rain: bool = False
) -> dict[str, np.ndarray]:
    """Render every source for one recording.

    Args:
        rng: the recording's own generator (so files do not depend on each other).
        hour: local hour of day (0–24) the recording is centred on.
        n: samples to render.
        sample_rate: samples per second.
        heavy_rain: force a rain burst loud enough to clip.

    Returns:
        float32 `[n]` per source name of `SOURCES`; their sum is the recording.
    """
    levels = activity(hour)
    return {
        "background": _background(rng, n, sample_rate),
        "birds": _birds(rng, n, sample_rate, levels["birds"]),
        "frogs": _frogs(rng, n, sample_rate, levels["frogs"]),
        "insects": _insects(rng, n, sample_rate, levels["insects"]),
        "rain": _rain(rng, n, sample_rate, levels["rain"], heavy_rain),
    }


def dominant_per_second(
    components: dict[str, np.ndarray], sample_rate: int
) -> tuple[list[str], np.ndarray]:
    """Which source carries the most energy in each whole second.

    Returns:
        The label of each second, and the level of each source per second in dBFS,
        `[n_seconds, len(SOURCES)]`.
    """
    n_seconds = len(components["background"]) // sample_rate
    energy = np.stack(
        [
            np.mean(
                components[name][: n_seconds * sample_rate]
                .astype(np.float64)
                .reshape(n_seconds, -1)
                ** 2,
                axis=1,
            )
            for name in SOURCES
        ],
        axis=1,
    )
    labels = [SOURCES[i] for i in np.argmax(energy, axis=1)]
    return labels, (10 * np.log10(energy + 1e-12)).astype(np.float32)

"""Quality figures of a segment, and the checks that decide whether it is kept.

Figures of the source samples (clipping, digital silence, NaN/Inf) are measured before
resampling, which would smear clipped peaks and spread a NaN over the whole filter;
level figures (RMS, peak, DC) are measured on the resampled audio that is stored. Each
check returns None (keep) or a stable snake_case reason that is counted per run.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np

from sonotype.config.ingest import QualityConfig

FLOOR_DBFS: Final = -200.0
"""RMS level reported for digital silence (20·log10 of 1e-10) instead of -inf."""

NONFINITE: Final = "nonfinite"
SILENCE: Final = "silence"
CLIPPED: Final = "clipped"
TOO_QUIET: Final = "too_quiet"


@dataclass(frozen=True)
class SourceFigures:
    """What the source samples of a segment looked like.

    Attributes:
        clipped_fraction: share of samples (all channels of the stream) at or beyond the clip level.
        is_silent: it holds digital silence, a run of exact zeros of at least the configured length.
        has_nonfinite: it held NaN or ±Inf samples (replaced by 0 before resampling).
    """

    clipped_fraction: float
    is_silent: bool
    has_nonfinite: bool


@dataclass(frozen=True)
class LevelFigures:
    """Levels of the stored (resampled) segment, in full-scale units.

    Attributes:
        rms_dbfs: RMS level in dB relative to full scale; a full-scale sine is -3.01.
        peak: largest absolute sample.
        dc_offset: mean sample value.
    """

    rms_dbfs: float
    peak: float
    dc_offset: float


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS level of float samples `[n]` in dBFS (FLOOR_DBFS for silence or no samples)."""
    if samples.size == 0:
        return FLOOR_DBFS
    mean_square = float(np.dot(samples, samples)) / samples.size
    return max(10.0 * np.log10(max(mean_square, 1e-20)), FLOOR_DBFS)


def level_figures(samples: np.ndarray) -> LevelFigures:
    """RMS, peak and DC offset of float samples `[n]`."""
    if samples.size == 0:
        return LevelFigures(FLOOR_DBFS, 0.0, 0.0)
    return LevelFigures(
        rms_dbfs=rms_dbfs(samples),
        peak=max(float(np.max(samples)), -float(np.min(samples))),
        dc_offset=float(np.mean(samples, dtype=np.float64)),
    )


def count_clipped(samples: np.ndarray, level: float) -> int:
    """Number of samples (all channels) with |x| ≥ `level`; NaN never counts."""
    if samples.size == 0:
        return 0
    # Most audio never comes near full scale: two reductions settle it without building
    # a temporary array of absolute values.
    if np.max(samples) < level and np.min(samples) > -level:
        return 0
    return int(np.count_nonzero(np.abs(samples) >= level))


def clipped_fraction(samples: np.ndarray, level: float) -> float:
    """Share of samples `[n]` or `[n, channels]` with |x| ≥ `level` (NaN never counts)."""
    return count_clipped(samples, level) / samples.size if samples.size else 0.0


def zero_frames(samples: np.ndarray) -> np.ndarray:
    """bool `[n]`: which frames of `[n]` or `[n, channels]` are exactly zero on every channel."""
    if samples.ndim == 1:
        return samples == 0
    if samples.shape[1] == 2 and samples.dtype == np.float32 and samples.flags.c_contiguous:
        # A stereo frame is 8 bytes: both channels are +0.0 exactly when they read as a
        # zero int64, 10x faster than comparing the columns (integer PCM never gives -0.0).
        return samples.view(np.int64)[:, 0] == 0
    # Column by column: numpy reduces slowly along a short last axis.
    zero = samples[:, 0] == 0
    for channel in range(1, samples.shape[1]):
        zero &= samples[:, channel] == 0
    return zero


def longest_zero_run(samples: np.ndarray) -> int:
    """Length of the longest run of frames that are exactly zero on every channel.

    Args:
        samples: float `[n]` or `[n, channels]`.
    """
    positions = np.flatnonzero(zero_frames(samples))
    if positions.size == 0:
        return 0
    # Runs break wherever consecutive zero positions are not neighbours.
    breaks = np.flatnonzero(np.diff(positions) != 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [positions.size - 1]])
    return int(np.max(ends - starts + 1))


def count_nonfinite(samples: np.ndarray) -> int:
    """Number of NaN and ±Inf values."""
    return samples.size - int(np.count_nonzero(np.isfinite(samples)))


def replace_nonfinite(block: np.ndarray) -> np.ndarray:
    """A copy of `block` with NaN and ±Inf set to 0, or `block` itself if all are finite."""
    if np.isfinite(block).all():
        return block
    return np.nan_to_num(block, nan=0.0, posinf=0.0, neginf=0.0)


def source_figures(
    samples: np.ndarray, sample_rate: int, config: QualityConfig, may_be_nonfinite: bool
) -> SourceFigures:
    """Clipping, digital silence and NaN/Inf of a segment's source samples, all at once.

    Ingest measures streams block by block (`ingest.meter.SourceMeter`), to the same
    figures as this function gives on the whole window.

    Args:
        samples: float `[n]` or `[n, channels]` at the source rate, before any replacement.
        sample_rate: their rate, to turn `silence_min_run_s` into samples.
        config: clip level and silence run length.
        may_be_nonfinite: the source holds floats (integer PCM cannot be NaN: skip the scan).
    """
    min_run = max(1, round(config.silence_min_run_s * sample_rate))
    return SourceFigures(
        clipped_fraction=clipped_fraction(samples, config.clip_level),
        is_silent=longest_zero_run(samples) >= min_run,
        has_nonfinite=may_be_nonfinite and count_nonfinite(samples) > 0,
    )


def check_nonfinite(
    source: SourceFigures, levels: LevelFigures, config: QualityConfig
) -> str | None:
    """Drop a segment that held NaN/Inf (if configured)."""
    return NONFINITE if config.drop_nonfinite and source.has_nonfinite else None


def check_silence(source: SourceFigures, levels: LevelFigures, config: QualityConfig) -> str | None:
    """Drop a segment with digital silence, a recorder dropout (if configured)."""
    return SILENCE if config.drop_silent and source.is_silent else None


def check_clipping(
    source: SourceFigures, levels: LevelFigures, config: QualityConfig
) -> str | None:
    """Drop a segment with more clipped samples than allowed."""
    limit = config.max_clipped_fraction
    return CLIPPED if limit is not None and source.clipped_fraction > limit else None


def check_level(source: SourceFigures, levels: LevelFigures, config: QualityConfig) -> str | None:
    """Drop a segment quieter than the configured minimum RMS level."""
    floor = config.min_rms_dbfs
    return TOO_QUIET if floor is not None and levels.rms_dbfs < floor else None


Check = Callable[[SourceFigures, LevelFigures, QualityConfig], str | None]
CHECKS: tuple[Check, ...] = (check_nonfinite, check_silence, check_clipping, check_level)
"""In order of precedence: a segment's drop reason is the first that applies."""


def drop_reason(source: SourceFigures, levels: LevelFigures, config: QualityConfig) -> str | None:
    """The reason to drop a segment, or None to keep it."""
    for check in CHECKS:
        reason = check(source, levels, config)
        if reason is not None:
            return reason
    return None

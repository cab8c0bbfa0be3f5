"""Crops: where to cut them in a segment, cutting them from FLAC bytes, and their gain.

A `CropSpec` says which samples of which segment to decode and at which level, and
holds the segment's compressed bytes; the random choices are made when the spec is
made, before shuffling. Decoding happens only after the shuffle buffer, so skipping
crops (fast-forwarding a resumed epoch) costs no decoding, and the buffer holds
compressed bytes rather than float samples.
"""

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np

from sonotype import audio
from sonotype.errors import AudioDecodeError


@dataclass(frozen=True, slots=True)
class CropSpec:
    """One crop to cut, not yet decoded.

    Attributes:
        key: the segment's key.
        data: the segment's FLAC bytes (shared by all crops of the segment).
        metadata: the segment's row (decoded JSON member).
        offset: first sample of the crop within the segment.
        length: samples to decode (less than the crop length for a padded short segment).
        target_dbfs: the level the crop is normalised to, dBFS.
    """

    key: str
    data: bytes
    metadata: dict[str, Any]
    offset: int
    length: int
    target_dbfs: float


def random_offsets(n_frames: int, crop: int, count: int, rng: random.Random) -> list[int]:
    """`count` crop starts drawn uniformly in [0, n_frames - crop] (0 for a short segment)."""
    last = max(n_frames - crop, 0)
    return [rng.randint(0, last) for _ in range(count)]


def fixed_offsets(n_frames: int, crop: int, count: int) -> list[int]:
    """`count` crop starts spread evenly over the segment; one crop sits in the middle."""
    last = max(n_frames - crop, 0)
    if count == 1:
        return [last // 2]
    return [round(i * last / (count - 1)) for i in range(count)]


def normalising_gain_db(
    samples: np.ndarray, mode: str, target_dbfs: float, max_gain_db: float
) -> float:
    """The gain that puts a crop's peak or RMS at `target_dbfs` (see `normalise_gain`).

    Returns:
        The gain in dB: 0 when mode is "none" or the crop is empty or all zeros.
    """
    if mode == "none" or len(samples) == 0:
        return 0.0
    peak = float(np.max(np.abs(samples)))
    if peak == 0.0:
        return 0.0
    if mode == "peak":
        gain_db = target_dbfs - 20.0 * math.log10(peak)
    else:
        rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
        gain_db = min(target_dbfs - 20.0 * math.log10(rms), -20.0 * math.log10(peak))
    return min(gain_db, max_gain_db)


def normalise_gain(
    samples: np.ndarray, mode: str, target_dbfs: float, max_gain_db: float
) -> np.ndarray:
    """Scale a crop so that its peak or RMS sits at `target_dbfs`.

    The gain never exceeds `max_gain_db` (so near-silence is not amplified into
    noise) and, in RMS mode, never pushes the peak above full scale.

    Args:
        samples: float32 `[T]`.
        mode: "none", "peak" or "rms".
        target_dbfs: the wanted level, dBFS.
        max_gain_db: the largest amplification, dB.

    Returns:
        float32 `[T]` (the input itself when the gain is 0 dB).
    """
    gain_db = normalising_gain_db(samples, mode, target_dbfs, max_gain_db)
    if gain_db == 0.0:
        return samples
    return samples * np.float32(10.0 ** (gain_db / 20.0))


def cut(
    spec: CropSpec, crop: int | None, gain_mode: str, max_gain_db: float
) -> tuple[np.ndarray, float]:
    """Decode a crop, normalise its gain and zero-pad it to `crop` samples.

    Args:
        spec: what to cut.
        crop: the crop length in samples (None: exactly `spec.length`).
        gain_mode: "none", "peak" or "rms" (see `normalise_gain`).
        max_gain_db: the largest amplification, dB.

    Returns:
        float32 `[crop]` (or `[spec.length]`), and the gain applied in dB (so that the
        recorded level can be recovered).

    Raises:
        AudioDecodeError: the FLAC cannot be decoded, is truncated, or is not mono.
    """
    samples = audio.decode_bytes_range(spec.data, spec.offset, spec.length, name=spec.key)
    if samples.ndim != 1:
        raise AudioDecodeError(f"{spec.key}: {samples.shape[1]} channels; shards hold mono audio")
    gain_db = normalising_gain_db(samples, gain_mode, spec.target_dbfs, max_gain_db)
    if gain_db != 0.0:
        samples = samples * np.float32(10.0 ** (gain_db / 20.0))
    if crop is None or crop == len(samples):
        return samples, gain_db
    padded = np.zeros(crop, np.float32)
    padded[: len(samples)] = samples
    return padded, gain_db

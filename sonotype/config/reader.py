"""Config of the shard reader: crops, gain, filters, shuffling, batching, workers.

`ReaderConfig` is meant to be embedded as the `data` section of a training config;
it is also registered as its own kind (`sonotype config show reader`).
"""

import datetime as dt
import math
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from sonotype.config.base import StrictModel
from sonotype.errors import ConfigError


class GainConfig(StrictModel):
    """Per-crop gain normalisation.

    In training each crop is brought to a level drawn uniformly from
    [`min_dbfs`, `max_dbfs`]; deterministic passes (validation, encoding) use the
    midpoint. vocos draws a peak level in [-6, -1] dBFS per training clip; those are
    the defaults here.
    """

    mode: Literal["none", "peak", "rms"] = Field(
        default="peak", description="level measured on each crop: its peak or its RMS"
    )
    min_dbfs: float = Field(default=-6.0, le=0.0, description="lowest target level, dBFS")
    max_dbfs: float = Field(default=-1.0, le=0.0, description="highest target level, dBFS")
    max_gain_db: float = Field(
        default=30.0,
        ge=0.0,
        description="largest amplification, dB: near-silent crops are not blown up to noise",
    )

    @model_validator(mode="after")
    def _ordered(self) -> "GainConfig":
        if self.min_dbfs > self.max_dbfs:
            raise ValueError(
                f"min_dbfs ({self.min_dbfs}) must not exceed max_dbfs ({self.max_dbfs})"
            )
        return self


class SegmentFilterConfig(StrictModel):
    """Which segments are read. Only kept segments (catalog `kept`) are ever read."""

    sites: list[str] | None = Field(default=None, description="sites to read (None: all)")
    start_time: AwareDatetime | None = Field(
        default=None, description="first segment start to read (inclusive), with a time zone"
    )
    end_time: AwareDatetime | None = Field(
        default=None, description="segment starts before this time (exclusive), with a time zone"
    )
    exclude_silent: bool = Field(default=True, description="skip segments flagged silent")
    exclude_nonfinite: bool = Field(default=True, description="skip segments that held NaN/Inf")
    max_clipped_fraction: float | None = Field(
        default=None, ge=0.0, le=1.0, description="skip segments with more clipped samples"
    )
    min_rms_dbfs: float | None = Field(
        default=None, le=0.0, description="skip segments quieter than this RMS level, dBFS"
    )

    @field_validator("start_time", "end_time")
    @classmethod
    def _to_utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        return None if value is None else value.astimezone(dt.UTC)

    @model_validator(mode="after")
    def _ordered(self) -> "SegmentFilterConfig":
        if self.start_time and self.end_time and self.start_time >= self.end_time:
            raise ValueError(
                f"start_time ({self.start_time}) must be before end_time ({self.end_time})"
            )
        return self


class ReaderConfig(StrictModel):
    """The streaming shard reader: what a crop is, how crops are mixed and batched.

    Memory per DataLoader worker is about `shuffle_buffer` crops' worth of compressed
    segments (crops of one segment share its bytes) plus `batch_size` decoded crops;
    it does not depend on the number of shards, segments or recording lengths.
    """

    crop_s: float = Field(default=3.0, gt=0.0, description="crop length, seconds")
    crop_samples: int | None = Field(
        default=None, gt=0, description="crop length in samples; overrides crop_s when set"
    )
    crops_per_segment: int = Field(
        default=1, ge=1, description="random crops taken from each segment per epoch"
    )
    short_segments: Literal["pad", "skip"] = Field(
        default="pad", description="segments shorter than a crop: zero-padded, or skipped"
    )
    batch_size: int = Field(default=16, ge=1, description="crops per batch (per rank)")
    shuffle_buffer: int = Field(
        default=512, ge=1, description="crops held per worker for shuffling"
    )
    num_workers: int = Field(default=2, ge=0, description="DataLoader worker processes")
    pin_memory: bool = Field(default=False, description="pin batches for fast GPU copies")
    seed: int = Field(default=0, description="seeds shard order, crops, gains and shuffling")
    sample_rate: int | None = Field(
        default=None, gt=0, description="expected rate, Hz (None: the shards' own rate)"
    )
    gain: GainConfig = Field(default_factory=GainConfig)
    filters: SegmentFilterConfig = Field(default_factory=SegmentFilterConfig)

    def crop_length(self, sample_rate: int, hop_samples: int | None = None) -> int:
        """The crop length in samples at `sample_rate`.

        Args:
            sample_rate: the shards' sample rate, Hz.
            hop_samples: the model's hop; the crop must be a whole number of hops.

        Returns:
            Samples per crop.

        Raises:
            ConfigError: `crop_s` is not a whole number of samples at this rate, or the
                crop is not a multiple of `hop_samples`.
        """
        if self.crop_samples is not None:
            length = self.crop_samples
        else:
            exact = self.crop_s * sample_rate
            length = round(exact)
            if not math.isclose(exact, length, abs_tol=1e-6):
                raise ConfigError(
                    f"crop_s: {self.crop_s} s at {sample_rate} Hz is {exact:g} samples, not a "
                    "whole number; set crop_samples instead"
                )
        if hop_samples is not None and length % hop_samples:
            suggestion = max(hop_samples, length // hop_samples * hop_samples)
            raise ConfigError(
                f"crop of {length} samples is not a multiple of the model hop {hop_samples}; "
                f"set crop_samples to a multiple, e.g. {suggestion}"
            )
        return length

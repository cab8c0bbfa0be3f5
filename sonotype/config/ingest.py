"""Config of `sonotype ingest`: discovery, metadata rules, channels, resampling, segments, QC, job.

The sections `metadata`, `channels`, `resample`, `segment`, `quality` and `shards` shape
the output (recording ids, shard contents); `IngestConfig.output_shaping()` lists them so
that an output folder is never filled with segments made under different settings.
"""

import re
import zoneinfo
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sonotype.config.base import StrictModel

LOCAL_ZONE = "local"
"""A time rule's `timezone` that means "the recorders' zone", `metadata.timezone`."""


def _check_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        expected = f"an IANA time zone such as 'America/Cayenne' or 'UTC', got {value!r}"
        raise ValueError(expected) from error
    return value


def _check_pattern(pattern: str, group: str) -> str:
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"a valid regular expression ({error})") from error
    if group not in compiled.groupindex:
        raise ValueError(f"a regular expression with a named group (?P<{group}>...)")
    return pattern


class DiscoverConfig(StrictModel):
    """Which files found under the inputs are recordings; the rest get an `ignored` row."""

    audio_extensions: list[str] = Field(
        default=["wav", "flac", "ogg", "mp3", "aif", "aiff"],
        min_length=1,
        description="file extensions read as audio (case-insensitive, without the dot)",
    )
    ignore_names: list[str] = Field(
        default=["._*", ".*"],
        description="glob patterns on the file name of side files to skip even with an "
        "audio extension (macOS AppleDouble '._*', hidden files)",
    )

    @field_validator("audio_extensions")
    @classmethod
    def _bare_extensions(cls, values: list[str]) -> list[str]:
        cleaned = [value.lower().lstrip(".") for value in values]
        if any(not value.isalnum() for value in cleaned):
            raise ValueError(f"extensions such as 'wav' or 'flac', got {values}")
        return cleaned


class SiteRule(StrictModel):
    """A regular expression searched in the file's path; its group `site` is the site."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _has_site_group(cls, value: str) -> str:
        return _check_pattern(value, "site")


class TimeRule(StrictModel):
    """A regular expression searched in the file's path; its group `time` is the start time.

    The group is parsed with `format` (strptime) in `timezone` and stored in UTC; the
    rule's `name` is recorded as the recording's `time_source`.
    """

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    pattern: str
    format: str = "%Y%m%d_%H%M%S"
    timezone: str = Field(
        default=LOCAL_ZONE,
        description="IANA zone of the times in the names, or 'local' for metadata.timezone",
    )

    @field_validator("pattern")
    @classmethod
    def _has_time_group(cls, value: str) -> str:
        return _check_pattern(value, "time")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return value if value == LOCAL_ZONE else _check_zone(value)


def _default_site_rules() -> list[SiteRule]:
    return [
        # Song Meter: SITE_YYYYMMDD_HHMMSS[...].ext
        SiteRule(
            name="songmeter_prefix", pattern=r"(?:^|/)(?P<site>[A-Za-z0-9][^/]*?)_\d{8}_\d{6}[^/]*$"
        ),
        # The folder holding the file, looking past a year folder: SITE/2024/file.
        SiteRule(name="folder", pattern=r"(?P<site>[A-Za-z0-9][^/]*)/(?:\d{4}/)?[^/]+$"),
    ]


def _default_time_rules() -> list[TimeRule]:
    return [
        # AudioMoth names files YYYYMMDD_HHMMSS.WAV by their start in UTC (its default).
        TimeRule(
            name="audiomoth", pattern=r"(?:^|/)(?P<time>\d{8}_\d{6})\.[^./]+$", timezone="UTC"
        ),
        # Song Meters name files SITE_YYYYMMDD_HHMMSS.wav in the recorder's local time.
        TimeRule(name="songmeter", pattern=r"_(?P<time>\d{8}_\d{6})(?:_[^/]*)?\.[^./]+$"),
    ]


class MetadataConfig(StrictModel):
    """How site and start time are read from file paths (first matching rule wins)."""

    timezone: str = Field(
        default="America/Cayenne",
        description="the recorders' local time zone (IANA), used by rules with timezone 'local'",
    )
    site_rules: list[SiteRule] = Field(default_factory=_default_site_rules)
    time_rules: list[TimeRule] = Field(default_factory=_default_time_rules)
    unknown_site: str = Field(default="unknown", pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return _check_zone(value)


class ChannelsConfig(StrictModel):
    """Which streams a multi-channel recording gives."""

    policy: Literal["mix", "pick", "each"] = Field(
        default="mix",
        description="mix: one stream, the mean of the channels; pick: one stream, channel "
        "`pick`; each: one stream per channel",
    )
    pick: int = Field(default=0, ge=0, description="the channel used by policy 'pick' (from 0)")


class ResampleConfig(StrictModel):
    """The output sample rate and soxr's quality preset."""

    sample_rate: int = Field(default=24000, ge=1000, le=384000)
    quality: Literal["QQ", "LQ", "MQ", "HQ", "VHQ"] = Field(
        default="HQ", description="soxr preset; HQ is 20-bit, more than the 16-bit FLAC needs"
    )


class SegmentConfig(StrictModel):
    """Fixed windows cut from each stream."""

    length_s: float = Field(default=10.0, gt=0, le=600)
    hop_s: float | None = Field(
        default=None, gt=0, description="start-to-start step (None: length_s, no overlap)"
    )
    tail: Literal["keep", "pad", "drop"] = Field(
        default="keep",
        description="the last, shorter window: keep it short, pad it with zeros, or drop it",
    )
    min_tail_s: float = Field(default=1.0, ge=0, description="a shorter tail is dropped")

    @model_validator(mode="after")
    def _hop_within_length(self) -> "SegmentConfig":
        if self.hop_s is not None and self.hop_s > self.length_s:
            raise ValueError(
                f"hop_s ({self.hop_s}) must not exceed length_s ({self.length_s}): "
                "windows would leave gaps"
            )
        return self

    @property
    def step_s(self) -> float:
        """The hop in seconds, `length_s` when no hop is set."""
        return self.length_s if self.hop_s is None else self.hop_s


class QualityConfig(StrictModel):
    """How the quality figures are measured, and which segments are dropped."""

    clip_level: float = Field(
        default=0.999, gt=0, le=1, description="|sample| at or above this counts as clipped"
    )
    silence_min_run_s: float = Field(
        default=0.1, gt=0, description="exact zeros lasting this long are digital silence"
    )
    drop_nonfinite: bool = Field(default=True, description="drop segments that held NaN/Inf")
    drop_silent: bool = Field(default=True, description="drop segments with digital silence")
    max_clipped_fraction: float | None = Field(
        default=0.01, ge=0, le=1, description="drop segments with more clipped samples (None: keep)"
    )
    min_rms_dbfs: float | None = Field(
        default=None, le=0, description="drop segments quieter than this (None: keep)"
    )


class ShardsConfig(StrictModel):
    """How segments are stored in the shards."""

    flac_subtype: Literal["PCM_16", "PCM_24"] = "PCM_16"


class JobConfig(StrictModel):
    """How the work is cut into Dask tasks and read; these do not change the output."""

    block_s: float = Field(
        default=4.0, gt=0, le=600, description="seconds of audio read at a time (worker memory)"
    )
    max_task_s: float = Field(
        default=3600.0,
        gt=0,
        description="longer recordings are split into tasks of at most this much audio",
    )
    retries: int = Field(default=2, ge=0, description="Dask retries of a failed task")
    scan_threads: int = Field(
        default=8, ge=1, le=64, description="threads reading headers and fingerprints"
    )


class IngestConfig(StrictModel):
    """Everything `sonotype ingest` needs besides its inputs and output folder."""

    discover: DiscoverConfig = DiscoverConfig()
    metadata: MetadataConfig = MetadataConfig()
    channels: ChannelsConfig = ChannelsConfig()
    resample: ResampleConfig = ResampleConfig()
    segment: SegmentConfig = SegmentConfig()
    quality: QualityConfig = QualityConfig()
    shards: ShardsConfig = ShardsConfig()
    job: JobConfig = JobConfig()

    def output_shaping(self) -> dict[str, Any]:
        """The settings that change recording ids, task boundaries or shard contents.

        Returns:
            Dotted setting name → value, for comparing with an existing output.
        """
        shaping: dict[str, Any] = {}
        for section in ("metadata", "channels", "resample", "segment", "quality", "shards"):
            for key, value in getattr(self, section).model_dump(mode="json").items():
                shaping[f"{section}.{key}"] = value
        # Task boundaries name the shards (`-pNNN`) and the work of unfinished recordings.
        shaping["job.max_task_s"] = self.job.max_task_s
        return shaping

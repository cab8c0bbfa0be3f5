"""Config of `sonotype encode`: tokens and embeddings of every kept segment → Zarr."""

from typing import Any, Literal

from pydantic import Field

from sonotype.config.base import StrictModel
from sonotype.config.reader import GainConfig, SegmentFilterConfig

SHAPING_FIELDS = ("filters", "gain", "float16_overflow", "context", "warmup_s")
"""Fields that decide what a feature store holds: a re-run into an existing store must
keep them (or start the store afresh with --force). The others change speed and memory,
and floating-point rounding at most."""


def _every_kept_segment() -> SegmentFilterConfig:
    # Encode describes every kept segment; the reader's extra quality exclusions are for
    # choosing training data, and ingest has already dropped silent and non-finite ones.
    return SegmentFilterConfig(exclude_silent=False, exclude_nonfinite=False)


class EncodeConfig(StrictModel):
    """How segments are read, batched and encoded, and how the work is spread.

    Memory: a shard's features are `n_frames × dim × 2` bytes of float16 (about 40 kB
    per second of audio at 512-d and 40 frames/s; 147 MB for an ingest shard of one
    hour). A worker holds the shard it encodes plus one batch of decoded audio (with
    context "recording" a batch is a run of consecutive segments, at most one shard's
    audio: 345 MB of float32 for an hour at 24 kHz, times 1 + `read_ahead` in process)
    and the model's activations for one chunk of it; finished shards wait on the
    workers until the client appends them in order, at most
    `shards_in_flight_per_worker × workers` shards in the cluster; the client holds the
    one it appends.
    """

    batch_size: int = Field(
        default=1,
        ge=1,
        description=(
            "segments per model call; only segments of equal length share a call, so padding "
            "never reaches the encoder. 1 is fastest on a CPU core (activations stay in cache); "
            "raise it (e.g. 32) with --device cuda"
        ),
    )
    chunk_frames: int = Field(
        default=400,
        ge=1,
        description=(
            "frames per encoder pass; a longer run of segments is encoded in exact chunks "
            "(bounds activation memory; 10 s at 40 frames/s, about one segment: on a CPU "
            "core a 2 min run in 1000-frame chunks took 1.5-1.9x the time of 400-frame ones)"
        ),
    )
    filters: SegmentFilterConfig = Field(
        default_factory=_every_kept_segment,
        description="which kept segments to encode (default: all of them)",
    )
    gain: GainConfig = Field(
        default_factory=GainConfig,
        description=(
            "level each segment (each run of a recording, with context: recording) is brought "
            "to before encoding, as the reader's deterministic "
            "passes do (the midpoint of min_dbfs and max_dbfs); keep it equal to the training "
            "data's gain so the encoder sees levels it was trained on; mode: none keeps levels"
        ),
    )
    context: Literal["recording", "segment"] = Field(
        default="recording",
        description=(
            "recording: consecutive segments of one recording in a shard are encoded as one "
            "continuous signal (one gain for the run), so a frame does not depend on where "
            "ingest cut the recording; segment: every segment alone, its edges reflected"
        ),
    )
    warmup_s: float = Field(
        default=1.0,
        ge=0.0,
        description=(
            "seconds of a run's start, mirrored, that the encoder sees before the run and "
            "whose frames are dropped: the LSTM starts warm, so a recording's first frames "
            "are not a start-up transient (which otherwise forms a sonotype of its own)"
        ),
    )
    float16_overflow: Literal["clip", "skip", "error"] = Field(
        default="clip",
        description=(
            "embeddings beyond ±65504 do not fit float16: clip them (counted), skip the "
            "segment (counted as float16_overflow), or stop with an error"
        ),
    )
    read_ahead: int = Field(
        default=2,
        ge=0,
        description=(
            "batches read and decoded ahead by a background thread when one model encodes in "
            "this process (--device cuda, --workers 0), so the device does not wait for FLAC "
            "decoding; 0: none. Dask workers read in their own thread (one core each)"
        ),
    )
    shards_in_flight_per_worker: int = Field(
        default=2,
        ge=1,
        description=(
            "shards submitted ahead per Dask worker; bounds the finished shards waiting to be "
            "appended in order (client memory)"
        ),
    )

    def output_shaping(self) -> dict[str, Any]:
        """The settings of SHAPING_FIELDS as plain data, keyed by dotted name."""
        dumped = self.model_dump(mode="json", include=set(SHAPING_FIELDS))
        return dict(_flatten(dumped))


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items.extend(_flatten(value, name + "."))
        else:
            items.append((name, value))
    return items

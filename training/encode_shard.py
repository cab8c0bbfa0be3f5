"""Encode one shard: read its selected segments in tar order, batch, encode, collect features.

This is the unit of work of `sonotype encode`, run by a Dask worker or in the client
process; it knows nothing of Dask or of the store. A shard's features come back whole so
that the client appends them in one commit: a shard is either entirely in the store or
not at all, which is what makes a killed run resumable.

Reading reuses the reader's stages (`shards.stream`): the same tar parsing, segment
filter and header checks as the reader's deterministic passes. Consecutive segments of
one recording are encoded as one continuous signal (context "recording"), so that a
frame does not depend on where ingest cut the recording: the convolutions see the real
neighbouring samples instead of reflected ones, and the LSTM carries its state across
the cut. Such a run gets one gain (the reader's normalisation, computed on the run).
Bad samples (broken FLAC, bad JSON, wrong rate) are skipped and counted by reason; a
shard that cannot be opened or whose tar breaks off is a failure: nothing of it is
returned, the client leaves it out of the store, and the next run tries it again.
"""

import logging
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

import numpy as np
import pyarrow as pa
import torch

from shards.crops import normalising_gain_db
from shards.plan import ShardRange
from shards.select import SegmentFilter, parse_time
from shards.skips import SkipCounter
from shards.stream import Crop, StreamSettings, decode, make_specs, numbered, read_range
from sonotype.contracts import FEATURE_SEGMENT_FILLED_COLUMNS, FEATURE_SEGMENTS_SCHEMA
from sonotype.contracts import SegmentColumn as Col
from sonotype.errors import SonotypeError
from training.encode_batches import equal_length_groups, n_frames, windows
from training.read_ahead import read_ahead
from training.tokenizer import Tokenizer

logger = logging.getLogger(__name__)
T = TypeVar("T")

FLOAT16_MAX = float(np.finfo(np.float16).max)
"""65504: larger magnitudes become inf in float16."""
SHARD_FAILURES = ("shard", "tar")
"""Skip reasons that make the whole shard a failure (cannot open it, tar broken off)."""
ROW_COLUMNS = [
    name for name in FEATURE_SEGMENTS_SCHEMA.names if name not in FEATURE_SEGMENT_FILLED_COLUMNS
]
"""Columns of the rows a shard gives; the store fills in the others."""
ROW_SCHEMA = pa.schema([FEATURE_SEGMENTS_SCHEMA.field(name) for name in ROW_COLUMNS])


@dataclass(frozen=True)
class ShardSettings:
    """Scalars the per-shard work needs (unpacked from `EncodeConfig`).

    Attributes:
        stream: reading settings (whole segments, deterministic gain).
        segment_filter: which segments are encoded.
        batch_size: most runs per model call (equal lengths only).
        float16_overflow: "clip", "skip" or "error".
        context: "recording" (runs of consecutive segments encoded as one signal) or
            "segment" (every segment alone).
        warmup_s: seconds of each run's start, mirrored, encoded before it and dropped.
    """

    stream: StreamSettings
    segment_filter: SegmentFilter
    batch_size: int
    float16_overflow: Literal["clip", "skip", "error"]
    context: Literal["recording", "segment"] = "recording"
    warmup_s: float = 0.0


@dataclass
class ShardFeatures:
    """Features of one shard's segments, in tar order, ready for one `FeatureStore.append`.

    Attributes:
        shard: the shard's name relative to `shards/`.
        tokens: int16 `[m]`.
        embeddings: float16 `[m, dim]`.
        pooled: float32 `[s, dim]`: each segment's mean embedding (from float32 values).
        segments: `s` rows with ROW_COLUMNS.
        skipped: segments left out, by reason (shard.skips reasons, plus `metadata`,
            `nonfinite_embeddings`, `float16_overflow`).
        failure: why the shard could not be read (then nothing else is filled in).
        n_clipped: segments whose embeddings were clipped to the float16 range.
        n_samples: audio samples encoded.
        model_s: seconds spent in model calls (transfers to and from the device included).
        model_cpu_s: CPU seconds of the calling thread in model calls (all of the model's
            CPU work when torch runs one thread, as on the Dask workers).
        total_s: seconds the whole shard took.
    """

    shard: str
    tokens: np.ndarray
    embeddings: np.ndarray
    pooled: np.ndarray
    segments: pa.Table
    loudness: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float16))
    skipped: dict[str, int] = field(default_factory=dict)
    failure: str | None = None
    n_clipped: int = 0
    n_samples: int = 0
    model_s: float = 0.0
    model_cpu_s: float = 0.0
    total_s: float = 0.0

    @property
    def n_segments(self) -> int:
        return self.segments.num_rows

    @property
    def n_frames(self) -> int:
        return len(self.tokens)


class _Skips(SkipCounter):
    """A SkipCounter that keeps the first message of each reason (a failure's cause)."""

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[str, str] = {}

    def record(self, reason: str, message: str) -> None:
        self.first.setdefault(reason, message)
        super().record(reason, message)


class _Collector:
    """Per-segment results accumulated in stream order (float16 as they arrive)."""

    def __init__(self, shard: str, dim: int, overflow: str, skips: _Skips) -> None:
        self.shard, self.dim, self.overflow, self.skips = shard, dim, overflow, skips
        self.tokens: list[np.ndarray] = []
        self.embeddings: list[np.ndarray] = []
        self.pooled: list[np.ndarray] = []
        self.loudness: list[np.ndarray] = []
        self.rows: dict[str, list[Any]] = {name: [] for name in ROW_COLUMNS}
        self.n_clipped = 0
        self.n_samples = 0

    def add(
        self,
        row: dict[str, Any],
        n_samples: int,
        codes: np.ndarray,
        latents: np.ndarray,
        loudness: np.ndarray,
    ):
        """Keep one segment: codes int64 `[F]`, latents float32 `[F, dim]`, loudness `[F]`."""
        key = row[Col.KEY]
        if not np.isfinite(latents).all():
            self.skips.record("nonfinite_embeddings", f"{self.shard}: {key}: NaN/inf embeddings")
            return
        peak = float(np.abs(latents).max())
        stored = latents
        if peak > FLOAT16_MAX:
            message = f"{self.shard}: {key}: embeddings reach {peak:.4g}, beyond float16's ±65504"
            if self.overflow == "error":
                raise SonotypeError(message + " (float16_overflow: error)")
            if self.overflow == "skip":
                self.skips.record("float16_overflow", message)
                return
            logger.debug("%s; clipped (float16_overflow: clip)", message)
            stored = np.clip(latents, -FLOAT16_MAX, FLOAT16_MAX)
            self.n_clipped += 1
        self.tokens.append(codes.astype(np.int16))
        self.embeddings.append(stored.astype(np.float16))
        self.pooled.append(latents.mean(axis=0, dtype=np.float32))
        self.loudness.append(loudness.astype(np.float16))
        for name in ROW_COLUMNS:
            self.rows[name].append(row[name] if name != "n_frames" else len(codes))
        self.n_samples += n_samples

    def features(self) -> ShardFeatures:
        return ShardFeatures(
            shard=self.shard,
            tokens=np.concatenate(self.tokens) if self.tokens else np.zeros(0, np.int16),
            embeddings=(
                np.concatenate(self.embeddings)
                if self.embeddings
                else np.zeros((0, self.dim), np.float16)
            ),
            pooled=np.stack(self.pooled) if self.pooled else np.zeros((0, self.dim), np.float32),
            segments=pa.table(self.rows, schema=ROW_SCHEMA),
            loudness=(np.concatenate(self.loudness) if self.loudness else np.zeros(0, np.float16)),
            n_clipped=self.n_clipped,
            n_samples=self.n_samples,
        )


SILENCE_DBFS = -120.0
"""Loudness given to frames of digital silence (log of zero), well below any recorder's floor."""


def frame_loudness(crop: Crop, hop_length: int, n_frames: int) -> np.ndarray:
    """RMS level (dBFS) of the recorded audio over each frame's hop, before gain.

    Frame i covers samples `[i * hop, (i + 1) * hop)` of the segment (the last one what
    is left); the crop's gain normalisation is undone, so loud and quiet sounds keep
    their difference whatever gain the encoder saw.
    """
    samples = crop.wav[: crop.length].astype(np.float64)
    padded = np.zeros(n_frames * hop_length)
    padded[: len(samples)] = samples
    counts = np.clip(len(samples) - hop_length * np.arange(n_frames), 1, hop_length)
    power = np.square(padded).reshape(n_frames, hop_length).sum(axis=1) / counts
    with np.errstate(divide="ignore"):
        level = 10.0 * np.log10(power) - crop.gain_db
    return np.maximum(level, SILENCE_DBFS).astype(np.float32)


def segment_row(crop: Crop, shard: str, sample_rate: int) -> dict[str, Any]:
    """The store's row of a decoded segment, from its JSON metadata and its real length.

    `duration_s` is the decoded length (what the frames cover), not the JSON's value.

    Raises:
        ValueError: the metadata lacks a recording id or has an unreadable start time.
    """
    metadata = crop.metadata
    recording_id = metadata.get(Col.RECORDING_ID)
    if not isinstance(recording_id, str) or not recording_id:
        raise ValueError(f"recording_id {recording_id!r} is not a non-empty string")
    offset = metadata.get(Col.OFFSET_S)
    site = metadata.get(Col.SITE)
    return {
        Col.KEY: crop.key,
        Col.RECORDING_ID: recording_id,
        Col.SITE: site if isinstance(site, str) else None,
        Col.START_TIME: parse_time(metadata.get(Col.START_TIME)),
        Col.OFFSET_S: float(offset) if isinstance(offset, int | float) else None,
        Col.DURATION_S: crop.length / sample_rate,
        Col.SHARD: shard,
    }


def encode_shard(
    tokenizer: Tokenizer,
    url: str,
    shard: str,
    settings: ShardSettings,
    on_segments: Callable[[int], None] | None = None,
    read_ahead_windows: int = 0,
) -> ShardFeatures:
    """Tokens, embeddings and rows of every selected segment of one shard.

    Args:
        tokenizer: the model, on the device to use (eval mode).
        url: the shard's path or URL.
        shard: its name relative to `shards/` (recorded in the rows and the store).
        settings: reading, batching and float16 settings.
        on_segments: called with the number of segments handled after each window
            (progress).
        read_ahead_windows: windows read and decoded ahead by a background thread while
            the model runs (0: read in this thread, between model calls).

    Returns:
        The shard's features in tar order, or a failure with nothing else filled in.

    Raises:
        SonotypeError: embeddings overflow float16 with `float16_overflow: error`.
    """
    started = time.perf_counter()
    skips = _Skips()
    collector = _Collector(shard, tokenizer.embedding_dim, settings.float16_overflow, skips)
    model_s = model_cpu_s = 0.0
    hop = tokenizer.hop_length
    runs = _read_windows(url, shard, settings, skips, hop)
    warmup = round(settings.warmup_s * settings.stream.sample_rate / hop) * hop
    for window in read_ahead(runs, read_ahead_windows):
        waves, skips_frames = [], []
        for run in window.runs:
            wave, warmup_frames = with_warmup(run_wave(run, settings.stream), warmup, hop)
            waves.append(wave)
            skips_frames.append(warmup_frames)
        results, seconds, cpu_seconds = encode_window(tokenizer, waves, settings.batch_size)
        model_s += seconds
        model_cpu_s += cpu_seconds
        for run, skip, (run_codes, run_latents) in zip(
            window.runs, skips_frames, results, strict=True
        ):
            first = skip
            for crop, row in run:
                stop = first + n_frames(crop.length, hop)
                loudness = frame_loudness(crop, hop, stop - first)
                collector.add(
                    row, crop.length, run_codes[first:stop], run_latents[first:stop], loudness
                )
                first = stop
        if on_segments is not None:
            on_segments(window.n_read)
    failures = [skips.first[reason] for reason in SHARD_FAILURES if reason in skips.first]
    if failures:
        message = "; ".join(failures)
        logger.warning("%s: not encoded, left for the next run (%s)", shard, message)
        result = _Collector(shard, tokenizer.embedding_dim, "error", _Skips()).features()
        result.failure = message
    else:
        result = collector.features()
        result.skipped = dict(skips.counts)
        if result.n_clipped:
            logger.warning(
                "%s: embeddings of %d segments clipped to float16's ±65504 (float16_overflow)",
                shard,
                result.n_clipped,
            )
    result.model_s, result.model_cpu_s = model_s, model_cpu_s
    result.total_s = time.perf_counter() - started
    return result


Run = list[tuple[Crop, dict[str, Any]]]
"""Consecutive segments encoded as one signal: decoded at their recorded level, with rows."""


@dataclass(frozen=True)
class _Window:
    """Up to `batch_size` runs, decoded, with their rows."""

    runs: list[Run]
    n_read: int
    """Segments read, those left out for bad metadata included (progress counts them)."""


def _read_windows(
    url: str, shard: str, settings: ShardSettings, skips: _Skips, hop_length: int
) -> Iterator[_Window]:
    """The shard's selected segments, decoded at their recorded level, as runs in windows.

    With context "recording", a run is a stretch of consecutive segments of one recording
    (see `_continues`); with "segment", every segment is a run of its own. The gain is
    applied per run by `run_wave`, so the decoding here keeps the recorded samples.
    """
    raw = replace(settings.stream, gain_mode="none")
    # The whole shard: `stop` past any real count, so read_range never stops early.
    samples = read_range(ShardRange(url, 0, sys.maxsize), settings.segment_filter, skips)
    # Deterministic settings draw nothing from the generator; it is there for the signature.
    specs = make_specs(samples, raw, random.Random(0), skips)
    counter = _Counter()
    crops = counter.count(decode(numbered(specs), raw, skips))
    rows = _with_rows(crops, shard, raw.sample_rate, skips)
    runs = _runs(rows, settings.context, hop_length, raw.sample_rate)
    for window in windows(runs, settings.batch_size):
        yield _Window(window, counter.take())


class _Counter:
    """Counts the items of an iterator as they pass (segments read, for progress)."""

    def __init__(self) -> None:
        self.n = 0

    def count(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            self.n += 1
            yield item

    def take(self) -> int:
        n, self.n = self.n, 0
        return n


def _with_rows(
    crops: Iterable[Crop], shard: str, sample_rate: int, skips: _Skips
) -> Iterator[tuple[Crop, dict[str, Any]]]:
    for crop in crops:
        try:
            yield crop, segment_row(crop, shard, sample_rate)
        except ValueError as error:
            skips.record("metadata", f"{shard}: {crop.key}: {error}")


def _runs(
    items: Iterable[tuple[Crop, dict[str, Any]]], context: str, hop: int, sample_rate: int
) -> Iterator[Run]:
    """Group segments into runs encoded as one signal (see `_read_windows`)."""
    run: Run = []
    for item in items:
        if run and (context == "segment" or not _continues(run[-1], item, hop, sample_rate)):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def _continues(
    previous: tuple[Crop, dict[str, Any]], item: tuple[Crop, dict[str, Any]], hop: int, rate: int
) -> bool:
    """Whether `item` goes on where `previous` ends, on the frame grid, in one recording.

    The previous segment must fill whole frames (else the next one's frames would not
    start on the continuous signal's frame grid), and the next must start at the sample
    where it ends (not after a gap left by a dropped segment, nor overlapping it).
    """
    (crop, row), (_, next_row) = previous, item
    offset, next_offset = row[Col.OFFSET_S], next_row[Col.OFFSET_S]
    return (
        next_row[Col.RECORDING_ID] == row[Col.RECORDING_ID]
        and crop.length % hop == 0
        and offset is not None
        and next_offset is not None
        and abs(next_offset - (offset + crop.length / rate)) < 0.5 / rate
    )


def with_warmup(wave: np.ndarray, warmup: int, hop: int) -> tuple[np.ndarray, int]:
    """`wave` after its first samples mirrored, and the number of frames they make.

    The encoder's LSTM starts from a zero state: its first frames are a start-up
    transient, the same at every recording start, which k-means finds as a sonotype of
    its own. Mirrored audio of the run's own start warms it up (as reflection padding
    does for a convolution); the warm-up's frames are dropped.

    Args:
        wave: float32 `[T]`.
        warmup: samples wanted, a multiple of `hop` (fewer for a short wave).
        hop: samples per frame.
    """
    n = min(warmup, (len(wave) - 1) // hop * hop)
    if n <= 0:
        return wave, 0
    return np.concatenate([wave[n:0:-1], wave]), n // hop


def run_wave(run: Run, stream: StreamSettings) -> np.ndarray:
    """A run's segments as one float32 signal, brought to the encoding level by one gain.

    The gain is the one `shards.crops.normalise_gain` would give the whole run; for a
    run of one segment that is the segment's own gain, as the reader's passes give it.
    """
    recorded = np.concatenate([crop.wav[: crop.length] for crop, _ in run])
    gain_db = normalising_gain_db(
        recorded, stream.gain_mode, stream.deterministic_dbfs, stream.max_gain_db
    )
    if gain_db == 0.0:
        return recorded
    return recorded * np.float32(10.0 ** (gain_db / 20.0))


def encode_window(
    tokenizer: Tokenizer, waves: list[np.ndarray], batch_size: int
) -> tuple[list[tuple[np.ndarray, np.ndarray]], float, float]:
    """Encode segments in model calls of equal-length groups; results in input order.

    Args:
        tokenizer: the model.
        waves: float32 `[T_i]` segments.
        batch_size: most segments per call.

    Returns:
        (per segment: codes int64 `[F_i]` and embeddings float32 `[F_i, dim]`; seconds and
        this thread's CPU seconds spent in model calls), F_i = ceil(T_i / hop).
    """
    results: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    seconds = cpu_seconds = 0.0
    for group in equal_length_groups([len(wave) for wave in waves], batch_size):
        batch = torch.from_numpy(np.stack([waves[i] for i in group]))  # [B, T]
        tick, cpu_tick = time.perf_counter(), time.thread_time()
        codes, latents = tokenizer.encode_with_embeddings(batch)  # [B, F], [B, F, D]
        codes_np, latents_np = codes.cpu().numpy(), latents.float().cpu().numpy()
        seconds += time.perf_counter() - tick
        cpu_seconds += time.thread_time() - cpu_tick
        expected = n_frames(batch.shape[-1], tokenizer.hop_length)
        if codes_np.shape[-1] != expected:  # a broken tokenizer contract, not bad input
            raise RuntimeError(
                f"tokenizer gave {codes_np.shape[-1]} frames for {batch.shape[-1]} samples, "
                f"expected ceil(T / hop) = {expected}"
            )
        for row, position in enumerate(group):
            results[position] = (codes_np[row], latents_np[row])
    return [results[position] for position in range(len(waves))], seconds, cpu_seconds

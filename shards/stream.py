"""The reading stages of one (rank, worker) slot, as a webdataset pipeline.

    per pass: shard ranges ─ tar members (webdataset) ─ selected samples ─ crop specs
              ─ shuffle buffer (webdataset, explicit rng)
    then: numbered ─ [fast-forward] ─ decoded crops ─ batches ─ [quota]

Each stage is a generator over the previous one (webdataset style); every random
choice comes from a `random.Random` seeded from (seed, epoch, rank, worker), never from
time or pid. Random choices are all made before or in the shuffle buffer, and decoding
after it, so a resumed slot fast-forwards by drawing specs without decoding them.

Bad data never stops the stream: unreadable shards, broken tar members, bad JSON,
undecodable FLAC are skipped and counted by reason in a `SkipCounter`, and logged,
without webdataset's `warn_and_continue`, which sleeps half a second per error.
"""

import functools
import itertools
import json
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import webdataset as wds
from webdataset.tariterators import group_by_keys, tar_file_expander

from shards.crops import CropSpec, cut, fixed_offsets, random_offsets
from shards.plan import ShardRange, SlotPlan, derive_seed
from shards.select import SegmentFilter
from shards.skips import SkipCounter
from sonotype import audio
from sonotype.contracts import AUDIO_EXTENSION, METADATA_EXTENSION, is_valid_key
from sonotype.contracts import SegmentColumn as Col
from sonotype.errors import AudioDecodeError, ShardFormatError
from sonotype.fsio import url_to_fs


@dataclass(frozen=True)
class Sample:
    """A selected shard sample, not yet decoded."""

    key: str
    data: bytes
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Crop:
    """A decoded crop on its way to a batch.

    Attributes:
        wav: float32 `[T]`, normalised and zero-padded.
        key: the segment key.
        offset: first sample of the crop within the segment.
        length: real (unpadded) samples.
        metadata: the segment's row.
        cursor: specs drawn from the shuffle buffer up to and including this one.
        gain_db: the gain normalisation applied to the recorded samples, dB.
    """

    wav: np.ndarray
    key: str
    offset: int
    length: int
    metadata: dict[str, Any]
    cursor: int
    gain_db: float = 0.0


@dataclass(frozen=True)
class StreamSettings:
    """Scalars the stages need (unpacked from `ReaderConfig` by the reader).

    Attributes:
        crop: crop length in samples; None reads whole segments.
        crops_per_segment: crops taken from each segment.
        pad_short: zero-pad segments shorter than a crop (else skip them).
        sample_rate: the rate every sample must have, Hz.
        randomise: random crops, random gains, shuffling (training); else deterministic.
        shuffle_buffer: specs held for shuffling.
        batch_size: crops per batch.
        gain_mode: "none", "peak" or "rms".
        min_dbfs: lowest target level, dBFS.
        max_dbfs: highest target level, dBFS.
        max_gain_db: largest amplification, dB.
    """

    crop: int | None
    crops_per_segment: int
    pad_short: bool
    sample_rate: int
    randomise: bool
    shuffle_buffer: int
    batch_size: int
    gain_mode: str
    min_dbfs: float
    max_dbfs: float
    max_gain_db: float

    @property
    def deterministic_dbfs(self) -> float:
        """The level deterministic passes (validation, encoding) bring audio to."""
        return (self.min_dbfs + self.max_dbfs) / 2


def read_range(
    shard: ShardRange, segment_filter: SegmentFilter, skips: SkipCounter
) -> Iterator[Sample]:
    """The selected samples `[start, stop)` of one shard, read in memory through webdataset.

    Samples before `start` are read from the tar but not decoded; reading stops at `stop`.
    Several slots may read one shard; a bad sample is counted only by the slot whose
    range holds the position it was met at, so each is counted once per epoch.
    """
    fs, path = url_to_fs(shard.url)
    try:
        stream = fs.open(path, "rb")
    except OSError as error:
        if shard.start == 0:  # every range of this shard fails here; the first one counts
            skips.record("shard", f"{shard.url}: cannot open ({error})")
        return
    position = 0

    def counted() -> bool:
        return shard.start <= position < shard.stop

    broken_tar = skips.handler("tar", shard.url, counted, once=True)
    bad_member = skips.handler("member", shard.url, counted)
    with stream:
        members = tar_file_expander([{"url": shard.url, "stream": stream}], handler=broken_tar)
        for raw in group_by_keys(members, handler=bad_member):
            sample, problem = _parse(raw, shard.url)
            if problem is not None:
                if counted():
                    skips.record(*problem)
                continue
            if not segment_filter.passes(sample.metadata):
                continue
            if position >= shard.stop:
                return
            if position >= shard.start:
                yield sample
            position += 1


def _parse(raw: dict[str, Any], url: str) -> tuple[Sample | None, tuple[str, str] | None]:
    """A sample from webdataset's grouped members, or (None, (reason, message))."""
    key = raw["__key__"]
    if not is_valid_key(key):
        return None, ("key", f"{url}: invalid sample key {key!r}")
    data, text = raw.get(AUDIO_EXTENSION), raw.get(METADATA_EXTENSION)
    if data is None or text is None:
        found = sorted(k for k in raw if not k.startswith("__"))
        return None, ("incomplete", f"{url}: {key}: needs .flac and .json, found {found}")
    try:
        metadata = json.loads(text)
    except ValueError as error:
        return None, ("json", f"{url}: {key}: metadata is not JSON ({error})")
    if not isinstance(metadata, dict) or metadata.get(Col.KEY) != key:
        return None, ("json", f"{url}: {key}: metadata is not this segment's row")
    return Sample(key, data, metadata), None


def spec_passes(
    first: Sequence[ShardRange],
    wrap: Sequence[ShardRange],
    *,
    repeat: bool,
    seed: int,
    settings: StreamSettings,
    segment_filter: SegmentFilter,
    skips: SkipCounter,
) -> Iterator[CropSpec]:
    """Crop specs of `first`, then (if `repeat`) of `wrap` again and again, each pass shuffled.

    The shuffle buffer drains at the end of each pass, so a slot whose quota fits its
    piece delivers every crop of the piece before any crop of a repeated pass.

    Raises:
        ShardFormatError: a repeated pass found no readable sample (it would loop forever).
    """
    spec_rng = random.Random(derive_seed(seed, "crops"))
    shuffle_rng = random.Random(derive_seed(seed, "shuffle"))
    for n_pass in itertools.count():
        if n_pass == 0:
            ranges = list(first)
        else:
            ranges = list(wrap)
            random.Random(derive_seed(seed, "pass", n_pass)).shuffle(ranges)
        samples = (s for r in ranges for s in read_range(r, segment_filter, skips))
        specs: Iterable[CropSpec] = make_specs(samples, settings, spec_rng, skips)
        if settings.randomise:
            size = settings.shuffle_buffer
            specs = wds.shuffle(size, initial=size, rng=shuffle_rng)(specs)
        found = 0
        for spec in specs:
            found += 1
            yield spec
        if not repeat:
            return
        if found == 0 and n_pass > 0:
            urls = sorted({r.url for r in wrap})
            raise ShardFormatError(
                f"no readable selected sample in {urls}; skipped so far: {dict(skips.counts)}"
            )


def make_specs(
    samples: Iterable[Sample], settings: StreamSettings, rng: random.Random, skips: SkipCounter
) -> Iterator[CropSpec]:
    """Crop specs from samples: header check, crop positions and target levels (no decoding)."""
    for sample in samples:
        try:
            info = audio.probe_bytes(sample.data, name=sample.key)
        except AudioDecodeError as error:
            skips.record("audio", str(error))
            continue
        if info.sample_rate != settings.sample_rate:
            skips.record(
                "sample_rate",
                f"{sample.key}: {info.sample_rate} Hz, expected {settings.sample_rate} Hz",
            )
            continue
        if info.channels != 1:
            skips.record("channels", f"{sample.key}: {info.channels} channels, expected mono")
            continue
        if settings.crop is None:
            yield _spec(sample, 0, info.frames, _level(settings, rng))
            continue
        if info.frames < settings.crop and not settings.pad_short:
            skips.record("short", f"{sample.key}: {info.frames} samples < crop {settings.crop}")
            continue
        count = settings.crops_per_segment
        if settings.randomise:
            offsets = random_offsets(info.frames, settings.crop, count, rng)
        else:
            offsets = fixed_offsets(info.frames, settings.crop, count)
        length = min(settings.crop, info.frames)
        for offset in offsets:
            yield _spec(sample, offset, length, _level(settings, rng))


def _spec(sample: Sample, offset: int, length: int, level: float) -> CropSpec:
    return CropSpec(sample.key, sample.data, sample.metadata, offset, length, level)


def _level(settings: StreamSettings, rng: random.Random) -> float:
    if settings.randomise:
        return rng.uniform(settings.min_dbfs, settings.max_dbfs)
    return settings.deterministic_dbfs


def numbered(specs: Iterable[CropSpec]) -> Iterator[tuple[int, CropSpec]]:
    """Number specs as they leave the shuffle buffer: the cursor a position records."""
    yield from enumerate(specs, start=1)


def fast_forward(
    items: Iterable[tuple[int, CropSpec]], n_drawn: int, skips: SkipCounter
) -> Iterator[tuple[int, CropSpec]]:
    """Drop the first `n_drawn` specs undecoded (a resumed slot's already-delivered crops).

    The skips met while reading up to there were counted by the interrupted run, so the
    counter is cleared once the position is reached.
    """
    iterator = iter(items)
    for _ in itertools.islice(iterator, n_drawn):
        pass
    skips.take()
    yield from iterator


def decode(
    items: Iterable[tuple[int, CropSpec]], settings: StreamSettings, skips: SkipCounter
) -> Iterator[Crop]:
    """Decode each spec's samples and normalise their gain."""
    for cursor, spec in items:
        try:
            wav, gain_db = cut(spec, settings.crop, settings.gain_mode, settings.max_gain_db)
        except AudioDecodeError as error:
            skips.record("audio", str(error))
            continue
        yield Crop(wav, spec.key, spec.offset, spec.length, spec.metadata, cursor, gain_db)


def batches(crops: Iterable[Crop], batch_size: int, partial: bool) -> Iterator[list[Crop]]:
    """Group crops into lists of `batch_size`.

    Unlike webdataset's `batched`, a batch is yielded as soon as it is full, before the
    next crop is pulled: the cursor of its last crop is then exactly where the slot
    stands, which is what a saved position must record.
    """
    batch: list[Crop] = []
    for crop in crops:
        batch.append(crop)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch and partial:
        yield batch


def slot_pipeline(
    plan: SlotPlan,
    wrap: Sequence[ShardRange],
    *,
    settings: StreamSettings,
    segment_filter: SegmentFilter,
    seed: int,
    n_drawn: int,
    n_batches: int | None,
    skips: SkipCounter,
) -> wds.DataPipeline:
    """The whole pipeline of one slot.

    Args:
        plan: the slot's piece of the epoch.
        wrap: ranges read again, in seeded orders, once the piece is used up (training).
        settings: crop, gain, shuffle and batch settings.
        segment_filter: which samples are taken.
        seed: the slot's seed, derived from (reader seed, epoch, rank, worker).
        n_drawn: specs to fast-forward over, undecoded (0 for a fresh epoch).
        n_batches: batches to yield (None: until the piece is used up).
        skips: where skipped samples are counted.

    Returns:
        A webdataset pipeline yielding lists of `Crop`s.
    """
    repeat = n_batches is not None
    source = functools.partial(
        spec_passes,
        plan.ranges,
        wrap,
        repeat=repeat,
        seed=seed,
        settings=settings,
        segment_filter=segment_filter,
        skips=skips,
    )
    stages: list[Any] = [
        source,
        wds.pipelinefilter(numbered)(),
        wds.pipelinefilter(fast_forward)(n_drawn, skips),
        wds.pipelinefilter(decode)(settings, skips),
        wds.pipelinefilter(batches)(settings.batch_size, not repeat),
    ]
    if n_batches is not None:
        stages.append(wds.slice(n_batches))
    return wds.DataPipeline(*stages)

"""`encode_features`: tokens and embeddings of every kept segment → the Zarr feature store.

    summary = encode_features(checkpoint="runs/x/export/tokenizer.pt", shards="out")
    summary = encode_features(..., device="cuda")                 # one GPU, no Dask
    summary = encode_features(..., workers=8)                     # local Dask cluster
    summary = encode_features(..., scheduler="tcp://head:8786")   # an existing cluster

Order: shards sorted by name (`ShardIndex.from_catalog`), segments in tar order within
a shard; only the selected segments (kept, then `EncodeConfig.filters`) are encoded.

Resume and increments: the unit of commit is a shard. The client appends each shard's
features in one `FeatureStore.append`, whose last step records the shard in the store's
`shards` attribute together with the new lengths; a run skips the shards recorded there.
A run killed at any point therefore leaves whole shards committed and, past the
committed lengths, rows the next append overwrites: re-run, and the store is the one an
uninterrupted run makes. New shards (a new year) are appended after the old ones; a
re-run with nothing new only reads the catalog and the store's attributes. A store made
with another checkpoint, or other output-shaping settings, is refused (`prepare_store`).

Where the work runs: with `device="cpu"` (and `workers` > 0 or a scheduler), Dask
workers decode and encode whole shards in parallel and the client appends them in order
(`encode_dask`); only the client writes, so no two writers ever share a Zarr chunk and
the commit protocol stays sequential. Otherwise (`device="cuda"`, or `workers=0`) one
model in this process encodes shard after shard.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import torch

from analysis.store import FeatureStore, StoreIdentity, open_store
from analysis.store_integrity import (
    StoreDamage,
    committed_rows,
    discard_chunks,
    find_damage,
    mark_repairing,
    pending_repairs,
)
from shards.index import ShardIndex
from shards.select import SegmentFilter
from shards.stream import StreamSettings
from sonotype.config.encode import EncodeConfig
from sonotype.config.model import ModelConfig
from sonotype.contracts import OutputLayout
from sonotype.dask_cluster import dask_client
from sonotype.errors import SonotypeError
from sonotype.fsio import split
from sonotype.output_lock import output_lock
from sonotype.progress import progress_bar
from training.encode_dask import ShardJob, TokenizerPlugin, encode_on_dask
from training.encode_shard import ShardFeatures, ShardSettings, encode_shard
from training.encode_store import checkpoint_sha256, complete_shards, prepare_store
from training.load import resolve_model_config
from training.tokenizer import Tokenizer, load_tokenizer

logger = logging.getLogger(__name__)


@dataclass
class EncodeSummary:
    """What an encode run did.

    Attributes:
        store: the feature store.
        n_shards: shards with selected segments in the catalog.
        n_shards_before: of those, shards already in the store when the run began.
        n_shards_encoded: shards appended by this run.
        repaired: shards whose damaged rows this run encoded again in place.
        failed: shards that could not be read, with why (left for the next run).
        n_segments: segments appended by this run.
        n_frames: frames appended by this run.
        audio_s: seconds of audio encoded by this run.
        skipped: segments left out by this run, by reason.
        n_clipped: segments whose embeddings were clipped to the float16 range.
        workers: tasks that could run at once: the Dask workers' threads (1 per worker on
            the local cluster), or 1 in the client process.
        wall_s: seconds the run took, start-up included.
        encode_s: seconds from the first shard submitted to the last appended.
        task_s: seconds the shards took where they were encoded, summed.
        model_s: seconds of those spent in model calls, summed.
        model_cpu_s: CPU seconds of the model calls' threads, summed (see ShardFeatures).
        append_s: seconds the client spent appending to the store (Zarr and Parquet writes).
    """

    store: str
    n_shards: int = 0
    n_shards_before: int = 0
    n_shards_encoded: int = 0
    repaired: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    n_segments: int = 0
    n_frames: int = 0
    audio_s: float = 0.0
    skipped: Counter[str] = field(default_factory=Counter)
    n_clipped: int = 0
    workers: int = 1
    wall_s: float = 0.0
    encode_s: float = 0.0
    task_s: float = 0.0
    model_s: float = 0.0
    model_cpu_s: float = 0.0
    append_s: float = 0.0

    @property
    def frames_per_s(self) -> float:
        """Frames appended per second of encoding (start-up excluded)."""
        return self.n_frames / self.encode_s if self.encode_s > 0 else 0.0

    @property
    def outside_model_share(self) -> float:
        """Share of the encoding processes' time not spent in model calls.

        `1 - model_s / (workers × encode_s)`: reading, decoding, batching, float16
        conversion, transfers to the client, Zarr writes and idle workers all count.
        """
        budget = self.workers * self.encode_s
        return 1.0 - self.model_s / budget if budget > 0 else 0.0

    def add(self, result: ShardFeatures, sample_rate: int) -> None:
        """Count an appended shard."""
        self.n_shards_encoded += 1
        self.n_segments += result.n_segments
        self.n_frames += result.n_frames
        self.skipped.update(result.skipped)
        self.n_clipped += result.n_clipped
        self.audio_s += result.n_samples / sample_rate

    def describe(self) -> str:
        """One paragraph for the log."""
        if self.n_shards == self.n_shards_before and not self.failed and not self.repaired:
            return f"{self.store}: all {self.n_shards} shards already encoded; nothing to do"
        text = (
            f"{self.store}: {self.n_shards_encoded} shards encoded "
            f"({self.n_shards_before} already in, {len(self.failed)} failed, of "
            f"{self.n_shards}): {self.n_segments} segments, {self.n_frames} frames, "
            f"{self.audio_s:.1f} s of audio in {self.wall_s:.1f} s "
            f"({self.frames_per_s:.0f} frames/s on {self.workers} process(es), "
            f"{100 * self.outside_model_share:.0f}% of their time outside the model)"
        )
        if self.repaired:
            text += f"; damaged shards encoded again in place: {sorted(self.repaired)}"
        if self.skipped:
            text += f"; segments skipped: {dict(sorted(self.skipped.items()))}"
        if self.n_clipped:
            text += f"; {self.n_clipped} segments clipped to the float16 range"
        if self.failed:
            text += f"; failed shards (tried again next run): {sorted(self.failed)}"
        return text


def encode_features(
    checkpoint: str | Path,
    shards: str | Path,
    store: str | Path | None = None,
    config: EncodeConfig | None = None,
    model_config: str | Path | ModelConfig | None = None,
    device: str = "cpu",
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
    verify: bool = False,
) -> EncodeSummary:
    """Encode every selected segment of the shards under `shards` into the feature store.

    Shards whose committed rows are damaged are encoded again and written back in
    place: those under missing chunks on every run (a listing), and with `verify` also
    those whose rows differ from their checksums (every committed row read).

    Args:
        checkpoint: tokenizer checkpoint, sonotype's or a published `.ckpt` (path or URL).
        shards: the output root written by ingest (`OUT`, with `catalog/` and `shards/`).
        store: the feature store (None: `OUT/features.zarr`).
        config: encode settings (None: the defaults).
        model_config: the YAML (or config) of a published `.ckpt`.
        device: "cpu" runs on Dask workers; another torch device ("cuda", "cuda:1")
            runs one model in this process.
        workers: processes of the local Dask cluster (None: one per core; 0: no Dask,
            encode in this process).
        scheduler: address of a running Dask scheduler instead of a local cluster.
        force: replace a store made with another checkpoint or settings.
        verify: check every committed row against its checksum, and repair what differs.

    Returns:
        What was done; `describe()` gives a line for the log.

    Raises:
        SonotypeError: no catalog or no selected segment, a sample rate other than the
            model's, an unusable device, a device other than the CPU with a scheduler.
        CheckpointMismatchError: an unreadable checkpoint, or a store of another one.
        OutputConflictError: a store made with other output-shaping settings.
        OutputLockedError: another run is writing the same store.
    """
    out = str(shards)
    url = str(store) if store is not None else OutputLayout(out).features
    # The lock sits beside the store: `force` may replace the store's folder.
    parent, name = split(url)
    with output_lock(parent or ".", "encode", name):
        return _encode(
            checkpoint,
            out,
            url,
            config or EncodeConfig(),
            model_config,
            device,
            workers,
            scheduler,
            force,
            verify,
        )


def _encode(
    checkpoint: str | Path,
    out: str,
    url: str,
    config: EncodeConfig,
    model_config: str | Path | ModelConfig | None,
    device: str,
    workers: int | None,
    scheduler: str | None,
    force: bool,
    verify: bool,
) -> EncodeSummary:
    started = time.perf_counter()
    in_process = _runs_in_process(device, workers, scheduler)
    segment_filter = SegmentFilter.from_config(config.filters)
    index = ShardIndex.from_catalog(out, segment_filter)
    resolved = resolve_model_config(model_config) if model_config is not None else None
    digest = checkpoint_sha256(str(checkpoint), resolved)
    jobs = _jobs(index, out)
    done = complete_shards(url, digest, config)
    damage = find_damage(open_store(url), verify) if done is not None else StoreDamage(url)
    if done is not None and not damage.problems and all(job.shard in done for job in jobs):
        # Nothing new: no model loaded, no cluster started.
        summary = EncodeSummary(url, n_shards=len(jobs), n_shards_before=len(jobs))
        summary.wall_s = time.perf_counter() - started
        return summary
    tokenizer = load_tokenizer(checkpoint, resolved, chunk_frames=config.chunk_frames)
    if index.sample_rate != tokenizer.sample_rate:
        raise SonotypeError(
            f"{out}: the shards hold {index.sample_rate} Hz audio and the tokenizer expects "
            f"{tokenizer.sample_rate} Hz; ingest at the model's rate (resample.sample_rate)"
        )
    features = prepare_store(url, _identity(tokenizer, digest), config, force)
    done = set(features.shards)
    repair = _start_repairs(features, damage, jobs)
    todo = [job for job in jobs if job.shard not in done or job.shard in repair]
    before = sum(job.shard in done for job in jobs)
    summary = EncodeSummary(url, n_shards=len(jobs), n_shards_before=before)
    if todo:
        logger.info(
            "encoding %d of %d shards (%d segments) into %s with %s",
            len(todo),
            len(jobs),
            sum(job.n_segments for job in todo),
            url,
            checkpoint,
        )
        settings = _shard_settings(config, tokenizer.sample_rate, segment_filter)
        with progress_bar(sum(job.n_segments for job in todo), "segments", "encode") as bar:
            if in_process:
                tokenizer = tokenizer.to(_device(device))
                tick = time.perf_counter()
                results = _encode_here(tokenizer, todo, settings, config.read_ahead, bar.update)
                _append_all(features, results, summary, repair)
            else:
                plugin = TokenizerPlugin(str(checkpoint), resolved, digest, config.chunk_frames)
                with dask_client(workers, scheduler) as client:
                    summary.workers = max(1, sum(client.nthreads().values()))
                    window = config.shards_in_flight_per_worker * summary.workers
                    tick = time.perf_counter()
                    results = encode_on_dask(
                        client, todo, settings, plugin, window, lambda j: bar.update(j.n_segments)
                    )
                    _append_all(features, results, summary, repair)
            summary.encode_s = time.perf_counter() - tick
        if repair:
            mark_repairing(features, repair.keys() - set(summary.repaired))
    summary.wall_s = time.perf_counter() - started
    return summary


def _start_repairs(
    features: FeatureStore, damage: StoreDamage, jobs: Sequence[ShardJob]
) -> dict[str, pa.Table]:
    """The committed rows of the damaged shards, to write again in place.

    The shards are marked as being repaired first (`mark_repairing`; a mark left with
    nothing to repair is cleared), then chunks that no longer decode are deleted so that
    the rewrites can fill them again.
    """
    repair = committed_rows(features, damage.shards & set(features.shards))
    unlisted = repair.keys() - {job.shard for job in jobs}
    if unlisted:
        raise SonotypeError(
            f"{features.url}: damaged shards {sorted(unlisted)} are not among the shards "
            "selected to encode (catalog or filters changed); re-encode with --force"
        )
    if repair or pending_repairs(features):
        mark_repairing(features, repair)
    if repair:
        discard_chunks(features, damage.unreadable)
    return repair


def _append_all(
    features: FeatureStore,
    results: Iterator[ShardFeatures],
    summary: EncodeSummary,
    repair: Mapping[str, pa.Table],
) -> None:
    """Append each shard's features in one commit, in the order they come; a shard in
    `repair` is written back over its committed rows instead."""
    for result in results:
        summary.task_s += result.total_s
        summary.model_s += result.model_s
        summary.model_cpu_s += result.model_cpu_s
        if result.failure is not None:
            summary.failed[result.shard] = result.failure
            continue
        rows = (result.tokens, result.embeddings, result.segments)
        tick = time.perf_counter()
        if result.shard in repair:
            committed = repair[result.shard]
            features.rewrite(committed, *rows, pooled=result.pooled, loudness=result.loudness)
            summary.repaired.append(result.shard)
        else:
            features.append(
                *rows, pooled=result.pooled, shards=[result.shard], loudness=result.loudness
            )
            summary.add(result, features.sample_rate)
        summary.append_s += time.perf_counter() - tick


def _encode_here(
    tokenizer: Tokenizer,
    jobs: Sequence[ShardJob],
    settings: ShardSettings,
    read_ahead_windows: int,
    advance: Callable[[int], object],
) -> Iterator[ShardFeatures]:
    for job in jobs:
        yield encode_shard(tokenizer, job.url, job.shard, settings, advance, read_ahead_windows)


def _runs_in_process(device: str, workers: int | None, scheduler: str | None) -> bool:
    is_cpu = _device(device).type == "cpu"
    if not is_cpu and scheduler is not None:
        raise SonotypeError(
            f"device {device!r} runs one model in this process; --scheduler is for CPU "
            "encoding on Dask workers: give one or the other"
        )
    return not is_cpu or (workers == 0 and scheduler is None)


def _device(name: str) -> torch.device:
    """A usable torch device.

    Raises:
        SonotypeError: not a device name, or not available here.
    """
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise SonotypeError(f"device {name!r} is not a torch device ({error})") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SonotypeError(f"device {name!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SonotypeError(
                f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def _identity(tokenizer: Tokenizer, digest: str) -> StoreIdentity:
    return StoreIdentity(
        dim=tokenizer.embedding_dim,
        frame_rate=tokenizer.frame_rate,
        sample_rate=tokenizer.sample_rate,
        codebook_size=tokenizer.codebook_size,
        checkpoint_sha256=digest,
        model_config=tokenizer.config.model_dump(mode="json"),
    )


def _jobs(index: ShardIndex, out: str) -> list[ShardJob]:
    """The shards of the index with their names relative to `OUT/shards/`, in index order."""
    prefix = OutputLayout(out).shards_dir.rstrip("/") + "/"
    jobs = []
    for url, count in zip(index.urls, index.counts, strict=True):
        if not url.startswith(prefix):
            raise SonotypeError(f"{url}: not under {prefix}")
        jobs.append(ShardJob(url, url[len(prefix) :], count))
    return jobs


def _shard_settings(
    config: EncodeConfig, sample_rate: int, segment_filter: SegmentFilter
) -> ShardSettings:
    gain = config.gain
    stream = StreamSettings(
        crop=None,
        crops_per_segment=1,
        pad_short=True,
        sample_rate=sample_rate,
        randomise=False,
        shuffle_buffer=1,
        batch_size=config.batch_size,
        gain_mode=gain.mode,
        min_dbfs=gain.min_dbfs,
        max_dbfs=gain.max_dbfs,
        max_gain_db=gain.max_gain_db,
    )
    return ShardSettings(
        stream,
        segment_filter,
        config.batch_size,
        config.float16_overflow,
        config.context,
        config.warmup_s,
    )

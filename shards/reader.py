"""The streaming shard reader: batches of crops for training, validation and encoding.

    index = ShardIndex.from_catalog(out, SegmentFilter.from_config(cfg.data.filters))
    train_index, val_index = index.hold_out(n_shards=2, seed=cfg.data.seed)
    loader = ShardLoader(train_index, cfg.data, hop_samples=model_hop)
    loader.load_state_dict(checkpoint["data"])      # optional: resume
    while step < max_steps:
        for batch in loader:                        # the rest of the current epoch
            train_step(batch.wav)                   # float32 [B, T]
            checkpoint["data"] = loader.state_dict()
    validation = ShardLoader(val_index, cfg.data, mode="eval", hop_samples=model_hop)

Three modes:
- `train`: a seeded shard shuffle per epoch, random crops and gains, a shuffle
  buffer; every rank yields exactly `len(loader)` batches per epoch, so per-batch
  DDP collectives never wait on a rank that ran out.
- `eval`: one deterministic pass, every selected segment exactly once across ranks and
  workers, fixed crops at the middle gain; the last batch of each worker may be short,
  and ranks may get one batch more or less than each other (reduce metrics once,
  after the pass, not per batch).
- `segments`: like `eval`, with whole segments, zero-padded to the longest in the
  batch (`batch.lengths` gives the real lengths).

Rank and world size come from `torch.distributed` when it is initialised, or are
passed explicitly. Batches travel through a torch `DataLoader` with the configured
workers; worker `w` delivers the rank's batches `b` with `b % W == w`, in the
DataLoader's own round-robin order.
"""

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, Literal

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from shards.batch import Batch, Delivery, collate
from shards.index import ShardIndex
from shards.plan import (
    ShardRange,
    SlotPlan,
    derive_seed,
    plan_single_pass,
    plan_training_epoch,
)
from shards.position import ReaderPosition
from shards.select import SegmentFilter
from shards.skips import SkipCounter
from shards.stream import StreamSettings, slot_pipeline
from sonotype.config.reader import ReaderConfig
from sonotype.errors import SonotypeError

logger = logging.getLogger(__name__)

ReadMode = Literal["train", "eval", "segments"]


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """This process's rank and the world size: explicit, from torch.distributed, or (0, 1).

    Raises:
        SonotypeError: only one of the two is given, or rank is outside [0, world_size).
    """
    if rank is None and world_size is None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1
    if rank is None or world_size is None:
        raise SonotypeError(f"give both rank and world_size, got rank={rank}, world={world_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise SonotypeError(f"rank {rank} is not in [0, world_size={world_size})")
    return rank, world_size


class _SlotDataset(IterableDataset):
    """What each DataLoader worker of one rank iterates: its slot's pipeline.

    Physical worker `p` plays logical worker `(p + start_batch) % W`, so that after a
    resume at batch `b` the DataLoader's round-robin (which always starts at worker 0)
    still delivers batch b first.
    """

    def __init__(
        self,
        plans: list[SlotPlan],
        wrap: list[tuple[ShardRange, ...]],
        *,
        rank: int,
        n_workers: int,
        seed: int,
        epoch: int,
        start_batch: int,
        cursors: list[int],
        settings: StreamSettings,
        segment_filter: SegmentFilter,
    ) -> None:
        super().__init__()
        self.plans, self.wrap = plans, wrap
        self.rank, self.n_workers = rank, n_workers
        self.seed, self.epoch = seed, epoch
        self.start_batch, self.cursors = start_batch, cursors
        self.settings, self.segment_filter = settings, segment_filter

    def __iter__(self) -> Iterator[Delivery]:
        info = get_worker_info()
        physical = info.id if info is not None else 0
        worker = (physical + self.start_batch) % self.n_workers
        slot = self.rank * self.n_workers + worker
        plan = self.plans[slot]
        n_batches = None
        if plan.n_batches is not None:
            delivered = len(range(worker, self.start_batch, self.n_workers))
            n_batches = plan.n_batches - delivered
        skips = SkipCounter()
        pipeline = slot_pipeline(
            plan,
            self.wrap[slot],
            settings=self.settings,
            segment_filter=self.segment_filter,
            seed=derive_seed(self.seed, "slot", self.epoch, self.rank, worker),
            n_drawn=self.cursors[worker],
            n_batches=n_batches,
            skips=skips,
        )
        cursor = self.cursors[worker]
        for crops in pipeline:
            cursor = crops[-1].cursor
            yield Delivery(collate(crops), worker, cursor, skips.take())
        trailing = skips.take()
        if trailing:  # skips after the last batch (a single pass ending on bad samples)
            yield Delivery(None, worker, cursor, trailing)


class ShardLoader:
    """Batches from shards, in epochs, with a position that can be saved and restored.

    Args:
        index: the shards and their selected-sample counts.
        config: the reader settings.
        mode: "train", "eval" or "segments" (see the module docstring).
        rank: this process's rank (None: from torch.distributed, else 0).
        world_size: number of ranks (None: from torch.distributed, else 1).
        hop_samples: the model hop; crops must be a whole number of hops.
        epoch: the epoch to start at.

    Raises:
        SonotypeError: bad mode or rank, a sample rate other than `config.sample_rate`,
            a crop length that does not fit (ConfigError), or (training) too few crops
            for one batch per rank.
    """

    def __init__(
        self,
        index: ShardIndex,
        config: ReaderConfig,
        *,
        mode: ReadMode = "train",
        rank: int | None = None,
        world_size: int | None = None,
        hop_samples: int | None = None,
        epoch: int = 0,
    ) -> None:
        if mode not in ("train", "eval", "segments"):
            raise SonotypeError(f"reader mode {mode!r}: expected train, eval or segments")
        if config.sample_rate is not None and config.sample_rate != index.sample_rate:
            raise SonotypeError(
                f"shards hold {index.sample_rate} Hz audio, the reader expects "
                f"{config.sample_rate} Hz (sample_rate)"
            )
        self.index, self.config, self.mode = index, config, mode
        self.rank, self.world_size = resolve_rank(rank, world_size)
        self.crop_length = (
            None if mode == "segments" else config.crop_length(index.sample_rate, hop_samples)
        )
        self.n_workers = max(config.num_workers, 1)
        self._filter = SegmentFilter.from_config(config.filters)
        self._position = ReaderPosition.start(epoch, self.n_workers)
        self._length = self._count_batches()

    @classmethod
    def from_catalog(cls, out: str, config: ReaderConfig, **kwargs: Any) -> "ShardLoader":
        """A loader over the shards of `OUT` with the segments the catalog says pass the filters.

        Raises:
            SonotypeError: see `ShardIndex.from_catalog` and the class.
        """
        index = ShardIndex.from_catalog(out, SegmentFilter.from_config(config.filters))
        return cls(index, config, **kwargs)

    @classmethod
    def from_urls(
        cls, urls: str | Sequence[str], config: ReaderConfig, **kwargs: Any
    ) -> "ShardLoader":
        """A loader over shards named by a glob, a brace pattern or URLs (counted by a scan).

        Raises:
            SonotypeError: see `ShardIndex.from_urls` and the class.
        """
        index = ShardIndex.from_urls(urls, SegmentFilter.from_config(config.filters))
        return cls(index, config, **kwargs)

    @property
    def sample_rate(self) -> int:
        """The shards' sample rate, Hz."""
        return self.index.sample_rate

    @property
    def epoch(self) -> int:
        """The epoch the next batch belongs to."""
        return self._position.epoch

    @property
    def skipped(self) -> Counter[str]:
        """Samples skipped so far (over this loader's life and the runs it resumes), by reason."""
        return Counter(self._position.skipped)

    def set_epoch(self, epoch: int) -> None:
        """Start `epoch` from its beginning at the next iteration."""
        self._position = replace(
            ReaderPosition.start(epoch, self.n_workers), skipped=self._position.skipped
        )

    def __len__(self) -> int:
        """Batches per epoch on this rank (exact for training; for single passes, exact
        unless samples are skipped)."""
        return self._length

    def __iter__(self) -> Iterator[Batch]:
        """The remaining batches of the current epoch; afterwards the next epoch is current."""
        position = self._position
        plans = self._plans(position.epoch)
        counts = zip(self.index.urls, self.index.counts, strict=True)
        everything = tuple(ShardRange(url, 0, count) for url, count in counts)
        dataset = _SlotDataset(
            plans,
            [plan.ranges or everything for plan in plans],
            rank=self.rank,
            n_workers=self.n_workers,
            seed=self.config.seed,
            epoch=position.epoch,
            start_batch=position.batches,
            cursors=list(position.cursors),
            settings=self._settings(),
            segment_filter=self._filter,
        )
        loader = DataLoader(
            dataset,
            batch_size=None,
            num_workers=self.config.num_workers,
            pin_memory=self.config.pin_memory,
        )
        skipped_before = Counter(position.skipped)
        for delivery in loader:
            position.cursors[delivery.worker] = delivery.cursor
            position.skipped.update(delivery.skipped)
            if delivery.batch is None:
                continue
            position.batches += 1
            yield delivery.batch
        skipped = position.skipped - skipped_before
        if skipped:
            logger.warning(
                "epoch %d, rank %d: skipped %s (bad samples are read past, not fixed; "
                "`sonotype shards verify` lists them)",
                position.epoch,
                self.rank,
                dict(skipped),
            )
        if self.mode == "train" and position.batches != self._length:
            logger.error(
                "epoch %d ended after %d of %d batches on rank %d",
                position.epoch,
                position.batches,
                self._length,
                self.rank,
            )
        self.set_epoch(position.epoch + 1)

    def state_dict(self) -> dict[str, Any]:
        """The position after the last batch delivered, as plain data (for a checkpoint)."""
        return self._position.state_dict(self._identity())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a saved position: the next batches are those an uninterrupted
        run would have delivered after it.

        Raises:
            SonotypeError: the position was saved by a reader built differently, or (in
                eval and segments modes) in the middle of a pass.
        """
        position = ReaderPosition.from_state_dict(state, self._identity())
        if self.mode != "train" and position.batches:
            raise SonotypeError(f"a {self.mode} pass cannot resume mid-pass; start it again")
        self._position = position

    def _plans(self, epoch: int) -> list[SlotPlan]:
        if self.mode == "train":
            return plan_training_epoch(
                self.index.urls,
                self.index.counts,
                seed=self.config.seed,
                epoch=epoch,
                world_size=self.world_size,
                num_workers=self.n_workers,
                batch_size=self.config.batch_size,
                crops_per_segment=self.config.crops_per_segment,
            )
        return plan_single_pass(
            self.index.urls,
            self.index.counts,
            world_size=self.world_size,
            num_workers=self.n_workers,
        )

    def _count_batches(self) -> int:
        plans = self._plans(self._position.epoch)
        mine = plans[self.rank * self.n_workers : (self.rank + 1) * self.n_workers]
        if self.mode == "train":
            return sum(plan.n_batches or 0 for plan in mine)
        crops = 1 if self.mode == "segments" else self.config.crops_per_segment
        size = self.config.batch_size
        return sum(-(-plan.n_samples * crops // size) for plan in mine)

    def _settings(self) -> StreamSettings:
        gain = self.config.gain
        return StreamSettings(
            crop=self.crop_length,
            crops_per_segment=1 if self.mode == "segments" else self.config.crops_per_segment,
            pad_short=self.config.short_segments == "pad",
            sample_rate=self.index.sample_rate,
            randomise=self.mode == "train",
            shuffle_buffer=self.config.shuffle_buffer,
            batch_size=self.config.batch_size,
            gain_mode=gain.mode,
            min_dbfs=gain.min_dbfs,
            max_dbfs=gain.max_dbfs,
            max_gain_db=gain.max_gain_db,
        )

    def _identity(self) -> dict[str, Any]:
        """What a saved position depends on (checked when it is loaded)."""
        shaping = self.config.model_dump(mode="json", exclude={"num_workers", "pin_memory"})
        digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode("utf-8"))
        return {
            "mode": self.mode,
            "rank": self.rank,
            "world_size": self.world_size,
            "num_workers": self.n_workers,
            "index": self.index.fingerprint(),
            "settings": digest.hexdigest()[:16],
            "crop_length": self.crop_length,
        }

"""The epoch plan: which samples each (rank, worker) reads and how many batches it yields.

All ranks compute the same plan from (seed, epoch) and the shard index, so no
communication is needed. The selected samples of all shards, in shard order (shuffled
per epoch when training), form one sequence that is cut into one contiguous piece per
(rank, worker) "slot". A piece is a list of `ShardRange`s: a shard and a half-open
range of its selected samples, so shards of very different sizes still give every
slot its fair share.

In training every rank yields the same number of batches (`batches_per_rank`), so DDP
collectives never wait on a rank that ran out; a slot whose piece is a little short
wraps around its own piece. Within a rank, batch `b` comes from worker `b % W`, which
is the order in which torch's DataLoader collects batches from its workers.
"""

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from sonotype.errors import SonotypeError


@dataclass(frozen=True)
class ShardRange:
    """Selected samples `[start, stop)` of one shard (positions among those the filter takes).

    Attributes:
        url: the shard.
        start: first selected sample to read.
        stop: selected sample to stop before.
    """

    url: str
    start: int
    stop: int

    @property
    def n_samples(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class SlotPlan:
    """What one (rank, worker) slot reads in one epoch.

    Attributes:
        ranges: its piece, in reading order.
        n_batches: batches it yields (None: a single pass over the piece, however many).
    """

    ranges: tuple[ShardRange, ...]
    n_batches: int | None

    @property
    def n_samples(self) -> int:
        return sum(r.n_samples for r in self.ranges)


def derive_seed(*parts: int | str) -> int:
    """A 64-bit seed from several parts (seed, epoch, rank, worker, stream name...).

    A hash rather than arithmetic, so that (seed=1, epoch=0) and (seed=0, epoch=1) give
    unrelated streams; never time- or pid-based (STYLE §7).
    """
    text = "/".join(str(part) for part in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def batches_per_rank(
    n_samples: int, crops_per_segment: int, world_size: int, batch_size: int
) -> int:
    """Batches every rank yields per training epoch: all crops, split evenly, last partial dropped.

    Raises:
        SonotypeError: there are fewer crops than one batch per rank.
    """
    n_batches = n_samples * crops_per_segment // (world_size * batch_size)
    if n_batches == 0:
        raise SonotypeError(
            f"{n_samples} selected segments × {crops_per_segment} crops do not fill one batch "
            f"of {batch_size} on each of {world_size} ranks; lower batch_size or add data"
        )
    return n_batches


def worker_batches(n_batches: int, worker: int, num_workers: int) -> range:
    """The batch indices (within a rank's epoch) that `worker` produces: b with b % W == worker."""
    return range(worker, n_batches, num_workers)


def apportion(total: int, weights: Sequence[int]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder method).

    Args:
        total: what to split.
        weights: non-negative weights, not all zero.

    Returns:
        Non-negative parts that sum to `total`; ties go to earlier parts.
    """
    weight_sum = sum(weights)
    exact = [total * w / weight_sum for w in weights]
    parts = [int(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts


def cut_pieces(
    urls: Sequence[str], counts: Sequence[int], order: Sequence[int], sizes: Sequence[int]
) -> list[tuple[ShardRange, ...]]:
    """Cut the shards, taken in `order`, into consecutive pieces of `sizes` samples.

    Args:
        urls: shard URLs.
        counts: selected samples per shard.
        order: shard indices in reading order.
        sizes: samples per piece; they sum to the total count.

    Returns:
        One tuple of ranges per piece; every selected sample lies in exactly one piece.
    """
    pieces: list[tuple[ShardRange, ...]] = []
    position = 0  # index into `order`
    used = 0  # samples of shard order[position] already given out
    for size in sizes:
        piece: list[ShardRange] = []
        while size > 0:
            shard = order[position]
            take = min(size, counts[shard] - used)
            if take > 0:
                piece.append(ShardRange(urls[shard], used, used + take))
            used += take
            size -= take
            if used == counts[shard]:
                position, used = position + 1, 0
        pieces.append(tuple(piece))
    return pieces


def plan_training_epoch(
    urls: Sequence[str],
    counts: Sequence[int],
    *,
    seed: int,
    epoch: int,
    world_size: int,
    num_workers: int,
    batch_size: int,
    crops_per_segment: int,
) -> list[SlotPlan]:
    """The training plan of one epoch: a seeded shard shuffle cut into one piece per slot.

    Args:
        urls: shard URLs.
        counts: selected samples per shard.
        seed: the reader seed.
        epoch: the epoch number (the shard order changes with it).
        world_size: number of ranks.
        num_workers: DataLoader workers per rank (0 counts as 1: the main process).
        batch_size: crops per batch.
        crops_per_segment: crops taken from each sample.

    Returns:
        Slot plans indexed by `rank * num_workers + worker`. Piece sizes follow each
        slot's crop quota, so when the crops fill whole batches exactly, every sample
        is read exactly once per epoch.

    Raises:
        SonotypeError: the selection does not fill one batch per rank.
    """
    workers = max(num_workers, 1)
    n_batches = batches_per_rank(sum(counts), crops_per_segment, world_size, batch_size)
    order = list(range(len(urls)))
    random.Random(derive_seed(seed, "shard-order", epoch)).shuffle(order)
    slot_batches = [
        len(worker_batches(n_batches, worker, workers))
        for _rank in range(world_size)
        for worker in range(workers)
    ]
    sizes = apportion(sum(counts), slot_batches)
    pieces = cut_pieces(urls, counts, order, sizes)
    return [SlotPlan(piece, n) for piece, n in zip(pieces, slot_batches, strict=True)]


def plan_single_pass(
    urls: Sequence[str], counts: Sequence[int], *, world_size: int, num_workers: int
) -> list[SlotPlan]:
    """A deterministic pass over every selected sample once, in shard order, split evenly.

    Args:
        urls: shard URLs.
        counts: selected samples per shard.
        world_size: number of ranks.
        num_workers: DataLoader workers per rank (0 counts as 1).

    Returns:
        Slot plans indexed by `rank * num_workers + worker`, without a batch quota.
    """
    n_slots = world_size * max(num_workers, 1)
    sizes = apportion(sum(counts), [1] * n_slots)
    pieces = cut_pieces(urls, counts, range(len(urls)), sizes)
    return [SlotPlan(piece, None) for piece in pieces]

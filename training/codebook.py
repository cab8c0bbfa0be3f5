"""Training the codebook: k-means initialisation, one EMA update per optimizer step, dead codes.

What the reference gets wrong and this module does instead (`shared/wavtokenizer.md`):

- Initialisation: the reference runs k-means on the first batch with a dense
  `[N, K, D]` difference tensor (37.5 GiB at its batch). Here encoder frames of a few
  batches are sampled into a fixed-size reservoir, gathered from every rank, and
  clustered by Lloyd's algorithm whose distances are computed in blocks of
  `chunk_rows` frames, `[chunk_rows, K]` at a time, never `[N, K, D]`.
- EMA: the reference updates inside every forward (twice per batch) and per rank. Here
  the assignment statistics of all micro-batches of a step are summed, all-reduced over
  ranks, and applied once per optimizer step, so every rank keeps the same codebook.
- Dead codes: the reference re-seeds them and then overwrites the new vectors with the
  EMA update in the same call. Here re-seeding follows the EMA update and
  `VectorQuantizer.replace_codes` sets the EMA state too, so a new code survives the
  next update. The new vectors are drawn from recent frames of every rank by a
  generator seeded with the step, so all ranks pick the same ones.
"""

import logging
import math
from dataclasses import dataclass, field

import torch

from training.distributed import all_gather_rows, all_reduce_sum, broadcast, is_main_process
from training.model import VectorQuantizer

logger = logging.getLogger(__name__)


class LatentReservoir:
    """A uniform sample of at most `capacity` frames from a stream (Vitter's Algorithm R).

    Args:
        capacity: frames kept.
        dim: D, the size of a frame.
        seed: seeds which frames are kept.
    """

    def __init__(self, capacity: int, dim: int, seed: int) -> None:
        self.capacity = capacity
        self.n_seen = 0
        self._rows = torch.zeros(capacity, dim)
        self._generator = torch.Generator().manual_seed(seed)

    @property
    def rows(self) -> torch.Tensor:
        """`[min(n_seen, capacity), D]` float32 on the CPU."""
        return self._rows[: min(self.n_seen, self.capacity)]

    def add(self, latents: torch.Tensor) -> None:
        """Offer a batch of frames.

        Args:
            latents: `[B, D, F]` encoder outputs (any device and dtype).
        """
        frames = latents.detach().transpose(1, 2).reshape(-1, latents.shape[1])  # [B·F, D]
        frames = frames.float().cpu()
        n = frames.shape[0]
        position = self.n_seen + torch.arange(n)
        # Frame t goes to slot t while the reservoir fills, later to a uniform slot in
        # [0, t] if that slot exists (so each frame is kept with probability capacity / t).
        drawn = (torch.rand(n, generator=self._generator) * (position + 1)).long()
        slots = torch.where(position < self.capacity, position, drawn)
        kept = slots < self.capacity
        # Several frames of one batch may draw the same slot: the latest wins, as it
        # would one frame at a time.
        latest = torch.full((self.capacity,), -1, dtype=torch.long)
        latest.scatter_reduce_(0, slots[kept], torch.arange(n)[kept], reduce="amax")
        written = latest >= 0
        self._rows[written] = frames[latest[written]]
        self.n_seen += n


def nearest_codes(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid of each point, from one `[rows, K]` distance block.

    ‖x − c‖² = ‖x‖² − 2·x·c + ‖c‖², as in EnCodec's codebook.

    Args:
        points: `[rows, D]`.
        centroids: `[K, D]`.

    Returns:
        int64 `[rows]`.
    """
    distances = (
        points.pow(2).sum(1, keepdim=True)
        - 2 * points @ centroids.t()
        + centroids.pow(2).sum(1)[None, :]
    )  # [rows, K]
    return distances.argmin(dim=1)


def kmeans(
    points: torch.Tensor, k: int, iters: int, chunk_rows: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means with distances in blocks of `chunk_rows` points.

    Memory beyond the points and centroids is one `[chunk_rows, K]` block plus `[K, D]`
    sums. Centroids start from k-means++ seeding (Arthur and Vassilvitskii 2007, as
    scikit-learn; EnCodec draws random points, which leaves several codes in one dense
    cluster); with fewer points than K the points are drawn with replacement, as
    EnCodec's `sample_vectors`. An empty cluster keeps its centroid (EnCodec's `kmeans`).

    Args:
        points: `[N, D]` float32.
        k: number of centroids K.
        iters: Lloyd iterations.
        chunk_rows: points per distance block.
        seed: seeds the starting centroids.

    Returns:
        (centroids `[K, D]`, counts `[K]`: points nearest to each final centroid).
    """
    generator = torch.Generator().manual_seed(seed)
    n = points.shape[0]
    if n >= k:
        centroids = _kmeans_plus_plus(points, k, generator)
    else:
        centroids = points[torch.randint(n, (k,), generator=generator).to(points.device)].clone()
    for _ in range(iters):
        counts, sums = _assignment_sums(points, centroids, chunk_rows)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
    counts, _ = _assignment_sums(points, centroids, chunk_rows)
    return centroids, counts


def _kmeans_plus_plus(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k starting centroids, each drawn with probability ∝ squared distance to the nearest
    one drawn before; memory: one `[N]` distance vector."""
    n = points.shape[0]
    chosen = [int(torch.randint(n, (1,), generator=generator))]
    nearest = (points - points[chosen[0]]).pow(2).sum(1)  # [N]
    for _ in range(1, k):
        weights = nearest.double().cpu()
        if float(weights.sum()) <= 0:  # every point already is a centroid
            index = int(torch.randint(n, (1,), generator=generator))
        else:
            index = int(torch.multinomial(weights, 1, generator=generator))
        chosen.append(index)
        nearest = torch.minimum(nearest, (points - points[index]).pow(2).sum(1))
    return points[chosen].clone()


def _assignment_sums(
    points: torch.Tensor, centroids: torch.Tensor, chunk_rows: int
) -> tuple[torch.Tensor, torch.Tensor]:
    counts = torch.zeros(centroids.shape[0], device=points.device)
    sums = torch.zeros_like(centroids)
    for block in points.split(chunk_rows):
        codes = nearest_codes(block, centroids)
        counts.index_add_(0, codes, torch.ones_like(codes, dtype=counts.dtype))
        sums.index_add_(0, codes, block)
    return counts, sums


def initialize_codebook(
    quantizer: VectorQuantizer,
    reservoir: LatentReservoir,
    *,
    iters: int,
    chunk_rows: int,
    frames_per_step: int,
    seed: int,
) -> None:
    """Set the codebook from k-means on every rank's reservoir (identically on all ranks).

    The initial EMA cluster sizes are the k-means counts rescaled to frames per optimizer
    step, the unit the EMA update adds in, so that rarely chosen codes fall below the
    dead-code threshold in about as many steps as they would after any other update.

    Args:
        quantizer: the generator's quantizer.
        reservoir: this rank's sample of encoder frames (the same size on every rank).
        iters: Lloyd iterations.
        chunk_rows: points per distance block.
        frames_per_step: frames in one optimizer step over all ranks.
        seed: seeds the k-means start.
    """
    device = quantizer.embed.device
    points = all_gather_rows(reservoir.rows.to(device))  # [ranks · n, D]
    centroids = torch.zeros_like(quantizer.embed)
    counts = torch.zeros_like(quantizer.cluster_size)
    if is_main_process():
        centroids, counts = kmeans(points, quantizer.codebook_size, iters, chunk_rows, seed)
        counts = counts * (frames_per_step / points.shape[0])
        logger.info(
            "codebook initialised by k-means (%d iterations) on %d frames: %d of %d codes used",
            iters,
            points.shape[0],
            int((counts > 0).sum()),
            quantizer.codebook_size,
        )
    centroids, counts = broadcast(centroids), broadcast(counts)
    quantizer.initialize(centroids, counts)


@dataclass
class CodebookStatistics:
    """Assignment statistics of one optimizer step, summed over its micro-batches.

    Attributes:
        counts: `[K]` frames per code.
        sums: `[K, D]` sum of the latents of each code.
        candidates: `[n, D]` frames drawn from the last micro-batch, to re-seed dead codes.
    """

    counts: torch.Tensor
    sums: torch.Tensor
    candidates: torch.Tensor | None = None
    n_candidates: int = 1024
    generator: torch.Generator = field(default_factory=torch.Generator)

    @classmethod
    def empty(
        cls, quantizer: VectorQuantizer, n_candidates: int, seed: int
    ) -> "CodebookStatistics":
        """Zero statistics; `seed` seeds the choice of candidate frames."""
        return cls(
            counts=torch.zeros_like(quantizer.cluster_size),
            sums=torch.zeros_like(quantizer.embed),
            n_candidates=n_candidates,
            generator=torch.Generator().manual_seed(seed),
        )

    def add(self, quantizer: VectorQuantizer, latents: torch.Tensor, codes: torch.Tensor) -> None:
        """Add one micro-batch: latents `[B, D, F]` and their codes `[B, F]`."""
        counts, sums = quantizer.assignment_statistics(latents, codes)
        self.counts += counts
        self.sums += sums
        frames = latents.detach().transpose(1, 2).reshape(-1, latents.shape[1])  # [B·F, D]
        pick = torch.randint(frames.shape[0], (self.n_candidates,), generator=self.generator)
        self.candidates = frames[pick.to(frames.device)].float()


def update_codebook(
    quantizer: VectorQuantizer, statistics: CodebookStatistics, respawn: bool, seed: int
) -> dict[str, torch.Tensor]:
    """Apply one optimizer step's statistics (all ranks' together), then re-seed dead codes.

    Args:
        quantizer: the generator's quantizer.
        statistics: this rank's statistics of the step.
        respawn: re-seed the codes that are dead after the update.
        seed: seeds the choice of replacement frames (use the step: same on all ranks).

    Returns:
        `codebook/usage` (fraction of codes used in the step), `codebook/perplexity`
        (exp of the entropy of code use, in codes), `codebook/dead` (codes below the
        threshold after the update) and `codebook/respawned`.
    """
    counts = all_reduce_sum(statistics.counts)
    sums = all_reduce_sum(statistics.sums)
    quantizer.ema_update(counts, sums)
    dead = quantizer.dead_codes()
    stats = usage_statistics(counts)
    stats["codebook/dead"] = dead.sum().float()
    stats["codebook/respawned"] = torch.zeros((), device=dead.device)
    if respawn and statistics.candidates is not None:
        n_dead = int(stats["codebook/dead"])  # a device sync, on respawn steps only
        if n_dead:
            pool = all_gather_rows(statistics.candidates)  # [ranks · n, D], same on every rank
            generator = torch.Generator().manual_seed(seed)
            pick = torch.randint(pool.shape[0], (n_dead,), generator=generator)
            quantizer.replace_codes(dead, pool[pick.to(pool.device)])
            stats["codebook/respawned"] = torch.tensor(float(n_dead), device=dead.device)
    return stats


def usage_statistics(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Fraction of codes used and perplexity (exp entropy, nats) of a `[K]` count vector."""
    total = counts.sum().clamp(min=1)
    probabilities = counts / total
    entropy = -(probabilities * torch.log(probabilities.clamp(min=1e-12))).sum()
    return {
        "codebook/usage": (counts > 0).float().mean(),
        "codebook/perplexity": torch.exp(entropy),
    }


def describe_threshold(threshold: float, frames_per_step: int, codebook_size: int) -> str | None:
    """A warning when the dead-code threshold is above uniform use (most codes would be dead)."""
    uniform = frames_per_step / codebook_size
    if threshold < uniform:
        return None
    return (
        f"dead-code threshold {threshold:g} frames/step is not below uniform use "
        f"({frames_per_step} frames per step / {codebook_size} codes = {uniform:.3g}): most "
        f"codes will count as dead and be re-seeded every time; lower "
        f"codebook.dead_code_threshold (e.g. {math.floor(uniform * 10) / 100 or 0.01:g})"
    )

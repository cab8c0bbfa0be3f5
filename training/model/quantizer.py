"""One-codebook vector quantizer with an EMA-updated codebook (EnCodec's EuclideanCodebook).

Interface for the trainer (issue 6). `forward` is pure: it never changes the codebook
(the reference updates it inside forward, so twice per batch when the generator runs
for the discriminator and again for itself). The codebook moves only when the trainer
calls the hooks below, once per optimizer step:

1. `assignment_statistics(latents, codes)` → (counts `[K]`, sums `[K, D]`) for each
   micro-batch; the trainer adds them up over gradient accumulation and all-reduces
   them across DDP ranks.
2. `ema_update(counts, sums)` applies one EMA step (decay 0.99, Laplace smoothing with
   eps 1e-5, as in EnCodec).
3. `dead_codes()` → bool `[K]`: EMA cluster size below `threshold_ema_dead_code`;
   `replace_codes(mask, vectors)` re-seeds them so the replacement survives the next
   EMA step (in the reference the EMA update overwrites it in the same call).
4. `initialize(centroids, counts)` sets the codebook once, e.g. from a chunked
   k-means over a reservoir of encoder outputs (the trainer's job; until then
   `is_initialized` is False and every frame maps to code 0).

Buffers (`inited`, `cluster_size`, `embed`, `embed_avg`) keep the reference's names
and dtypes, so they map one to one onto the published checkpoints.
"""

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

_DISTANCE_BUDGET = 1 << 24
"""Elements of the [rows, K] distance block computed at once (64 MiB in float32)."""


class QuantizerOutput(NamedTuple):
    """What `VectorQuantizer.forward` returns."""

    quantized: torch.Tensor
    """`[B, D, F]` codebook vectors, with the straight-through gradient of the input."""
    codes: torch.Tensor
    """`[B, F]` int64 indices into the codebook."""
    commitment_loss: torch.Tensor
    """Scalar MSE(latents, quantized.detach()); the reference weighs it by 1000."""


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantization against one codebook `[K, D]`.

    Args:
        codebook_size: K.
        dim: D, the latent size (no projection, as published).
        decay: EMA decay of cluster sizes and sums (0.99, EnCodec).
        eps: Laplace smoothing of cluster sizes (1e-5, EnCodec).
        threshold_ema_dead_code: EMA cluster size under which a code is dead (2, EnCodec).
        cosine: latents (`prepare`) and codes are l2-normalised, so nearest means most
            similar in direction (DAC's normalised codes). With a Euclidean codebook the
            commitment loss can be lowered by shrinking every latent toward the codes,
            which short runs did until a few codes took every frame; on the unit sphere
            that road is closed.
    """

    def __init__(
        self,
        codebook_size: int,
        dim: int,
        decay: float = 0.99,
        eps: float = 1e-5,
        threshold_ema_dead_code: float = 2.0,
        cosine: bool = False,
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.dim = dim
        self.decay = decay
        self.eps = eps
        self.threshold_ema_dead_code = threshold_ema_dead_code
        self.cosine = cosine
        # EnCodec with kmeans_init=True starts from zeros and a false `inited` flag (a
        # float [1] tensor, kept so the published checkpoints map one to one).
        self.register_buffer("inited", torch.zeros(1))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed", torch.zeros(codebook_size, dim))
        self.register_buffer("embed_avg", torch.zeros(codebook_size, dim))

    def prepare(self, latents: torch.Tensor) -> torch.Tensor:
        """The encoder's output as the quantizer sees it: `[B, D, F]`, unit length per frame
        when cosine, else unchanged. Every caller quantizes (and stores) prepared latents."""
        return F.normalize(latents, dim=1) if self.cosine else latents

    def _on_sphere(self, vectors: torch.Tensor) -> torch.Tensor:
        """`[K, D]` codes, projected onto the unit sphere when cosine."""
        return F.normalize(vectors, dim=1) if self.cosine else vectors

    @property
    def is_initialized(self) -> bool:
        """Whether the codebook was set (by `initialize` or a loaded checkpoint)."""
        return bool(self.inited.item())

    def forward(self, latents: torch.Tensor) -> QuantizerOutput:
        """Quantize, with a straight-through gradient and the commitment loss. No side effects.

        Args:
            latents: `[B, D, F]`.

        Returns:
            QuantizerOutput (quantized `[B, D, F]`, codes `[B, F]`, commitment loss).
        """
        codes = self.encode(latents)
        quantized = self.decode(codes)
        # Commitment as in EnCodec's VectorQuantization: only the encoder gets the gradient.
        commitment_loss = F.mse_loss(latents, quantized.detach())
        # Straight-through estimator (van den Oord et al. 2017): forward the codebook
        # vector, backward the identity.
        quantized = latents + (quantized - latents).detach()
        return QuantizerOutput(quantized, codes, commitment_loss)

    @torch.no_grad()
    def encode(self, latents: torch.Tensor) -> torch.Tensor:
        """Nearest codebook vector of each frame.

        The squared distance is computed as in EnCodec (‖x‖² − 2·x·e + ‖e‖², largest
        negated value wins), in blocks of rows so memory stays at `_DISTANCE_BUDGET`
        elements however many frames come in; never a `[N, K, D]` tensor. Up to
        `_DISTANCE_BUDGET / K` frames (4096 for K = 4096) it is the reference's single
        matrix product; beyond that, a frame whose two nearest codes tie within float
        rounding may pick the other one.

        Args:
            latents: `[B, D, F]`.

        Returns:
            codes `[B, F]` int64.
        """
        batch, dim, n_frames = latents.shape
        flat = latents.transpose(1, 2).reshape(-1, dim)  # [B·F, D]
        embed_t = self.embed.t()
        embed_norm = embed_t.pow(2).sum(0, keepdim=True)  # [1, K]
        rows = max(1, _DISTANCE_BUDGET // self.codebook_size)
        codes = [
            (-(block.pow(2).sum(1, keepdim=True) - 2 * block @ embed_t + embed_norm))
            .max(dim=-1)
            .indices
            for block in flat.split(rows)
        ]
        return torch.cat(codes).view(batch, n_frames)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook vectors of codes: `[B, F]` → `[B, D, F]`."""
        return F.embedding(codes, self.embed).transpose(1, 2)

    @torch.no_grad()
    def assignment_statistics(
        self, latents: torch.Tensor, codes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Sufficient statistics of one batch for the EMA update.

        Args:
            latents: `[B, D, F]` encoder outputs (detached or not).
            codes: `[B, F]` their codes.

        Returns:
            (counts `[K]` float32, sums `[K, D]` float32): frames per code and the sum of
            their latents. Add them up over micro-batches (and ranks) before `ema_update`.
        """
        flat = latents.detach().transpose(1, 2).reshape(-1, self.dim).float()  # [B·F, D]
        index = codes.reshape(-1)
        counts = torch.bincount(index, minlength=self.codebook_size).float()
        sums = torch.zeros(self.codebook_size, self.dim, device=flat.device)
        sums.index_add_(0, index, flat)
        return counts, sums

    @torch.no_grad()
    def ema_update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        """One EMA step of the codebook from accumulated statistics (EnCodec's update).

        Args:
            counts: `[K]` frames per code.
            sums: `[K, D]` sum of the latents assigned to each code.
        """
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        # Laplace smoothing keeps empty clusters from dividing by zero (EnCodec).
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total
        self.embed.copy_(self._on_sphere(self.embed_avg / smoothed.unsqueeze(1)))

    @torch.no_grad()
    def dead_codes(self) -> torch.Tensor:
        """bool `[K]`: codes whose EMA cluster size is below `threshold_ema_dead_code`."""
        return self.cluster_size < self.threshold_ema_dead_code

    @torch.no_grad()
    def replace_codes(self, mask: torch.Tensor, vectors: torch.Tensor) -> None:
        """Re-seed the codes in `mask` with new vectors (e.g. random recent latents).

        Their cluster size is set to the dead-code threshold (at least 1) and their EMA sum
        to vector × size, so the next `ema_update` keeps them near the new vectors instead
        of pulling them back to the old average.

        Args:
            mask: bool `[K]`.
            vectors: `[mask.sum(), D]`.

        Raises:
            ValueError: `vectors` does not hold one row per masked code.
        """
        n_dead = int(mask.sum())
        if vectors.shape != (n_dead, self.dim):
            raise ValueError(
                f"replace_codes: expected vectors of shape ({n_dead}, {self.dim}), "
                f"got {tuple(vectors.shape)}"
            )
        size = max(self.threshold_ema_dead_code, 1.0)
        vectors = self._on_sphere(vectors.to(self.embed))
        self.embed[mask] = vectors
        self.embed_avg[mask] = vectors * size
        self.cluster_size[mask] = size

    @torch.no_grad()
    def initialize(self, centroids: torch.Tensor, counts: torch.Tensor) -> None:
        """Set the codebook from k-means centroids and mark it initialized.

        The EMA sums start at centroid × count, so that `embed_avg / cluster_size` is the
        codebook from the first update on. EnCodec's init copies the centroids into the
        sums instead, which is consistent only for counts of 1: with other counts the
        first EMA step rescales every code by about 1 / count.

        Args:
            centroids: `[K, D]`.
            counts: `[K]` points per centroid, the initial EMA cluster sizes.

        Raises:
            ValueError: the shapes do not match the codebook.
        """
        if centroids.shape != self.embed.shape or counts.shape != self.cluster_size.shape:
            raise ValueError(
                f"initialize: expected centroids {tuple(self.embed.shape)} and counts "
                f"{tuple(self.cluster_size.shape)}, got {tuple(centroids.shape)} and "
                f"{tuple(counts.shape)}"
            )
        centroids = self._on_sphere(centroids)
        self.embed.copy_(centroids)
        self.embed_avg.copy_(centroids * counts.unsqueeze(1))
        self.cluster_size.copy_(counts)
        self.inited.fill_(1.0)

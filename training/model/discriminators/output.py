"""What a sub-discriminator returns: logits for the adversarial loss, maps for feature matching."""

from typing import NamedTuple

import torch
from torch import nn


class DiscriminatorOutput(NamedTuple):
    """One sub-discriminator's verdict on a batch.

    The split follows the reference losses: for MPD and MRD (Vocos, hinge loss) the
    feature maps include the final conv's output, whose flattened form is the logits;
    for the DAC discriminator (least squares) the final map is the logits and is not
    among the feature maps.
    """

    logits: torch.Tensor
    """`[B, ...]` scores; real → large (hinge: ≥ 1; least squares: 1)."""
    feature_maps: list[torch.Tensor]
    """Intermediate activations `[B, C, ...]` compared between real and generated audio."""


def conditional_embedding(n_embeddings: int | None, channels: int) -> nn.Embedding | None:
    """Vocos' conditional discriminator table (zero-initialised), or None when unconditional."""
    if n_embeddings is None:
        return None
    embedding = nn.Embedding(n_embeddings, channels)
    nn.init.zeros_(embedding.weight)
    return embedding


def add_condition(
    out: torch.Tensor,
    hidden: torch.Tensor,
    embedding: nn.Embedding | None,
    condition: torch.Tensor | None,
) -> torch.Tensor:
    """Add the condition's projection of the last hidden map `[B, C, h, w]` to the output conv's
    `[B, 1, h, w]` (Vocos: Σ_c emb[condition]_c · hidden_c); unchanged when unconditional."""
    if embedding is None or condition is None:
        return out
    weights = embedding(condition).view(1, -1, 1, 1)
    return out + (weights * hidden).sum(dim=1, keepdim=True)

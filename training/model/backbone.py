"""The Vocos decoder backbone with WavTokenizer's attention prenet: latents → hidden frames.

Structure (facts from `jishengpeng/WavTokenizer: decoder/models.py` and
`gemelo-ai/vocos: vocos/models.py, vocos/modules.py`): a k=7 conv D → H; a prenet of
two ResBlocks, one single-head self-attention block, two ResBlocks and a GroupNorm;
a LayerNorm that is adaptive (AdaLayerNorm: one learned scale/shift row per condition,
row 0 at inference); `n_layers` ConvNeXt blocks; a final LayerNorm.

The GroupNorms and the attention are global over the frames of the input, so their
cost grows with F² and a frame's output depends on the whole input: chunked decoding
(`training.chunked`) is therefore an approximation, exact only where an input fits in
one chunk.
"""

import torch
import torch.nn.functional as F
from torch import nn

Condition = int | torch.Tensor
"""AdaLayerNorm row: an int, or an int64 tensor `[1]` or `[B]`. The reference uses 0 at
inference and a random row in 0..3 per training step."""


class AdaLayerNorm(nn.Module):
    """LayerNorm without affine parameters, then a scale and shift looked up per condition.

    Args:
        n_conditions: rows of the scale and shift tables.
        dim: normalised size H.
        eps: 1e-6 as in Vocos.
    """

    def __init__(self, n_conditions: int, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.scale = nn.Embedding(n_conditions, dim)
        self.shift = nn.Embedding(n_conditions, dim)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, condition: Condition = 0) -> torch.Tensor:
        """`[B, F, H]` → `[B, F, H]`."""
        if isinstance(condition, int):
            condition = torch.tensor([condition], device=x.device)
        scale = self.scale(condition).unsqueeze(1)  # [1 or B, 1, H]
        shift = self.shift(condition).unsqueeze(1)
        return F.layer_norm(x, (self.dim,), eps=self.eps) * scale + shift


class ConvNeXtBlock(nn.Module):
    """Depthwise conv k=7, (Ada)LayerNorm, Linear H → I, GELU, Linear I → H, layer scale, residual.

    Args:
        dim: H.
        intermediate_dim: I.
        layer_scale_init: initial value of the per-channel layer scale.
        n_conditions: AdaLayerNorm rows, or None for a plain LayerNorm.
    """

    def __init__(
        self, dim: int, intermediate_dim: int, layer_scale_init: float, n_conditions: int | None
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = AdaLayerNorm(n_conditions, dim) if n_conditions else nn.LayerNorm(dim, eps=1e-6)
        self.pointwise1 = nn.Linear(dim, intermediate_dim)
        self.pointwise2 = nn.Linear(intermediate_dim, dim)
        self.layer_scale = nn.Parameter(torch.full((dim,), layer_scale_init))

    def forward(self, x: torch.Tensor, condition: Condition = 0) -> torch.Tensor:
        """`[B, H, F]` → `[B, H, F]`."""
        h = self.depthwise(x).transpose(1, 2)  # [B, F, H]
        h = _normalize(self.norm, h, condition)
        h = self.pointwise2(F.gelu(self.pointwise1(h)))
        return x + (self.layer_scale * h).transpose(1, 2)  # [B, H, F]


class ResBlock(nn.Module):
    """GroupNorm, swish, conv k=3, GroupNorm, swish, dropout, conv k=3, residual (no shortcut conv).

    Args:
        dim: channels H.
        n_groups: GroupNorm groups (32 as published; eps 1e-6).
        dropout: dropout probability (0.1 as published).
    """

    def __init__(self, dim: int, n_groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(n_groups, dim, eps=1e-6)
        self.conv1 = nn.Conv1d(dim, dim, kernel_size=3, padding=1)
        self.norm2 = nn.GroupNorm(n_groups, dim, eps=1e-6)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv1d(dim, dim, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, H, F]` → `[B, H, F]`."""
        h = self.conv1(F.silu(self.norm1(x)))  # silu is the reference's swish, x·sigmoid(x)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return x + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over frames, 1×1 conv projections, residual.

    Args:
        dim: channels H (the attention scale is H^-1/2, one head).
        n_groups: groups of the GroupNorm before the projections.
    """

    def __init__(self, dim: int, n_groups: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(n_groups, dim, eps=1e-6)
        self.query = nn.Conv1d(dim, dim, kernel_size=1)
        self.key = nn.Conv1d(dim, dim, kernel_size=1)
        self.value = nn.Conv1d(dim, dim, kernel_size=1)
        self.output = nn.Conv1d(dim, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`[B, H, F]` → `[B, H, F]`; memory and time grow with F²."""
        h = self.norm(x)
        query = self.query(h).transpose(1, 2)  # [B, F, H]
        key = self.key(h).transpose(1, 2)
        value = self.value(h).transpose(1, 2)
        # The reference's softmax(q·kᵀ / √H)·v written out with bmm; the fused kernel
        # computes the same and avoids storing the [F, F] weights where it can.
        h = F.scaled_dot_product_attention(query, key, value).transpose(1, 2)  # [B, H, F]
        return x + self.output(h)


class VocosBackbone(nn.Module):
    """Latents → hidden frames for the ISTFT head.

    Args:
        input_dim: latent size D.
        dim: hidden width H.
        intermediate_dim: ConvNeXt inner width.
        n_layers: ConvNeXt blocks.
        n_conditions: AdaLayerNorm rows, or None for plain LayerNorms.
        layer_scale_init: ConvNeXt layer-scale init; None: 1 / n_layers (Vocos).
        n_groups: GroupNorm groups in the prenet.
        dropout: dropout in the prenet ResBlocks.
    """

    def __init__(
        self,
        input_dim: int,
        dim: int,
        intermediate_dim: int,
        n_layers: int,
        n_conditions: int | None = 4,
        layer_scale_init: float | None = None,
        n_groups: int = 32,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.input_conv = nn.Conv1d(input_dim, dim, kernel_size=7, padding=3)
        self.input_norm = (
            AdaLayerNorm(n_conditions, dim) if n_conditions else nn.LayerNorm(dim, eps=1e-6)
        )
        scale = layer_scale_init or 1 / n_layers
        self.blocks = nn.ModuleList(
            [ConvNeXtBlock(dim, intermediate_dim, scale, n_conditions) for _ in range(n_layers)]
        )
        self.output_norm = nn.LayerNorm(dim, eps=1e-6)
        # Vocos initialises convs and linears with a truncated normal (std 0.02) before the
        # prenet exists; the prenet keeps PyTorch's default initialisation.
        self.apply(_truncated_normal_init)
        self.prenet = nn.Sequential(
            ResBlock(dim, n_groups, dropout),
            ResBlock(dim, n_groups, dropout),
            AttentionBlock(dim, n_groups),
            ResBlock(dim, n_groups, dropout),
            ResBlock(dim, n_groups, dropout),
            nn.GroupNorm(n_groups, dim, eps=1e-6),
        )

    def forward(self, latents: torch.Tensor, condition: Condition = 0) -> torch.Tensor:
        """Decode latents to hidden frames.

        Args:
            latents: `[B, D, F]` (quantized latents).
            condition: AdaLayerNorm row (0 at inference).

        Returns:
            `[B, F, H]`.
        """
        x = self.prenet(self.input_conv(latents))  # [B, H, F]
        x = x.transpose(1, 2)  # [B, F, H]
        x = _normalize(self.input_norm, x, condition)
        x = x.transpose(1, 2)  # [B, H, F]
        for block in self.blocks:
            x = block(x, condition)
        return self.output_norm(x.transpose(1, 2))  # [B, F, H]


def _normalize(norm: nn.Module, x: torch.Tensor, condition: Condition) -> torch.Tensor:
    """Apply an AdaLayerNorm with its condition, or a plain LayerNorm."""
    return norm(x, condition) if isinstance(norm, AdaLayerNorm) else norm(x)


def _truncated_normal_init(module: nn.Module) -> None:
    if isinstance(module, nn.Conv1d | nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)

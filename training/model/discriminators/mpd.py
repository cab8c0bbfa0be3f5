"""The multi-period discriminator (HiFi-GAN, as configured in Vocos).

Facts from `gemelo-ai/vocos: vocos/discriminators.py`: for each period p the waveform
is reflect-padded to a multiple of p and folded to `[B, 1, T / p, p]`; weight-normalised
(k, 1) convs with stride (s, 1) (the last one stride 1) and LeakyReLU(0.1); a (3, 1)
output conv. An optional embedding table adds a learned per-condition projection of
the last hidden map to the logits (the published checkpoints have none).
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from training.model.discriminators.output import (
    DiscriminatorOutput,
    add_condition,
    conditional_embedding,
)

_LEAKY_SLOPE = 0.1
"""LeakyReLU slope of HiFi-GAN / Vocos discriminators."""


class PeriodDiscriminator(nn.Module):
    """One period of the MPD.

    Args:
        period: p.
        channels: output channels of the successive convs (published: 32, 128, 512, 1024, 1024).
        kernel_size: k of the (k, 1) kernels.
        stride: s of the (s, 1) strides (all convs but the last).
        n_embeddings: rows of the conditional embedding, or None.
    """

    def __init__(
        self,
        period: int,
        channels: list[int],
        kernel_size: int = 5,
        stride: int = 3,
        n_embeddings: int | None = None,
    ) -> None:
        super().__init__()
        self.period = period
        convs = []
        in_channels = 1
        for index, out_channels in enumerate(channels):
            step = 1 if index == len(channels) - 1 else stride
            conv = nn.Conv2d(
                in_channels,
                out_channels,
                (kernel_size, 1),
                (step, 1),
                padding=(kernel_size // 2, 0),
            )
            convs.append(weight_norm(conv))
            in_channels = out_channels
        self.convs = nn.ModuleList(convs)
        self.output_conv = weight_norm(nn.Conv2d(in_channels, 1, (3, 1), 1, padding=(1, 0)))
        self.embedding = conditional_embedding(n_embeddings, in_channels)

    def forward(
        self, wav: torch.Tensor, condition: torch.Tensor | None = None
    ) -> DiscriminatorOutput:
        """`[B, T]` → logits `[B, n]` and the maps after conv 2 onwards and the output conv."""
        x = wav.unsqueeze(1)  # [B, 1, T]
        remainder = x.shape[-1] % self.period
        if remainder:
            x = F.pad(x, (0, self.period - remainder), mode="reflect")
        x = x.view(x.shape[0], 1, -1, self.period)  # [B, 1, T / p, p]
        feature_maps = []
        for index, conv in enumerate(self.convs):
            x = F.leaky_relu(conv(x), _LEAKY_SLOPE)
            # Vocos leaves the first conv's map out of feature matching.
            if index > 0:
                feature_maps.append(x)
        out = add_condition(self.output_conv(x), x, self.embedding, condition)
        feature_maps.append(out)
        return DiscriminatorOutput(torch.flatten(out, 1, -1), feature_maps)


class MultiPeriodDiscriminator(nn.Module):
    """One `PeriodDiscriminator` per period (published: 2, 3, 5, 7, 11).

    Args:
        periods: the periods.
        channels: conv channels of each period discriminator.
        kernel_size: k of the (k, 1) kernels.
        stride: s of the strided convs.
        n_embeddings: conditional embedding rows, or None.
    """

    def __init__(
        self,
        periods: list[int],
        channels: list[int],
        kernel_size: int = 5,
        stride: int = 3,
        n_embeddings: int | None = None,
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            [PeriodDiscriminator(p, channels, kernel_size, stride, n_embeddings) for p in periods]
        )

    def forward(
        self, wav: torch.Tensor, condition: torch.Tensor | None = None
    ) -> list[DiscriminatorOutput]:
        """`[B, T]` → one output per period."""
        return [discriminator(wav, condition) for discriminator in self.discriminators]

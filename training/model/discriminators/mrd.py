"""The multi-resolution discriminator (UnivNet, as configured in Vocos).

Facts from `gemelo-ai/vocos: vocos/discriminators.py`: per resolution (n_fft, hop,
win) a magnitude STFT with a rectangular window ("interestingly rectangular window kind
of works here", Vocos) and centre padding, seen as a 1-channel image `[B, 1, bins,
frames]`; five weight-normalised 2-D convs with LeakyReLU(0.1) and a 3×3 output conv.
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
"""LeakyReLU slope of UnivNet / Vocos discriminators."""

_LAYERS = [
    # (kernel, stride, padding) over (bins, frames), as in Vocos' DiscriminatorR.
    ((7, 5), (2, 2), (3, 2)),
    ((5, 3), (2, 1), (2, 1)),
    ((5, 3), (2, 2), (2, 1)),
    ((3, 3), (2, 1), (1, 1)),
    ((3, 3), (2, 2), (1, 1)),
]


class ResolutionDiscriminator(nn.Module):
    """One resolution of the MRD.

    Args:
        resolution: (n_fft, hop_length, win_length) of the STFT.
        channels: width of every conv (published: 64).
        n_embeddings: rows of the conditional embedding, or None.
    """

    def __init__(
        self, resolution: tuple[int, int, int], channels: int = 64, n_embeddings: int | None = None
    ) -> None:
        super().__init__()
        self.resolution = tuple(resolution)
        in_channels = [1] + [channels] * (len(_LAYERS) - 1)
        self.convs = nn.ModuleList(
            [
                weight_norm(nn.Conv2d(c_in, channels, kernel, stride, padding))
                for c_in, (kernel, stride, padding) in zip(in_channels, _LAYERS, strict=True)
            ]
        )
        self.output_conv = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))
        self.embedding = conditional_embedding(n_embeddings, channels)

    def forward(
        self, wav: torch.Tensor, condition: torch.Tensor | None = None
    ) -> DiscriminatorOutput:
        """`[B, T]` → logits `[B, n]` and the maps of every conv and the output conv."""
        x = self.spectrogram(wav).unsqueeze(1)  # [B, 1, bins, frames]
        feature_maps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), _LEAKY_SLOPE)
            feature_maps.append(x)
        out = add_condition(self.output_conv(x), x, self.embedding, condition)
        feature_maps.append(out)
        return DiscriminatorOutput(torch.flatten(out, 1, -1), feature_maps)

    def spectrogram(self, wav: torch.Tensor) -> torch.Tensor:
        """Magnitude STFT: `[B, T]` → `[B, n_fft // 2 + 1, frames]`."""
        n_fft, hop_length, win_length = self.resolution
        # window=None in Vocos means rectangular; spelled out to say so (same values).
        window = torch.ones(win_length, device=wav.device, dtype=wav.dtype)
        spec = torch.stft(
            wav, n_fft, hop_length, win_length, window=window, center=True, return_complex=True
        )
        return spec.abs()


class MultiResolutionDiscriminator(nn.Module):
    """One `ResolutionDiscriminator` per STFT resolution.

    Args:
        resolutions: (n_fft, hop_length, win_length) of each (published: (1024, 256, 1024),
            (2048, 512, 2048), (512, 128, 512)).
        channels: conv width.
        n_embeddings: conditional embedding rows, or None.
    """

    def __init__(
        self,
        resolutions: list[tuple[int, int, int]],
        channels: int = 64,
        n_embeddings: int | None = None,
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            [ResolutionDiscriminator(r, channels, n_embeddings) for r in resolutions]
        )

    def forward(
        self, wav: torch.Tensor, condition: torch.Tensor | None = None
    ) -> list[DiscriminatorOutput]:
        """`[B, T]` → one output per resolution."""
        return [discriminator(wav, condition) for discriminator in self.discriminators]

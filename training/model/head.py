"""The ISTFT head: hidden frames → log-magnitude and phase of one STFT frame each → waveform."""

import torch
from torch import nn

from training.model.spectral import InverseSTFT

_MAX_MAGNITUDE = 1e2
"""Clip of exp(log-magnitude), Vocos' safeguard against exploding magnitudes (heads.py)."""


class ISTFTHead(nn.Module):
    """Linear H → n_fft + 2, split into log-magnitude and phase, inverse STFT ("same" padding).

    Args:
        dim: hidden width H.
        n_fft: FFT size (n_fft // 2 + 1 bins per frame).
        hop_length: samples per frame; equal to the encoder's hop.
    """

    def __init__(self, dim: int, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, n_fft + 2)
        self.istft = InverseSTFT(n_fft, hop_length)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Synthesize a waveform.

        Args:
            hidden: `[B, F, H]`.

        Returns:
            `[B, F · hop]` float32.
        """
        # The spectral part runs in float32 even under autocast: exp() and the irfft
        # lose too much in half precision, and CPU irfft has no half kernels.
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            x = self.linear(hidden.float()).transpose(1, 2)  # [B, n_fft + 2, F]
            log_magnitude, phase = x.chunk(2, dim=1)  # [B, n_fft/2 + 1, F] each
            magnitude = torch.exp(log_magnitude).clip(max=_MAX_MAGNITUDE)
            # mag·(cos p + i sin p), built from its real and imaginary parts as in Vocos.
            spec = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
            return self.istft(spec)

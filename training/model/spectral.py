"""Inverse STFT with "same" padding: F spectral frames → exactly F·hop samples.

`torch.istft` only supports `center=True` with a window, because its NOLA check fails
at the edges of "same" padding (pytorch/pytorch#62323); Vocos therefore writes the
inverse out: irfft per frame, Hann window, overlap-add (`F.fold`), trim (n_fft − hop) / 2
samples at each end, divide by the overlap-added squared window. This module does the
same computation, so published checkpoints decode to the reference's waveform.
"""

import torch
import torch.nn.functional as F
from torch import nn


class InverseSTFT(nn.Module):
    """Overlap-add inverse STFT with a periodic Hann window of n_fft samples.

    Args:
        n_fft: FFT size and window length; at least 2 × hop, n_fft − hop even.
        hop_length: samples between frames.

    Raises:
        ValueError: the window envelope would vanish somewhere inside the output.
    """

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.pad = (n_fft - hop_length) // 2
        self.register_buffer("window", torch.hann_window(n_fft))
        # The envelope is periodic in the hop; checking it once here replaces the
        # reference's per-call assert (a device sync on GPU).
        n_check = 2 * (n_fft // hop_length) + 1
        if float(self._envelope(n_check).min()) <= 1e-11:
            raise ValueError(
                f"InverseSTFT: n_fft={n_fft}, hop_length={hop_length} leave output samples "
                "without window overlap; use n_fft >= 2 * hop_length with an even difference"
            )

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex spectrogram `[B, n_fft // 2 + 1, F]` → waveform `[B, F · hop]`."""
        n_frames = spec.shape[-1]
        frames = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward")  # [B, n_fft, F]
        frames = frames * self.window[None, :, None]
        audio = self._overlap_add(frames, n_frames)[:, 0, 0]  # [B, (F-1)·hop + n_fft]
        end = audio.shape[-1] - self.pad
        return audio[:, self.pad : end] / self._envelope(n_frames)

    def _overlap_add(self, frames: torch.Tensor, n_frames: int) -> torch.Tensor:
        """`[B, n_fft, F]` → `[B, 1, 1, (F − 1) · hop + n_fft]`."""
        length = (n_frames - 1) * self.hop_length + self.n_fft
        return F.fold(
            frames,
            output_size=(1, length),
            kernel_size=(1, self.n_fft),
            stride=(1, self.hop_length),
        )

    def _envelope(self, n_frames: int) -> torch.Tensor:
        """Overlap-added squared window over the trimmed output: `[F · hop]`."""
        squares = self.window.square().expand(1, n_frames, -1).transpose(1, 2)  # [1, n_fft, F]
        envelope = self._overlap_add(squares, n_frames)[0, 0, 0]
        return envelope[self.pad : envelope.shape[-1] - self.pad]

"""Validation on held-out shards with soundscape metrics, computed here (nothing downloaded).

The reference selects models by speech metrics (UTMOS, PESQ, periodicity) that download
models at run time and say little about rain, insects or frogs. Here a pass reconstructs
every crop of the held-out shards (condition row 0, as in inference) and measures:

- `val/mel_distance`: L1 between log-mel spectrograms (the training mel loss);
- `val/stft_distance`: multi-resolution STFT distance, spectral convergence plus log
  magnitude L1 averaged over three resolutions (Yamamoto et al. 2020, Parallel WaveGAN);
- `val/si_sdr`: scale-invariant signal-to-distortion ratio, dB (Le Roux et al. 2019);
- `val/codebook_usage` and `val/codebook_perplexity`: over every frame of the pass.

Sums and counts are reduced over ranks once, after the pass (ranks may see one batch
more or less than each other).
"""

import contextlib
from collections.abc import Iterable

import torch

from shards import Batch
from training.codebook import usage_statistics
from training.distributed import all_reduce_sum
from training.losses import LogMelSpectrogram
from training.model import Generator

STFT_RESOLUTIONS = ((512, 128, 512), (1024, 256, 1024), (2048, 512, 2048))
"""(n_fft, hop_length, win_length) of the STFT distance: the MRD's resolutions."""

_EPS = 1e-8
"""Keeps silent crops finite in ratios and logs."""


def stft_distance(generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Multi-resolution STFT distance per crop.

    Args:
        generated: `[B, T]`.
        real: `[B, T]`.

    Returns:
        `[B]`: mean over resolutions of ‖|S| − |Ŝ|‖_F / ‖|S|‖_F + mean |log |S| − log |Ŝ||;
        0 for identical inputs.
    """
    distances = []
    for n_fft, hop, window_length in STFT_RESOLUTIONS:
        window = torch.hann_window(window_length, device=real.device)
        real_mag, fake_mag = (
            torch.stft(x.float(), n_fft, hop, window_length, window, return_complex=True).abs()
            for x in (real, generated)
        )  # [B, bins, frames]
        convergence = (real_mag - fake_mag).flatten(1).norm(dim=1) / (
            real_mag.flatten(1).norm(dim=1) + _EPS
        )
        log_distance = (torch.log(real_mag + _EPS) - torch.log(fake_mag + _EPS)).abs()
        distances.append(convergence + log_distance.flatten(1).mean(dim=1))
    return torch.stack(distances).mean(dim=0)


def si_sdr(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale-invariant SDR per crop, dB (both signals made zero-mean first).

    Args:
        estimate: `[B, T]`.
        target: `[B, T]`.

    Returns:
        `[B]`: 10·log10(‖α·s‖² / ‖ŝ − α·s‖²) with α = ⟨ŝ, s⟩ / ‖s‖²; very large for a
        scaled copy, around −∞..0 for unrelated noise.
    """
    estimate = estimate.float() - estimate.float().mean(dim=1, keepdim=True)
    target = target.float() - target.float().mean(dim=1, keepdim=True)
    alpha = (estimate * target).sum(dim=1, keepdim=True) / (
        target.pow(2).sum(dim=1, keepdim=True) + _EPS
    )
    projection = alpha * target
    noise = estimate - projection
    ratio = (projection.pow(2).sum(dim=1) + _EPS) / (noise.pow(2).sum(dim=1) + _EPS)
    return 10 * torch.log10(ratio)


@torch.no_grad()
def evaluate(
    generator: Generator,
    batches: Iterable[Batch],
    log_mel: LogMelSpectrogram,
    device: torch.device,
    max_batches: int | None,
    autocast: contextlib.AbstractContextManager | None = None,
) -> dict[str, float]:
    """One validation pass; every rank calls it, the result is the same on all.

    Args:
        generator: the (unwrapped) generator; put in eval mode for the pass and restored.
        batches: this rank's validation batches.
        log_mel: the log-mel transform of the mel distance.
        device: where to compute.
        max_batches: stop after this many batches on this rank (None: all).
        autocast: the training autocast context (None: full precision).

    Returns:
        `val/*` metrics (see the module docstring) and `val/n_crops`.
    """
    was_training = generator.training
    generator.eval()
    codebook_size = generator.quantizer.codebook_size
    # mel, stft, si-sdr sums and the crop count, then code counts: one all-reduce.
    totals = torch.zeros(4 + codebook_size, device=device, dtype=torch.float64)
    for index, batch in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        real = batch.wav.to(device, non_blocking=True)
        with autocast or contextlib.nullcontext():
            output = generator(real, condition=0)
        generated = output.audio.float()
        mel = (log_mel(generated) - log_mel(real)).abs().flatten(1).mean(dim=1)  # [B]
        totals[0] += mel.sum().double()
        totals[1] += stft_distance(generated, real).sum().double()
        totals[2] += si_sdr(generated, real).sum().double()
        totals[3] += real.shape[0]
        totals[4:] += torch.bincount(output.codes.flatten(), minlength=codebook_size).double()
    all_reduce_sum(totals)
    generator.train(was_training)
    n_crops = max(float(totals[3]), 1.0)
    usage = usage_statistics(totals[4:].float())
    return {
        "val/mel_distance": float(totals[0]) / n_crops,
        "val/stft_distance": float(totals[1]) / n_crops,
        "val/si_sdr": float(totals[2]) / n_crops,
        "val/codebook_usage": float(usage["codebook/usage"]),
        "val/codebook_perplexity": float(usage["codebook/perplexity"]),
        "val/n_crops": float(totals[3]),
    }

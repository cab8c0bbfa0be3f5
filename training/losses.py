"""The WavTokenizer training losses, as pure functions returning `{log key: scalar tensor}`.

Formulas are the reference's (`jishengpeng/WavTokenizer: decoder/loss.py`, from Vocos and
DAC): 45 × log-mel L1 and 1000 × commitment for reconstruction; hinge losses and feature
matching for MPD and MRD, each averaged over its sub-discriminators; least squares and
feature matching for the DAC discriminator, summed over its sub-discriminators. The keys
(`loss/mel`, `loss/gen_mpd`, `loss/fm_dac`, `loss/disc_mrd`, ...) are the metric names of
metrics.jsonl and the names of the weights in `LossConfig`; a total is
Σ weight[key] · term[key] (`weighted_total`).

Every term is computed in float32, whatever the autocast dtype of its inputs.
"""

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn
from torchaudio.transforms import MelSpectrogram

from training.model import DiscriminatorOutput

Outputs = Mapping[str, list[DiscriminatorOutput]]
"""Discriminator name (`mpd`, `mrd`, `dac`) → one output per sub-discriminator."""

FeatureMaps = Mapping[str, list[list[torch.Tensor]]]
"""Discriminator name → per sub-discriminator, its feature maps."""

LEAST_SQUARES = frozenset({"dac"})
"""Discriminators trained with least squares (DAC); the others use the hinge loss (Vocos)."""

_LOG_FLOOR = 1e-7
"""Vocos' `safe_log` clamps magnitudes at 1e-7 before the log."""


class LogMelSpectrogram(nn.Module):
    """Log-mel magnitudes as in the reference's mel loss: `[B, T]` → `[B, n_mels, frames]`.

    Defaults are the reference's `MelSpecReconstructionLoss`: n_fft 1024, hop 256, 100
    mels, magnitude (power 1), centred frames, natural log of values clamped at 1e-7.

    Args:
        sample_rate: Hz.
        n_fft: FFT size (and Hann window length).
        hop_length: samples between frames.
        n_mels: mel bands.
    """

    def __init__(
        self, sample_rate: int, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 100
    ) -> None:
        super().__init__()
        self.mel = MelSpectrogram(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            center=True,
            power=1,
        )

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        """`[B, T]` → `[B, n_mels, T // hop + 1]` float32."""
        with torch.autocast(device_type=wav.device.type, enabled=False):
            return torch.log(self.mel(wav.float()).clamp(min=_LOG_FLOOR))


def reconstruction_losses(
    log_mel: LogMelSpectrogram,
    generated: torch.Tensor,
    real: torch.Tensor,
    commitment: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Mel L1 between the generated and real waveforms, and the VQ commitment loss.

    Args:
        log_mel: the log-mel transform.
        generated: `[B, T]` decoder output.
        real: `[B, T]` input.
        commitment: scalar MSE(latents, quantized), from the generator.

    Returns:
        `loss/mel` and `loss/commit`.
    """
    mel = F.l1_loss(log_mel(generated), log_mel(real))
    return {"loss/mel": mel, "loss/commit": commitment.float()}


def discriminator_losses(real: Outputs, generated: Outputs) -> dict[str, torch.Tensor]:
    """What the discriminators minimise: real scored high, generated low.

    Hinge (MPD, MRD): mean(relu(1 − D(x))) + mean(relu(1 + D(x̂))), averaged over the
    sub-discriminators. Least squares (DAC): mean((1 − D(x))²) + mean(D(x̂)²), summed.

    Args:
        real: outputs on real audio.
        generated: outputs on (detached) generated audio.

    Returns:
        `loss/disc_<name>` for every discriminator.
    """
    terms = {}
    for name, real_outputs in real.items():
        per_sub = []
        for real_out, fake_out in zip(real_outputs, generated[name], strict=True):
            real_logits, fake_logits = real_out.logits.float(), fake_out.logits.float()
            if name in LEAST_SQUARES:
                per_sub.append(((1 - real_logits) ** 2).mean() + (fake_logits**2).mean())
            else:
                per_sub.append(F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())
        terms[f"loss/disc_{name}"] = _combine(name, per_sub)
    return terms


def generator_losses(generated: Outputs, real_maps: FeatureMaps) -> dict[str, torch.Tensor]:
    """What the generator minimises against the discriminators: adversarial + feature matching.

    Adversarial: hinge mean(relu(1 − D(x̂))) for MPD and MRD, least squares
    mean((1 − D(x̂))²) for DAC. Feature matching: Σ over maps of mean |f(x) − f(x̂)|.
    MPD and MRD terms are averaged over sub-discriminators, DAC terms summed.

    Args:
        generated: outputs on generated audio (with the graph back to the generator).
        real_maps: feature maps of the same discriminators on real audio (detached).

    Returns:
        `loss/gen_<name>` and `loss/fm_<name>` for every discriminator.
    """
    terms = {}
    for name, outputs in generated.items():
        adversarial, matching = [], []
        for fake_out, real_sub_maps in zip(outputs, real_maps[name], strict=True):
            logits = fake_out.logits.float()
            if name in LEAST_SQUARES:
                adversarial.append(((1 - logits) ** 2).mean())
            else:
                adversarial.append(F.relu(1 - logits).mean())
            matching.append(
                sum(
                    (real.float() - fake.float()).abs().mean()
                    for real, fake in zip(real_sub_maps, fake_out.feature_maps, strict=True)
                )
            )
        terms[f"loss/gen_{name}"] = _combine(name, adversarial)
        terms[f"loss/fm_{name}"] = _combine(name, matching)
    return terms


def detached_feature_maps(outputs: Outputs) -> dict[str, list[list[torch.Tensor]]]:
    """The feature maps of `outputs`, detached: feature-matching targets."""
    return {
        name: [[fmap.detach() for fmap in out.feature_maps] for out in subs]
        for name, subs in outputs.items()
    }


def weighted_total(terms: Mapping[str, torch.Tensor], weights: Mapping[str, float]) -> torch.Tensor:
    """Σ weights[key] · terms[key] over the terms given.

    Raises:
        KeyError: a term has no weight.
    """
    total = sum(weights[key] * value for key, value in terms.items())
    return torch.as_tensor(total) if not isinstance(total, torch.Tensor) else total


def _combine(name: str, values: list[torch.Tensor]) -> torch.Tensor:
    """Sum (least-squares discriminators, as DAC) or mean (hinge ones, as Vocos) of sub-losses."""
    total = torch.stack(values).sum()
    return total if name in LEAST_SQUARES else total / len(values)

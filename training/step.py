"""One optimizer step of the GAN over k micro-batches, with the order written out.

For each micro-batch:

1. the generator runs once (the step's only generator forward for that micro-batch);
2. discriminator micro-step: the discriminators score the real audio and the generated
   audio *detached*; their loss / k is back-propagated into the discriminators only;
3. generator micro-step: the discriminators, frozen and outside DDP, score the generated
   audio again, now with the graph back to the generator; the reconstruction,
   adversarial and feature-matching losses / k are back-propagated into the generator.
   Feature-matching targets are the real-audio maps of step 2 (same discriminator
   weights, so no second pass over real audio).

Then the discriminators are clipped and stepped, then the generator. Both players'
gradients are taken at the same weights (a simultaneous GAN step): that is what lets one
generator forward serve both while memory stays bounded by one micro-batch. The
reference (Lightning's alternation) runs the generator twice per batch and takes the
generator's gradient after the discriminator's update; here the generator sees the
discriminators of one update earlier. Because every loss is a mean over the batch and
every layer works per sample, k micro-batches of B give the gradients of one batch of
k·B (`tests/training/test_accumulation.py`).

Non-final micro-batches run under DDP's `no_sync`, so gradients are all-reduced once per
step. With fp16 every backward goes through the GradScaler, and gradients are unscaled
before clipping (PyTorch AMP recipe for several models and optimizers).
"""

import contextlib
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from training.codebook import CodebookStatistics
from training.distributed import no_sync, unwrap
from training.losses import (
    LogMelSpectrogram,
    detached_feature_maps,
    discriminator_losses,
    generator_losses,
    reconstruction_losses,
    weighted_total,
)
from training.state import TrainState


@dataclass(frozen=True)
class StepSettings:
    """What stays fixed from step to step.

    Attributes:
        weights: loss log key → weight.
        grad_clip_generator: max generator grad norm (None: no clipping).
        grad_clip_discriminator: max discriminator grad norm (None: no clipping).
        autocast: makes the autocast context of a forward pass.
        log_mel: the mel loss's transform.
    """

    weights: Mapping[str, float]
    grad_clip_generator: float | None
    grad_clip_discriminator: float | None
    autocast: Callable[[], contextlib.AbstractContextManager]
    log_mel: LogMelSpectrogram


def train_step(
    state: TrainState,
    micro_batches: list[torch.Tensor],
    condition: torch.Tensor,
    adversarial: bool,
    settings: StepSettings,
    statistics: CodebookStatistics,
    quantize: bool = True,
) -> dict[str, torch.Tensor]:
    """Accumulate gradients over the micro-batches, then step the discriminators and generator.

    Args:
        state: models, optimizers and scaler (learning rates already set).
        micro_batches: k waveform batches `[B, T]` on the training device.
        condition: int64 `[1]`, the AdaLayerNorm row of this step (also given to
            conditional discriminators).
        adversarial: train against the discriminators (False during mel-only warm-up:
            no discriminator step, reconstruction losses only).
        settings: loss weights, clipping, autocast, mel transform.
        statistics: receives each micro-batch's codebook assignments.
        quantize: decode codebook vectors (False during the unquantized warm-up).

    Returns:
        Detached scalars, averaged over micro-batches: every loss term, `loss/total_g`,
        `loss/total_d` (adversarial steps), and `grad_norm/generator`,
        `grad_norm/discriminator` before clipping.
    """
    generator, discriminators = state.generator, state.discriminators
    critic = unwrap(discriminators)
    quantizer = unwrap(generator).quantizer
    n = len(micro_batches)
    state.generator_optimizer.zero_grad(set_to_none=True)
    state.discriminator_optimizer.zero_grad(set_to_none=True)
    logged: dict[str, torch.Tensor] = {}
    for index, real in enumerate(micro_batches):
        is_last = index == n - 1
        with no_sync([generator, discriminators], enabled=not is_last):
            with settings.autocast():
                output = generator(real, condition=condition, quantize=quantize)
            statistics.add(quantizer, output.latents, output.codes)
            terms: dict[str, torch.Tensor] = {}

            # Discriminator micro-step, on the generated audio detached.
            real_maps = None
            if adversarial:
                with settings.autocast():
                    real_scores = discriminators(real, condition)
                    fake_scores = discriminators(output.audio.detach(), condition)
                disc_terms = discriminator_losses(real_scores, fake_scores)
                disc_total = weighted_total(disc_terms, settings.weights)
                state.scaler.scale(disc_total / n).backward()
                real_maps = detached_feature_maps(real_scores)
                del real_scores, fake_scores
                terms.update(disc_terms)
                terms["loss/total_d"] = disc_total

            # Generator micro-step, against the discriminators as they are (frozen).
            # Unquantized, the commitment still trains: it keeps the latents' scale in
            # check (without it they grew to norms of hundreds and the window features
            # separated the example's sources worse: RESULTS.md).
            gen_terms = reconstruction_losses(
                settings.log_mel, output.audio, real, output.commitment_loss
            )
            with frozen(critic):
                if adversarial:
                    with settings.autocast():
                        scores = critic(output.audio, condition)
                    gen_terms.update(generator_losses(scores, real_maps))
                gen_total = weighted_total(gen_terms, settings.weights)
                state.scaler.scale(gen_total / n).backward()
            terms.update(gen_terms)
            terms["loss/total_g"] = gen_total
        for key, value in terms.items():
            logged[key] = logged.get(key, 0.0) + value.detach() / n

    if adversarial:
        logged["grad_norm/discriminator"] = _clip_and_step(
            state, state.discriminator_optimizer, critic, settings.grad_clip_discriminator
        )
    logged["grad_norm/generator"] = _clip_and_step(
        state, state.generator_optimizer, unwrap(generator), settings.grad_clip_generator
    )
    state.scaler.update()
    return logged


def _clip_and_step(
    state: TrainState, optimizer: torch.optim.Optimizer, module: nn.Module, max_norm: float | None
) -> torch.Tensor:
    """Unscale, clip to `max_norm`, step (skipped by the scaler if gradients are not finite)."""
    state.scaler.unscale_(optimizer)
    parameters = [p for p in module.parameters() if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(parameters, math.inf if max_norm is None else max_norm)
    state.scaler.step(optimizer)
    return norm.detach()


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of `module` need no gradient inside (restored afterwards)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for parameter, _ in flags:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in flags:
            parameter.requires_grad_(flag)

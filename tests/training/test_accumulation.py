"""Gradient accumulation: k micro-batches give the gradients of one batch k times as large.

Every loss is a mean over the batch and every layer works per sample (GroupNorm,
attention, LSTM and the discriminators' normalisation all act within one sample), so
Σ_i ∇L(batch_i) / k = ∇L(concatenated batch) in exact arithmetic. In float32 the sums
run in another order, so gradients agree to rounding (tolerances below). Dropout is
switched off: its masks would differ between the two splits.
"""

import copy

import pytest
import torch

from tests.training.conftest import seed_codebook
from tests.training.trainer_config import tiny_train_config
from training.codebook import CodebookStatistics
from training.losses import LogMelSpectrogram
from training.model import build_discriminators, build_generator
from training.precision import autocast, make_scaler
from training.state import TrainState
from training.step import StepSettings, train_step

RELATIVE_TOLERANCE = 1e-3
"""Per tensor, against its largest entry; measured: at most 1.4e-4, on weight-norm
magnitudes whose small gradients are sums of larger cancelling terms."""
GLOBAL_TOLERANCE = 1e-5
"""‖Δ‖ / ‖∇‖ over every gradient of a model; measured: 1e-7 (generator), 1e-6 (discriminators)."""


def _state(config) -> TrainState:
    torch.manual_seed(3)
    generator = build_generator(config.model)
    seed_codebook(generator)
    discriminators = build_discriminators(config.model)
    return TrainState(
        config=config,
        generator=generator,
        discriminators=discriminators,
        generator_optimizer=torch.optim.AdamW(generator.parameters()),
        discriminator_optimizer=torch.optim.AdamW(discriminators.parameters()),
        scaler=make_scaler(torch.device("cpu"), None),
    )


def _gradients(state: TrainState) -> dict[str, torch.Tensor]:
    grads = {}
    for prefix, module in (("g.", state.generator), ("d.", state.discriminators)):
        for name, parameter in module.named_parameters():
            if parameter.grad is not None:
                grads[prefix + name] = parameter.grad.clone()
    return grads


@pytest.mark.parametrize("adversarial", [False, True])
def test_k_micro_batches_give_the_gradients_of_one_k_times_larger_batch(adversarial):
    config = tiny_train_config("model.backbone.dropout=0")
    settings = StepSettings(
        weights=config.losses.weights(),
        grad_clip_generator=None,
        grad_clip_discriminator=None,
        autocast=lambda: autocast(torch.device("cpu"), None),
        log_mel=LogMelSpectrogram(config.model.sample_rate),
    )
    wav = 0.3 * torch.randn(4, 6000, generator=torch.Generator().manual_seed(5))
    condition = torch.tensor([2])
    whole, split = _state(config), _state(config)
    stats_whole = CodebookStatistics.empty(whole.generator.quantizer, 8, seed=0)
    stats_split = CodebookStatistics.empty(split.generator.quantizer, 8, seed=0)

    terms_whole = train_step(whole, [wav], condition, adversarial, settings, stats_whole)
    micro_batches = list(wav.split(2))
    terms_split = train_step(split, micro_batches, condition, adversarial, settings, stats_split)

    grads_whole, grads_split = _gradients(whole), _gradients(split)
    assert grads_whole.keys() == grads_split.keys()
    assert any(key.startswith("d.") for key in grads_whole) == adversarial
    for key, expected in grads_whole.items():
        scale = expected.abs().max().clamp(min=1e-12)
        difference = (grads_split[key] - expected).abs().max()
        assert difference <= RELATIVE_TOLERANCE * scale, key
    for prefix in ("g.", "d.") if adversarial else ("g.",):
        keys = [key for key in grads_whole if key.startswith(prefix)]
        whole_vector = torch.cat([grads_whole[key].flatten() for key in keys])
        split_vector = torch.cat([grads_split[key].flatten() for key in keys])
        error = (split_vector - whole_vector).norm() / whole_vector.norm()
        assert error <= GLOBAL_TOLERANCE, prefix
    for key in terms_whole:
        assert terms_split[key] == pytest.approx(float(terms_whole[key]), rel=1e-4), key
    assert torch.equal(stats_whole.counts, stats_split.counts)
    assert torch.allclose(stats_whole.sums, stats_split.sums, rtol=1e-5, atol=1e-6)


def test_the_discriminators_are_frozen_only_while_the_generator_learns():
    config = tiny_train_config()
    state = _state(config)
    before = copy.deepcopy(state.discriminators.state_dict())
    settings = StepSettings(
        weights=config.losses.weights(),
        grad_clip_generator=1.0,
        grad_clip_discriminator=1.0,
        autocast=lambda: autocast(torch.device("cpu"), None),
        log_mel=LogMelSpectrogram(config.model.sample_rate),
    )
    statistics = CodebookStatistics.empty(state.generator.quantizer, 8, seed=0)
    wav = 0.3 * torch.randn(2, 6000)
    terms = train_step(state, [wav], torch.tensor([0]), True, settings, statistics)
    assert all(p.requires_grad for p in state.discriminators.parameters())
    # Every discriminator, DAC's included, got gradients and moved.
    for name in ("mpd", "mrd", "dac"):
        assert all(p.grad is not None for p in state.discriminators[name].parameters()), name
        changed = [
            key
            for key, value in state.discriminators.state_dict().items()
            if key.startswith(name) and not torch.equal(value, before[key])
        ]
        assert changed, name
    assert {"loss/disc_dac", "loss/gen_dac", "loss/fm_dac", "loss/total_d"} <= terms.keys()
    assert float(terms["grad_norm/discriminator"]) > 0

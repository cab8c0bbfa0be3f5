"""Reduced precision and activation checkpointing: the same code paths, measured on the CPU."""

import math

import pytest
import torch

import training
from tests.training.conftest import seed_codebook
from tests.training.trainer_config import tiny_train_config
from training.activation_checkpointing import enable_activation_checkpointing
from training.checkpoint import read_checkpoint_file
from training.codebook import CodebookStatistics
from training.losses import LogMelSpectrogram
from training.model import build_discriminators, build_generator
from training.precision import autocast, make_scaler, resolve_precision
from training.state import TrainState
from training.step import StepSettings, train_step


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_reduced_precision_run_trains_and_saves_its_scaler(precision, soundscape_out, tmp_path):
    config = tiny_train_config(f"precision={precision}", "optim.max_steps=2")
    result = training.train(config, shards=soundscape_out, run_dir=str(tmp_path / "run"))
    assert math.isfinite(result.metrics["loss/total_g"])
    assert math.isfinite(result.metrics["val/mel_distance"])
    scaler = read_checkpoint_file(result.checkpoint)["scaler"]
    # fp16 scales the losses (GradScaler); bf16 has fp32's range and needs no scaler.
    assert ("scale" in scaler) == (precision == "fp16")


def test_auto_precision_is_fp32_on_a_cpu():
    assert resolve_precision("auto", torch.device("cpu")) is None
    assert resolve_precision("bf16", torch.device("cpu")) is torch.bfloat16


def _gradients_after_one_step(checkpointing: bool) -> dict[str, torch.Tensor]:
    config = tiny_train_config()  # dropout on: checkpointing must replay the same masks
    torch.manual_seed(4)
    generator = build_generator(config.model)
    seed_codebook(generator)
    discriminators = build_discriminators(config.model)
    if checkpointing:
        assert enable_activation_checkpointing(generator, discriminators) > 0
    state = TrainState(
        config=config,
        generator=generator,
        discriminators=discriminators,
        generator_optimizer=torch.optim.AdamW(generator.parameters()),
        discriminator_optimizer=torch.optim.AdamW(discriminators.parameters()),
        scaler=make_scaler(torch.device("cpu"), None),
    )
    settings = StepSettings(
        weights=config.losses.weights(),
        grad_clip_generator=None,
        grad_clip_discriminator=None,
        autocast=lambda: autocast(torch.device("cpu"), None),
        log_mel=LogMelSpectrogram(24000),
    )
    wav = 0.3 * torch.randn(2, 6000, generator=torch.Generator().manual_seed(8))
    statistics = CodebookStatistics.empty(generator.quantizer, 8, seed=0)
    torch.manual_seed(5)
    train_step(state, [wav], torch.tensor([1]), True, settings, statistics)
    return {
        name: p.grad.clone()
        for module in (generator, discriminators)
        for name, p in module.named_parameters()
        if p.grad is not None
    }


def test_activation_checkpointing_gives_the_same_gradients():
    plain, recomputed = _gradients_after_one_step(False), _gradients_after_one_step(True)
    assert plain.keys() == recomputed.keys()
    for name, gradient in plain.items():
        assert torch.allclose(recomputed[name], gradient, rtol=1e-5, atol=1e-7), name


def test_checkpointing_leaves_the_state_dict_keys_alone(tiny_config):
    generator = build_generator(tiny_config)
    keys = list(generator.state_dict())
    enable_activation_checkpointing(generator)
    assert list(generator.state_dict()) == keys

"""Loss formulas on hand-built discriminator outputs, and the weighted total."""

import pytest
import torch

from sonotype.config.train import LossConfig
from training.losses import (
    LogMelSpectrogram,
    discriminator_losses,
    generator_losses,
    reconstruction_losses,
    weighted_total,
)
from training.model import DiscriminatorOutput


def _out(logits: list[float], maps: list[list[float]]) -> DiscriminatorOutput:
    return DiscriminatorOutput(torch.tensor(logits), [torch.tensor(m) for m in maps])


def test_hinge_losses_average_and_least_squares_losses_sum_over_sub_discriminators():
    real = {
        "mpd": [_out([2.0, 0.0], [[1.0]]), _out([0.5, 0.5], [[0.0]])],
        "dac": [_out([1.0, 0.0], [[2.0, 2.0]]), _out([0.5, 0.5], [[1.0]])],
    }
    fake = {
        "mpd": [_out([-2.0, 1.0], [[3.0]]), _out([0.0, 0.0], [[1.0]])],
        "dac": [_out([0.0, 1.0], [[0.0, 1.0]]), _out([0.5, 0.5], [[1.0]])],
    }
    terms = discriminator_losses(real, fake)
    # mpd sub 1: relu(1-2), relu(1-0) → 0.5; relu(1-2), relu(1+1) → 1.0; sub 2: 0.5 + 1.0.
    assert float(terms["loss/disc_mpd"]) == pytest.approx(((0.5 + 1.0) + (0.5 + 1.0)) / 2)
    # dac sub 1: mean((1-r)²) = 0.5, mean(f²) = 0.5; sub 2: 0.25 + 0.25; summed.
    assert float(terms["loss/disc_dac"]) == pytest.approx(1.0 + 0.5)

    maps = {name: [[m for m in out.feature_maps] for out in outs] for name, outs in real.items()}
    gen = generator_losses(fake, maps)
    # mpd: mean(relu(1-f)) = (3 + 0)/2 = 1.5 and 1.0 → mean 1.25; fm |1-3| = 2, |0-1| = 1 → 1.5.
    assert float(gen["loss/gen_mpd"]) == pytest.approx(1.25)
    assert float(gen["loss/fm_mpd"]) == pytest.approx(1.5)
    # dac: mean((1-f)²) = 0.5 and 0.25 → 0.75; fm mean(|2-0|, |2-1|) = 1.5 and 0 → 1.5.
    assert float(gen["loss/gen_dac"]) == pytest.approx(0.75)
    assert float(gen["loss/fm_dac"]) == pytest.approx(1.5)


def test_reconstruction_losses_vanish_for_a_perfect_copy():
    log_mel = LogMelSpectrogram(24000)
    wav = 0.1 * torch.randn(2, 12000)
    terms = reconstruction_losses(log_mel, wav, wav.clone(), torch.tensor(0.0))
    assert float(terms["loss/mel"]) == 0.0
    louder = reconstruction_losses(log_mel, 2 * wav, wav, torch.tensor(0.0))
    # Twice the magnitude is log 2 more in every (non-floored) mel bin.
    assert float(louder["loss/mel"]) == pytest.approx(torch.log(torch.tensor(2.0)).item(), 1e-3)


def test_log_mel_has_the_reference_shape():
    assert LogMelSpectrogram(24000)(torch.zeros(3, 24000)).shape == (3, 100, 24000 // 256 + 1)


def test_weighted_total_uses_the_config_weights_by_log_key():
    weights = LossConfig(mel=45, commit=1000).weights()
    terms = {"loss/mel": torch.tensor(0.5), "loss/commit": torch.tensor(0.01)}
    assert float(weighted_total(terms, weights)) == pytest.approx(45 * 0.5 + 1000 * 0.01)
    assert set(weights) >= {"loss/gen_mrd", "loss/fm_dac", "loss/disc_mpd"}
    assert "loss/mel_only_warmup_steps" not in weights
    with pytest.raises(KeyError):
        weighted_total({"loss/unknown": torch.tensor(1.0)}, weights)

"""Discriminators: output structure, shapes derived by hand, DAC input normalisation."""

import math

import numpy as np
import pytest
import torch

from training.model import build_discriminators
from training.model.discriminators.dac import DacBandDiscriminator, DacDiscriminator
from training.model.discriminators.mpd import MultiPeriodDiscriminator, PeriodDiscriminator
from training.model.discriminators.mrd import MultiResolutionDiscriminator


def _strided(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def test_period_discriminator_shapes_by_hand():
    channels = [8, 16, 32, 32]
    disc = PeriodDiscriminator(3, channels)
    wav = torch.randn(2, 1000)  # 1000 = 333·3 + 1 → reflect-padded to 1002, folded [334, 3]
    logits, maps = disc(wav)
    rows = 334
    for _ in range(3):  # three strided (5, 1) convs, stride 3, padding 2
        rows = _strided(rows, 5, 3, 2)
    assert logits.shape == (2, rows * 3)
    # Feature maps: convs 2..4 and the output conv (Vocos leaves the first out).
    assert [m.shape[1] for m in maps] == [16, 32, 32, 1]


def test_resolution_discriminator_shapes_by_hand():
    disc = MultiResolutionDiscriminator([(512, 128, 512)], channels=8)
    [(logits, maps)] = disc(torch.randn(2, 4000))
    bins, frames = 512 // 2 + 1, 4000 // 128 + 1  # centred STFT
    for kernel, stride, padding in [((7, 5), (2, 2), (3, 2)), ((5, 3), (2, 1), (2, 1)),
                                    ((5, 3), (2, 2), (2, 1)), ((3, 3), (2, 1), (1, 1)),
                                    ((3, 3), (2, 2), (1, 1))]:  # fmt: skip
        bins = _strided(bins, kernel[0], stride[0], padding[0])
        frames = _strided(frames, kernel[1], stride[1], padding[1])
    assert logits.shape == (2, bins * frames)
    assert len(maps) == 6


def test_dac_period_pads_a_whole_period_even_when_the_length_divides():
    disc = DacDiscriminator([2], [4, 8], fft_sizes=[], bands=[(0.0, 1.0)])
    [(score, maps)] = disc(torch.randn(1, 100))
    rows = _strided(51, 5, 3, 2)  # DAC pads 2 − 100 mod 2 = 2 samples: 102 / 2 = 51 rows
    assert score.shape == (1, 1, rows, 2)
    assert len(maps) == 2


def test_dac_band_spectrogram_is_the_real_and_imaginary_stft():
    disc = DacBandDiscriminator(64, [(0.0, 1.0)], channels=4)
    wav = torch.randn(1, 1, 300, dtype=torch.float64)
    spec = disc.spectrogram(wav)  # [B, 2, frames, bins]
    x = np.pad(wav[0, 0].numpy(), 32, mode="reflect")  # centre padding, n_fft / 2
    frames = np.stack([x[i : i + 64] for i in range(0, len(x) - 63, 16)])  # hop 64 / 4
    expected = np.fft.rfft(frames, axis=-1)  # rectangular window
    np.testing.assert_allclose(spec[0, 0].numpy(), expected.real, atol=1e-9)
    np.testing.assert_allclose(spec[0, 1].numpy(), expected.imag, atol=1e-9)


def test_dac_band_discriminator_splits_bins_into_bands():
    bands = [(0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)]
    disc = DacBandDiscriminator(512, bands)
    # int(fraction · 257 bins), as DAC computes them
    assert disc.bands == [(0, 25), (25, 64), (64, 128), (128, 192), (192, 257)]
    score, maps = disc(torch.randn(2, 1, 3000))
    assert len(maps) == 5 * 5
    widths = [math.ceil(math.ceil(math.ceil((hi - lo) / 2) / 2) / 2) for lo, hi in disc.bands]
    assert score.shape == (2, 1, 3000 // 128 + 1, sum(widths))


def test_dac_discriminator_ignores_offset_and_level():
    disc = DacDiscriminator([2, 3], [4, 8], [256], [(0.0, 0.5), (0.5, 1.0)], 4)
    wav = torch.randn(2, 2000, dtype=torch.float64)
    disc = disc.double()
    for (a, _), (b, _) in zip(disc(wav), disc(3.0 * wav + 0.25), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)


def test_conditional_embeddings_start_neutral():
    plain = MultiPeriodDiscriminator([2], [4, 8])
    assert plain.discriminators[0].embedding is None
    conditional = MultiPeriodDiscriminator([2], [4, 8], n_embeddings=4)
    conditional.load_state_dict(plain.state_dict(), strict=False)
    wav = torch.randn(1, 500)
    condition = torch.tensor([1])
    torch.testing.assert_close(conditional(wav, condition)[0].logits, plain(wav)[0].logits)
    with torch.no_grad():
        conditional.discriminators[0].embedding.weight.fill_(1.0)
    assert not torch.allclose(conditional(wav, condition)[0].logits, plain(wav)[0].logits)


def test_configured_discriminators_score_a_batch(tiny_config):
    discriminators = build_discriminators(tiny_config)
    assert list(discriminators) == ["mpd", "mrd", "dac"]
    wav = torch.randn(2, 12000, requires_grad=True)
    outputs = discriminators(wav)
    assert [len(outputs[name]) for name in ("mpd", "mrd", "dac")] == [5, 2, 3 + 2]
    total = sum(o.logits.mean() for name in outputs for o in outputs[name])
    total.backward()
    assert wav.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["mpd", "mrd", "dac"])
def test_a_discriminator_set_to_null_is_not_built(tiny_config, name):
    config = tiny_config.model_copy(
        update={"discriminators": tiny_config.discriminators.model_copy(update={name: None})}
    )
    assert name not in build_discriminators(config)

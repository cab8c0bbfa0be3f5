"""Validation metrics on constructed signals, and a pass over held-out shards."""

import math

import torch

from shards import ShardIndex, ShardLoader
from shards.select import SegmentFilter
from tests.training.trainer_config import tiny_train_config
from training.losses import LogMelSpectrogram
from training.validation import evaluate, si_sdr, stft_distance


def _signal(n: int = 24000, seed: int = 0) -> torch.Tensor:
    t = torch.arange(n) / 24000
    noise = 0.05 * torch.randn(2, n, generator=torch.Generator().manual_seed(seed))
    return 0.5 * torch.sin(2 * math.pi * 440 * t) + noise


def test_si_sdr_of_a_scaled_copy_is_huge_and_of_noise_is_low():
    target = _signal()
    assert (si_sdr(0.3 * target, target) > 60).all()
    unrelated = torch.randn(2, 24000, generator=torch.Generator().manual_seed(9))
    assert (si_sdr(unrelated, target) < -10).all()
    # Half the target plus equal-power independent noise: about 0 dB.
    half = target - target.mean(dim=1, keepdim=True)
    noise = unrelated / unrelated.norm(dim=1, keepdim=True) * half.norm(dim=1, keepdim=True)
    assert torch.allclose(si_sdr(half + noise, target), torch.zeros(2), atol=0.5)


def test_stft_distance_is_zero_for_identical_signals_and_grows_with_error():
    target = _signal()
    assert torch.equal(stft_distance(target, target), torch.zeros(2))
    slight = stft_distance(target + 0.01 * _signal(seed=1), target)
    large = stft_distance(_signal(seed=2) * 0.1, target)
    assert (slight > 0).all()
    assert (large > slight).all()


def test_a_validation_pass_counts_every_crop_and_every_code(soundscape_out, tiny_generator):
    config = tiny_train_config()
    index = ShardIndex.from_catalog(soundscape_out, SegmentFilter())
    loader = ShardLoader(index, config.data, mode="eval", hop_samples=600)
    values = evaluate(tiny_generator, loader, LogMelSpectrogram(24000), torch.device("cpu"), None)
    # 11 segments x 2 crops each.
    assert values["val/n_crops"] == 22
    assert 0 < values["val/codebook_usage"] <= 1
    assert 1 <= values["val/codebook_perplexity"] <= 512
    assert values["val/mel_distance"] > 0
    limited = evaluate(tiny_generator, loader, LogMelSpectrogram(24000), torch.device("cpu"), 2)
    assert limited["val/n_crops"] == 4

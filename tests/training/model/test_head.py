"""ISTFT head: output length, the magnitude clip, float32 under autocast."""

import torch

from training.model.head import ISTFTHead


def test_head_output_is_f_times_hop_samples():
    head = ISTFTHead(32, 1280, 320)
    assert head(torch.randn(2, 9, 32)).shape == (2, 9 * 320)


def test_head_clips_magnitudes_at_one_hundred():
    head = ISTFTHead(8, 64, 16)
    with torch.no_grad():
        head.linear.weight.zero_()
        head.linear.bias.zero_()
        head.linear.bias[:33] = 10.0  # log-magnitude e^10 ≈ 22026, phase 0
    audio = head(torch.zeros(1, 6, 8))
    expected = head.istft(torch.full((1, 33, 6), 100.0, dtype=torch.complex64))
    torch.testing.assert_close(audio, expected)


def test_head_keeps_float32_under_autocast():
    head = ISTFTHead(8, 64, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        audio = head(torch.randn(1, 4, 8))
    assert audio.dtype == torch.float32

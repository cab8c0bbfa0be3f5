"""Inverse STFT with "same" padding: against an explicit overlap-add, perfect reconstruction."""

import numpy as np
import pytest
import torch

from training.model.spectral import InverseSTFT


def _explicit_istft(spec: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Frame by frame: irfft, Hann window, add at f·hop, trim (n_fft − hop)/2, divide by Σw²."""
    n_frames = spec.shape[-1]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann
    length = (n_frames - 1) * hop + n_fft
    signal = np.zeros(length)
    envelope = np.zeros(length)
    for f in range(n_frames):
        signal[f * hop : f * hop + n_fft] += np.fft.irfft(spec[:, f], n_fft) * window
        envelope[f * hop : f * hop + n_fft] += window**2
    pad = (n_fft - hop) // 2
    return signal[pad : length - pad] / envelope[pad : length - pad]


@pytest.mark.parametrize(("n_fft", "hop"), [(2400, 600), (1280, 320), (64, 16), (10, 4)])
def test_inverse_stft_matches_an_explicit_overlap_add(n_fft, hop):
    istft = InverseSTFT(n_fft, hop)
    rng = np.random.default_rng(0)
    spec = rng.normal(size=(n_fft // 2 + 1, 7)) + 1j * rng.normal(size=(n_fft // 2 + 1, 7))
    ours = istft(torch.from_numpy(spec).to(torch.complex64).unsqueeze(0))[0]
    expected = _explicit_istft(spec, n_fft, hop)
    assert ours.shape == (7 * hop,)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_inverse_stft_reconstructs_a_signal_analysed_with_the_same_framing():
    n_fft, hop, n_frames = 64, 16, 20
    pad = (n_fft - hop) // 2
    signal = torch.randn(n_frames * hop, dtype=torch.float64)
    padded = torch.nn.functional.pad(signal, (pad, pad + hop))  # room for the last window
    window = torch.hann_window(n_fft, dtype=torch.float64)
    frames = padded.unfold(0, n_fft, hop)[:n_frames] * window  # frame f starts at f·hop − pad
    spec = torch.fft.rfft(frames, dim=-1).t().unsqueeze(0)  # [1, bins, F]
    istft = InverseSTFT(n_fft, hop).double()
    torch.testing.assert_close(istft(spec)[0], signal)


def test_windows_that_leave_samples_uncovered_are_refused():
    with pytest.raises(ValueError, match="without window overlap"):
        InverseSTFT(4, 4)

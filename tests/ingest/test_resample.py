"""Streaming resampling: blockwise equals one-shot, continuous across blocks and task starts."""

import numpy as np
import pytest
import soxr

from ingest.resample import PREROLL_S, RateGrid, StreamResampler
from tests.audio_factory import chirp, noise


def _blockwise(samples: np.ndarray, in_rate: int, out_rate: int, sizes: list[int]) -> np.ndarray:
    resampler = StreamResampler(in_rate, out_rate, samples.shape[1], "HQ")
    outputs, position, index = [], 0, 0
    while position < len(samples):
        size = sizes[index % len(sizes)]
        outputs.append(resampler.push(samples[position : position + size]))
        position, index = position + size, index + 1
    outputs.append(resampler.push(np.zeros((0, samples.shape[1]), np.float32), last=True))
    return np.concatenate(outputs)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(44100, 24000), (48000, 24000), (16000, 24000)])
def test_blockwise_equals_one_shot(in_rate: int, out_rate: int):
    samples = np.stack([chirp(3.0, in_rate), noise(3.0, in_rate, 0.2)], axis=1)
    one_shot = soxr.resample(samples, in_rate, out_rate, quality="HQ")
    blockwise = _blockwise(samples, in_rate, out_rate, [1000, 4410, 777, 30000])
    n_output = RateGrid(in_rate, out_rate).n_output(len(samples))
    assert blockwise.shape == one_shot.shape == (n_output, 2)
    np.testing.assert_allclose(blockwise, one_shot, atol=1e-5)


def test_output_is_continuous_across_block_boundaries():
    # A 1 kHz tone resampled in odd-sized blocks: no sample-to-sample jump anywhere
    # larger than the tone's own slope (a restart at a boundary would show a step).
    rate_in, rate_out = 44100, 24000
    t = np.arange(2 * rate_in) / rate_in
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)[:, None]
    out = _blockwise(tone, rate_in, rate_out, [1234, 999, 4321])[:, 0]
    settled = out[200:-200]
    max_step = 0.5 * 2 * np.pi * 1000 / rate_out
    assert np.max(np.abs(np.diff(settled))) <= max_step * 1.001


def test_equal_rates_pass_blocks_through():
    block = noise(0.1, 24000)[:, None]
    assert StreamResampler(24000, 24000, 1, "HQ").push(block) is block


@pytest.mark.parametrize(("in_rate", "out_rate"), [(44100, 24000), (8000, 24000), (96000, 24000)])
def test_a_stream_started_mid_file_matches_the_whole_file_stream(in_rate: int, out_rate: int):
    samples = noise(4.0, in_rate, 0.3)[:, None]
    whole = soxr.resample(samples, in_rate, out_rate, quality="HQ")
    grid = RateGrid(in_rate, out_rate)
    first_output = 2 * out_rate  # the task starts 2 s in
    source_start, output_start = grid.stream_start(first_output)
    assert first_output - output_start >= PREROLL_S * out_rate
    assert source_start * out_rate == output_start * in_rate  # on the common grid
    part = _blockwise(samples[source_start:], in_rate, out_rate, [5000])
    offset = first_output - output_start
    np.testing.assert_allclose(part[offset:], whole[first_output:], atol=1e-5)


def test_stream_stop_reads_past_the_last_output_or_to_the_end():
    grid = RateGrid(44100, 24000)
    stop = grid.stream_stop(24000, n_frames=10 * 44100)
    assert stop is not None
    assert stop >= grid.to_input(24000 + PREROLL_S * 24000)
    assert grid.stream_stop(24000, n_frames=50000) is None


@pytest.mark.parametrize("n_input", [1000, 1001, 147, 150, 44100])
def test_output_length_is_what_soxr_gives(n_input: int):
    expected = len(soxr.resample(np.zeros(n_input, np.float32), 44100, 24000))
    assert RateGrid(44100, 24000).n_output(n_input) == expected

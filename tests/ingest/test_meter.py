"""Source figures measured block by block equal those of each whole window."""

import numpy as np
import pytest

from ingest.channels import MIX_CHANNEL, Stream
from ingest.meter import SourceMeter
from ingest.quality import source_figures
from ingest.segment import SegmentGrid
from sonotype.config.ingest import QualityConfig

CONFIG = QualityConfig(clip_level=0.9, silence_min_run_s=0.05)
RATE = 1000  # min run: 50 frames


def _source(rng: np.random.Generator) -> np.ndarray:
    samples = (0.3 * rng.standard_normal((2000, 2))).astype(np.float32)
    samples[95:160] = 0.0  # a 65-frame dropout across the first window edge (100)
    samples[400:440] = 0.0  # 40 frames: too short to count
    samples[700:760, 0] = 0.0  # one channel only: not silence for a mix
    samples[1000:1003, 1] = 1.0  # clipped
    samples[1500, 0] = np.nan
    samples[1501, 1] = -np.inf
    return samples


@pytest.mark.parametrize("hop", [100, 60])
@pytest.mark.parametrize("streams", [[Stream(0, MIX_CHANNEL)], [Stream(0, 0), Stream(1, 1)]])
def test_blockwise_figures_equal_whole_window_figures(hop: int, streams: list[Stream]):
    rng = np.random.default_rng(7)
    samples = _source(rng)
    grid = SegmentGrid(length=100, hop=hop, tail="keep", min_tail=1)
    meter = SourceMeter(grid.bounds, 0, None, 0, streams, CONFIG, RATE, may_be_nonfinite=True)
    got = {}
    position = 0
    while position < len(samples):
        size = int(rng.integers(1, 140))
        got.update(meter.push(samples[position : position + size]))
        position += size
    assert sorted(got) == list(range(grid.n_full(len(samples))))
    for index, figures in got.items():
        start, stop = grid.bounds(index)
        window = samples[start:stop]
        expected = [
            source_figures(
                window if s.channel == MIX_CHANNEL else window[:, s.channel], RATE, CONFIG, True
            )
            for s in streams
        ]
        assert figures == pytest.approx(expected)


def test_the_dropout_and_defects_land_in_their_windows():
    samples = _source(np.random.default_rng(7))
    grid = SegmentGrid(length=100, hop=100, tail="keep", min_tail=1)
    meter = SourceMeter(grid.bounds, 0, None, 0, [Stream(0, MIX_CHANNEL)], CONFIG, RATE, True)
    figures = dict(meter.push(samples))
    silent = [i for i, [f] in figures.items() if f.is_silent]
    assert silent == [1]  # 100–160: 60 zero frames in window 1 (window 0 holds only 5)
    assert [i for i, [f] in figures.items() if f.has_nonfinite] == [15]
    assert figures[10][0].clipped_fraction == pytest.approx(3 / 200)


def test_a_window_the_stream_ends_inside_is_measured_from_what_was_seen():
    grid = SegmentGrid(length=100, hop=100, tail="keep", min_tail=1)
    meter = SourceMeter(grid.bounds, 0, None, 0, [Stream(0, 0)], CONFIG, RATE, False)
    assert [i for i, _ in meter.push(np.full((150, 1), 0.95, np.float32))] == [0]
    [tail] = meter.figures_so_far(1)
    assert tail.clipped_fraction == 1.0
    assert meter.figures_so_far(2)[0].clipped_fraction == 0.0


@pytest.mark.parametrize("seed", range(20))
def test_zero_runs_near_the_threshold_across_block_edges(seed: int):
    # Runs of 45–55 frames (the threshold is 50) at random places, blocks of random size.
    rng = np.random.default_rng(seed)
    samples = (0.3 * rng.standard_normal((1000, 1))).astype(np.float32) + 0.5
    for _ in range(4):
        start = int(rng.integers(0, 950))
        samples[start : start + int(rng.integers(45, 56))] = 0.0
    grid = SegmentGrid(length=200, hop=200, tail="keep", min_tail=1)
    meter = SourceMeter(grid.bounds, 0, None, 0, [Stream(0, 0)], CONFIG, RATE, False)
    got, position = {}, 0
    while position < len(samples):
        size = int(rng.integers(1, 120))
        got.update(meter.push(samples[position : position + size]))
        position += size
    for index, [figures] in got.items():
        window = samples[slice(*grid.bounds(index)), 0]
        assert figures.is_silent == source_figures(window, RATE, CONFIG, False).is_silent

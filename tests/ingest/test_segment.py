"""Segment windows and the tail rule; cutting windows from chunks equals slicing the whole."""

import numpy as np
import pytest

from ingest.segment import SegmentGrid, WindowCutter


@pytest.mark.parametrize(
    ("tail", "min_tail", "n_samples", "expected"),
    [
        ("keep", 1, 25, [(0, 10), (10, 20), (20, 25)]),
        ("pad", 1, 25, [(0, 10), (10, 20), (20, 25)]),
        ("drop", 1, 25, [(0, 10), (10, 20)]),
        ("keep", 6, 25, [(0, 10), (10, 20)]),  # a 5-sample tail is shorter than min_tail
        ("keep", 1, 20, [(0, 10), (10, 20)]),  # no tail when the windows fill the stream
        ("keep", 1, 7, [(0, 7)]),  # a stream shorter than one segment is all tail
    ],
)
def test_windows_and_the_tail_rule(tail: str, min_tail: int, n_samples: int, expected: list):
    grid = SegmentGrid(length=10, hop=10, tail=tail, min_tail=min_tail)
    windows = [grid.bounds(i) for i in range(grid.n_full(n_samples))]
    if (bounds := grid.tail_bounds(n_samples)) is not None:
        windows.append(bounds)
    assert windows == expected
    assert grid.n_segments(n_samples) == len(expected)


def test_overlapping_windows_take_a_tail_only_for_uncovered_audio():
    grid = SegmentGrid(length=10, hop=5, tail="keep", min_tail=1)
    assert grid.n_full(27) == 4  # 0-10, 5-15, 10-20, 15-25
    assert grid.tail_bounds(27) == (20, 27)  # adds 25-27
    assert grid.n_full(25) == 4
    assert grid.tail_bounds(25) is None  # 20-25 is already inside 15-25


def test_cutting_chunks_gives_the_slices_of_the_whole_stream():
    rng = np.random.default_rng(1)
    stream = rng.standard_normal((1030, 2)).astype(np.float32)
    grid = SegmentGrid(length=100, hop=60, tail="keep", min_tail=1)
    cutter = WindowCutter(grid.bounds, first=0, stop=None, origin=0)
    got = {}
    position = 0
    while position < len(stream):
        size = int(rng.integers(1, 90))
        for index, window in cutter.push(stream[position : position + size]):
            got[index] = window.copy()
        position += size
    assert sorted(got) == list(range(grid.n_full(1030)))
    for index, window in got.items():
        start, stop = grid.bounds(index)
        np.testing.assert_array_equal(window, stream[start:stop])
    tail_start, tail_stop = grid.tail_bounds(1030)
    np.testing.assert_array_equal(cutter.rest(tail_start), stream[tail_start:tail_stop])


def test_a_cutter_skips_samples_before_its_first_window_and_stops():
    stream = np.arange(100, dtype=np.float32)
    grid = SegmentGrid(length=10, hop=10, tail="keep", min_tail=1)
    # The stream arrives from position 30 on (a task's pre-roll starts at 30).
    cutter = WindowCutter(grid.bounds, first=4, stop=6, origin=30)
    windows = cutter.push(stream[30:75])
    assert [index for index, _ in windows] == [4, 5]
    np.testing.assert_array_equal(windows[0][1], stream[40:50])
    assert cutter.done
    assert cutter.push(stream[75:]) == []

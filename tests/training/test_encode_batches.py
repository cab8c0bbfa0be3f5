"""Equal-length batching: every segment once, equal lengths per call, order kept."""

import pytest

from training.encode_batches import equal_length_groups, n_frames, windows


def test_windows_pull_consecutive_items_and_a_short_last_one():
    assert list(windows(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(windows([], 3)) == []


def test_groups_hold_equal_lengths_at_most_batch_size_in_first_position_order():
    lengths = [10, 10, 4, 10, 7, 10, 10, 4]
    groups = equal_length_groups(lengths, batch_size=3)
    assert groups == [[0, 1, 3], [2, 7], [4], [5, 6]]


def test_batch_size_one_keeps_every_segment_alone():
    assert equal_length_groups([5, 5, 5], 1) == [[0], [1], [2]]


@pytest.mark.parametrize("size", [0, -1])
def test_sizes_below_one_are_refused(size: int):
    with pytest.raises(ValueError, match="at least 1"):
        equal_length_groups([1], size)
    with pytest.raises(ValueError, match="at least 1"):
        list(windows([1], size))


@pytest.mark.parametrize(
    ("n_samples", "frames"), [(1, 1), (600, 1), (601, 2), (8880, 15), (24000, 40)]
)
def test_frames_are_samples_over_hop_rounded_up(n_samples: int, frames: int):
    assert n_frames(n_samples, 600) == frames

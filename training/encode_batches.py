"""Batches for encoding: segments of equal length only, so padding never reaches the encoder.

The encoder's convolutions and LSTM see every sample of their input: a segment padded
with zeros to the length of a longer one in its batch would get other frames near its
end (and extra frames past it). Segments are therefore read in windows of `batch_size`
in stream order, and each window is split into groups of equal sample count; a group is
one model call. Segments cut by ingest are nearly all of the configured length, so
nearly every call is full; a recording's shorter tail goes alone.

Results stay exact, not just close: a group stacks real samples only, and the batched
encoder computes each row as it would alone up to floating-point summation order
(measured: ≤ 6e-8 on embeddings of about 0.1, far below float16's 2⁻¹¹ relative step).
"""

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def windows(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter), pulled lazily.

    Raises:
        ValueError: `size` is not positive.
    """
    if size < 1:
        raise ValueError(f"window size must be at least 1, got {size}")
    iterator = iter(items)
    while window := list(itertools.islice(iterator, size)):
        yield window


def equal_length_groups(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Split positions `0 … len(lengths) - 1` into groups of equal length.

    Args:
        lengths: sample count of each segment of a window, in stream order.
        batch_size: most positions per group.

    Returns:
        Groups of positions, each in increasing order, ordered by their first position;
        every position is in exactly one group, and the lengths within a group are equal.

    Raises:
        ValueError: `batch_size` is not positive.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    by_length: dict[int, list[int]] = {}
    for position, length in enumerate(lengths):
        by_length.setdefault(length, []).append(position)
    groups = [
        positions[start : start + batch_size]
        for positions in by_length.values()
        for start in range(0, len(positions), batch_size)
    ]
    return sorted(groups, key=lambda group: group[0])


def n_frames(n_samples: int, hop_length: int) -> int:
    """Frames the tokenizer gives a segment: ceil(n_samples / hop_length)."""
    return -(-n_samples // hop_length)

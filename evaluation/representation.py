"""What the store says about each window: its sonotype and its pooled tokenizer features.

Frames are read in spans of consecutive windows (one Zarr read per span, not per
window), so the cost follows the annotated audio, not the store.
"""

from collections.abc import Iterator

import numpy as np
import pandas as pd

from analysis import Clustering, FeatureStore
from sonotype.contracts import EMBEDDINGS, LOUDNESS
from sonotype.errors import SonotypeError

MAX_SPAN_FRAMES = 65536
"""Frames read at once; windows further apart than this are read separately."""


def _spans(windows: pd.DataFrame) -> Iterator[tuple[int, int, np.ndarray]]:
    """(first frame, one past the last, window rows) of runs of nearby windows."""
    order = np.argsort(windows["frame_start"].to_numpy(), kind="stable")
    starts = windows["frame_start"].to_numpy()[order]
    stops = windows["frame_stop"].to_numpy()[order]
    begin = 0
    for end in range(1, len(order) + 1):
        if end == len(order) or stops[end] - starts[begin] > MAX_SPAN_FRAMES:
            yield int(starts[begin]), int(stops[begin:end].max()), order[begin:end]
            begin = end


def window_representation(store: FeatureStore, windows: pd.DataFrame) -> np.ndarray:
    """The tokenizer's view of each window: its frame embeddings' mean and standard
    deviation, and its recorded level (dBFS) where the store keeps loudness.

    Returns:
        float32 `[len(windows), 2 * dim (+ 1)]`.
    """
    if EMBEDDINGS not in store.group:
        raise SonotypeError(f"{store.url}: holds no per-frame embeddings to pool")
    dim = store.dim
    features = np.zeros((len(windows), 2 * dim + int(store.has_loudness)), np.float32)
    for first, stop, rows in _spans(windows):
        frames = store.read(EMBEDDINGS, first, stop).astype(np.float64)
        loudness = store.read(LOUDNESS, first, stop) if store.has_loudness else None
        for row in rows:
            begin = windows["frame_start"].iat[row] - first
            end = windows["frame_stop"].iat[row] - first
            features[row, :dim] = frames[begin:end].mean(axis=0)
            features[row, dim : 2 * dim] = frames[begin:end].std(axis=0)
            if loudness is not None:
                power = np.mean(10.0 ** (loudness[begin:end].astype(np.float64) / 10.0))
                features[row, -1] = 10.0 * np.log10(power)
    if store.has_loudness and np.isnan(features[:, -1]).any():
        # frames appended without loudness: the level is unknown, leave it out
        return features[:, :-1]
    return features


def window_sonotypes(
    store: FeatureStore, clustering: Clustering, name: str, windows: pd.DataFrame
) -> np.ndarray:
    """The sonotype of each window under a clustering.

    A frame-level clustering gives a window the sonotype most of its frames have (ties
    to the lower number); a segment-level one gives each window its segment's.

    Returns:
        int64 `[len(windows)]`; -1 where a window's frames are not labelled yet.

    Raises:
        SonotypeError: the store has no labels for the clustering.
    """
    array = f"labels/{name}"
    if name not in store.label_names():
        raise SonotypeError(
            f"{store.url}: no labels/{name}; run `sonotype cluster --name {name}` first"
        )
    if clustering.level == "segment":
        labels = store.read(array, 0, store.n_segments).astype(np.int64)
        return labels[windows["segment_index"].to_numpy()]
    result = np.full(len(windows), -1, np.int64)
    k = clustering.k
    for first, stop, rows in _spans(windows):
        labels = store.read(array, first, stop).astype(np.int64)
        for row in rows:
            window = labels[
                windows["frame_start"].iat[row] - first : windows["frame_stop"].iat[row] - first
            ]
            window = window[(window >= 0) & (window < k)]
            if len(window):
                result[row] = int(np.bincount(window, minlength=k).argmax())
    return result

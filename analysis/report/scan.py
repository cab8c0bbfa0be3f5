"""One streaming pass over a labelled store: example segments per sonotype, sizes, a map sample.

The pass reads the clustered rows (frame embeddings, pooled embeddings or token bags,
normalised as the clustering was) and their labels, a batch of whole segments at a
time, and keeps only:

- per sonotype, the `per_sonotype` best example segments (a running top-K merge),
- per sonotype, the labelled rows and their seconds,
- a uniform sample of `map_size` labelled rows with their labels (a vectorised
  reservoir: every row draws a key, the smallest keys are kept),

so memory is one batch (about `block_rows` rows) plus `k × per_sonotype` candidates
plus the map sample, whatever the size of the store.

How examples are ranked. Segment-level clusterings: the segments nearest their
sonotype's centroid (Euclidean distance in the clustering's normalised space).
Frame-level clusterings: a segment is a candidate for every sonotype one of its
frames carries; candidates are ranked by the share of the segment's frames carrying
the sonotype (highest first), then by the mean distance of those frames to the
centroid (nearest first). The best examples are thus segments the sonotype dominates,
and among those the most typical. Ties go to the lower segment index.
"""

import logging
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from analysis.features import FeatureSpec, FeatureView
from analysis.store import FRAME, FeatureStore
from sonotype.contracts import LABELS
from sonotype.progress import progress_bar

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidates:
    """Example segments, sorted by sonotype, then rank (best first).

    Attributes:
        sonotype: int64 `[m]`.
        segment: int64 `[m]`, segment index in the store.
        share: float64 `[m]`, share of the segment's frames with that sonotype (1 for
            segment-level clusterings).
        distance: float64 `[m]`, mean Euclidean distance of those rows to the centroid.
    """

    sonotype: np.ndarray
    segment: np.ndarray
    share: np.ndarray
    distance: np.ndarray

    @classmethod
    def empty(cls) -> "Candidates":
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0))

    def of(self, sonotype: int) -> list[tuple[int, float, float]]:
        """(segment, share, distance) of one sonotype, best first."""
        chosen = self.sonotype == sonotype
        return [
            (int(s), float(h), float(d))
            for s, h, d in zip(
                self.segment[chosen], self.share[chosen], self.distance[chosen], strict=True
            )
        ]


def best_candidates(candidates: Candidates, per_sonotype: int) -> Candidates:
    """Keep the `per_sonotype` best rows of each sonotype (ranking in the module docstring)."""
    order = np.lexsort(
        (candidates.segment, candidates.distance, -candidates.share, candidates.sonotype)
    )
    sonotype = candidates.sonotype[order]
    if len(sonotype) == 0:
        return candidates
    starts = np.flatnonzero(np.r_[True, sonotype[1:] != sonotype[:-1]])
    rank = np.arange(len(sonotype)) - np.repeat(starts, np.diff(np.r_[starts, len(sonotype)]))
    keep = order[rank < per_sonotype]
    return Candidates(
        candidates.sonotype[keep],
        candidates.segment[keep],
        candidates.share[keep],
        candidates.distance[keep],
    )


def _concat(a: Candidates, b: Candidates) -> Candidates:
    return Candidates(
        np.concatenate([a.sonotype, b.sonotype]),
        np.concatenate([a.segment, b.segment]),
        np.concatenate([a.share, b.share]),
        np.concatenate([a.distance, b.distance]),
    )


@dataclass(frozen=True)
class ScanResult:
    """What the pass kept.

    Attributes:
        candidates: the best example segments of each sonotype.
        sizes: int64 `[k]`, labelled rows (frames or segments) per sonotype.
        seconds: float64 `[k]`, seconds of audio per sonotype.
        map_rows: float32 `[n, dim]`, a uniform sample of labelled rows, in row order.
        map_labels: int64 `[n]`, their sonotypes.
        n_labelled: rows with a sonotype.
        n_unlabelled: rows without one (not labelled yet, or label out of range).
    """

    candidates: Candidates
    sizes: np.ndarray
    seconds: np.ndarray
    map_rows: np.ndarray
    map_labels: np.ndarray
    n_labelled: int
    n_unlabelled: int


class _Reservoir:
    """The `size` rows of smallest random key seen so far, with their labels and row index."""

    def __init__(self, size: int, dim: int):
        self.size = size
        self.rows = np.zeros((0, dim), np.float32)
        self.labels = np.zeros(0, np.int64)
        self.index = np.zeros(0, np.int64)
        self.keys = np.zeros(0)

    def add(self, rows: np.ndarray, labels: np.ndarray, index: np.ndarray, keys: np.ndarray):
        all_keys = np.concatenate([self.keys, keys])
        if len(all_keys) > self.size:
            chosen = np.argpartition(all_keys, self.size - 1)[: self.size]
        else:
            chosen = np.arange(len(all_keys))
        old, new = (
            chosen[chosen < len(self.keys)],
            chosen[chosen >= len(self.keys)] - len(self.keys),
        )
        self.rows = np.concatenate([self.rows[old], rows[new]])
        self.labels = np.concatenate([self.labels[old], labels[new]])
        self.index = np.concatenate([self.index[old], index[new]])
        self.keys = np.concatenate([self.keys[old], keys[new]])

    def in_row_order(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.index, kind="stable")
        return self.rows[order], self.labels[order]


def _labels(store: FeatureStore, name: str, first: int, stop: int, n_labelled: int) -> np.ndarray:
    """Labels of rows `[first, stop)`; rows at or past `n_labelled` count as unlabelled."""
    labels = np.full(stop - first, -1, np.int64)
    if min(stop, n_labelled) > first:
        labels[: min(stop, n_labelled) - first] = store.read(
            f"{LABELS}/{name}", first, min(stop, n_labelled)
        )
    return labels


def scan_store(
    store: FeatureStore,
    spec: FeatureSpec,
    labels_name: str,
    centroids: np.ndarray,
    n_labelled: int,
    per_sonotype: int,
    map_size: int,
    block_rows: int,
    random_state: int,
) -> ScanResult:
    """Stream the store once (see the module docstring).

    Args:
        store: the feature store.
        spec: the rows the clustering grouped (level, feature, normalisation).
        labels_name: the label array, `labels/<labels_name>`.
        centroids: float32 `[k, dim]`, row j = sonotype j, in the normalised space.
        n_labelled: rows of the level the clustering's labels cover.
        per_sonotype: examples kept per sonotype (0: none).
        map_size: rows kept for the 2-D map.
        block_rows: about how many rows to read at once.
        random_state: seed of the map sample.

    Returns:
        The examples, sizes and the map sample.
    """
    view = FeatureView(store, spec)
    k = len(centroids)
    is_frame = spec.storage_level == FRAME
    rng = np.random.default_rng(random_state)
    reservoir = _Reservoir(map_size, view.dim)
    best = Candidates.empty()
    sizes, seconds = np.zeros(k, np.int64), np.zeros(k)
    n_unlabelled = 0
    frames_per_segment = max(1, store.n_frames // max(1, store.n_segments)) if is_frame else 1
    batch = max(1, block_rows // frames_per_segment)
    columns = ["segment_index", "frame_start", "n_frames", "duration_s"]
    with progress_bar(store.n_segments, "segments", "report: examples", unit_scale=True) as bar:
        for segments in store.iter_segments(batch, columns):
            first, stop, owner, rows_seconds = _batch_rows(segments, is_frame, store.frame_rate)
            labels = _labels(store, labels_name, first, stop, n_labelled)
            valid = (labels >= 0) & (labels < k)
            n_unlabelled += int((~valid).sum())
            index = np.flatnonzero(valid)
            rows = view.read(first, stop)[index]
            labels = labels[index]
            distance = np.linalg.norm(rows - centroids[labels], axis=1).astype(np.float64)
            sizes += np.bincount(labels, minlength=k)
            seconds += np.bincount(labels, weights=rows_seconds[index], minlength=k)
            reservoir.add(rows, labels, first + index, rng.random(len(index)))
            if per_sonotype:
                found = _candidates(segments, owner[index], labels, distance, k, is_frame)
                best = best_candidates(_concat(best, found), per_sonotype)
            bar.update(segments.num_rows)
    map_rows, map_labels = reservoir.in_row_order()
    return ScanResult(best, sizes, seconds, map_rows, map_labels, int(sizes.sum()), n_unlabelled)


def _batch_rows(
    segments: pa.Table, is_frame: bool, frame_rate: float
) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Rows `[first, stop)` of a batch of consecutive segments, each row's owning segment
    (position in the batch) and each row's seconds of audio."""
    if is_frame:
        n_frames = segments.column("n_frames").to_numpy().astype(np.int64)
        first = int(segments.column("frame_start")[0].as_py())
        owner = np.repeat(np.arange(len(n_frames)), n_frames)
        return first, first + int(n_frames.sum()), owner, np.full(len(owner), 1 / frame_rate)
    index = segments.column("segment_index").to_numpy()
    duration = segments.column("duration_s").to_numpy(zero_copy_only=False).astype(np.float64)
    owner = np.arange(len(index))
    return int(index[0]), int(index[-1]) + 1, owner, np.nan_to_num(duration)


def _candidates(
    segments: pa.Table,
    owner: np.ndarray,
    labels: np.ndarray,
    distance: np.ndarray,
    k: int,
    is_frame: bool,
) -> Candidates:
    """Every (segment, sonotype) pair of a batch with its share and mean distance."""
    segment_index = segments.column("segment_index").to_numpy().astype(np.int64)
    if not is_frame:
        return Candidates(labels, segment_index[owner], np.ones(len(labels)), distance)
    n_frames = segments.column("n_frames").to_numpy().astype(np.float64)
    pair = owner * k + labels
    counts = np.bincount(pair, minlength=len(segment_index) * k)
    sums = np.bincount(pair, weights=distance, minlength=len(segment_index) * k)
    present = np.flatnonzero(counts)
    position, sonotype = present // k, present % k
    return Candidates(
        sonotype.astype(np.int64),
        segment_index[position],
        counts[present] / n_frames[position],
        sums[present] / counts[present],
    )

"""What is clustered: the rows of one level and feature of a store, normalised, as float32.

- level "window", feature "embeddings": one row per frame, holding the statistics of
  the window the frame lies in: the mean and the standard deviation of the window's
  frame embeddings (`[2 * dim]`), then, unless `loudness` is off, the window's recorded
  level in dBFS (from the store's per-frame `loudness`: the power mean of its frames).
  Windows are `window_frames` frames long, laid from each segment's start; a segment's
  trailing remainder joins its last window, so every frame belongs to exactly one window.
  Every frame of a window has the same row, so k-means groups windows (weighted by their
  length) while labels, statistics and the report keep counting frames, i.e. time;
- level "segment", feature "embeddings": `pooled[i]`, one row per segment;
- level "segment", feature "tokens": the bag of tokens of segment i, a `[codebook_size]`
  histogram of its frames' tokens (text-style clustering of token documents).

Rows are then normalised:

- `"centred-l2"`: a fixed centre (the mean row of the first fit, `row_moments`) is
  subtracted, then rows are scaled to unit length. Encoder outputs share a large common
  offset (a tokenizer's embeddings point within a degree of one another), so plain L2
  rows differ by almost nothing and k-means splits noise; centring first keeps the
  differences between sounds. The centre is saved with the clustering and never
  refitted, so a new year is placed in the same space as the old.
- `"standard"`: the fit's per-column mean (`centre`) is subtracted and each column
  divided by its standard deviation (`scale`), both saved like the centre: columns of
  different units (embedding statistics and a level in dB) weigh alike.
- `"balanced"`: "standard", then each block of columns (the embedding mean, the
  embedding standard deviation, the level) is divided by the square root of its width,
  so that each block, not each column, weighs alike: a window's level counts as much
  as its 64 or 512 embedding means together. Measured on the example, this beats both
  "centred-l2" and "standard" for windows (benchmarks/RESULTS.md).
- `"l2"`: unit-length rows (cosine); `"none"`: rows as they are.
"""

import functools
from dataclasses import dataclass

import numpy as np

from analysis.store import FRAME, SEGMENT, FeatureStore, open_store
from sonotype.contracts import EMBEDDINGS, LOUDNESS, POOLED, TOKENS
from sonotype.errors import SonotypeError

WINDOW = "window"
LEVELS = (FRAME, WINDOW, SEGMENT)
FEATURES = ("embeddings", "tokens")
NORMALISATIONS = ("centred-l2", "standard", "balanced", "l2", "none")
CENTRED = ("centred-l2", "standard", "balanced")
SCALED = ("standard", "balanced")


@dataclass(frozen=True)
class FeatureSpec:
    """Which rows of which store are clustered; small and picklable, for Dask tasks.

    Attributes:
        url: the feature store.
        level: "frame", "window" or "segment".
        feature: "embeddings" or "tokens" (bag-of-tokens; segments only).
        normalise: one of NORMALISATIONS.
        centre: the row subtracted first (the CENTRED normalisations; length dim).
        window_frames: frames per window (level "window" only).
        scale: the column scales the SCALED normalisations divide by (length dim).
        loudness: windows end with their recorded level (level "window" only).
    """

    url: str
    level: str
    feature: str
    normalise: str
    centre: tuple[float, ...] | None = None
    window_frames: int = 0
    scale: tuple[float, ...] | None = None
    loudness: bool = False

    @property
    def storage_level(self) -> str:
        """The store axis rows (and labels) live on: windows are stored per frame."""
        return SEGMENT if self.level == SEGMENT else FRAME

    def open(self, store: FeatureStore | None = None) -> "FeatureView":
        """A view on the store (opened from `url` unless given).

        Raises:
            SonotypeError: invalid combination, or the store cannot be opened.
        """
        if self.level not in LEVELS or self.feature not in FEATURES:
            raise SonotypeError(
                f"level/feature must be {'|'.join(LEVELS)} and {'|'.join(FEATURES)}, "
                f"got {self.level}/{self.feature}"
            )
        if (self.level == WINDOW) != (self.window_frames > 0):
            raise SonotypeError("window_frames is given (> 0) exactly when level is 'window'")
        if self.feature == "tokens" and self.level != SEGMENT:
            raise SonotypeError("feature 'tokens' (bag-of-tokens) is defined for segments only")
        if self.normalise not in NORMALISATIONS:
            raise SonotypeError(
                f"normalise must be one of {NORMALISATIONS}, got {self.normalise!r}"
            )
        if (self.normalise in CENTRED) != (self.centre is not None):
            raise SonotypeError(f"a centre is given exactly when normalise is one of {CENTRED}")
        if (self.normalise in SCALED) != (self.scale is not None):
            raise SonotypeError(f"a scale is given exactly when normalise is one of {SCALED}")
        if self.loudness and self.level != WINDOW:
            raise SonotypeError("loudness is a column of window rows only")
        return FeatureView(store if store is not None else open_store(self.url), self)


class FeatureView:
    """Reads normalised float32 rows `[start, stop)` of one level/feature of a store."""

    def __init__(self, store: FeatureStore, spec: FeatureSpec):
        self.store = store
        self.spec = spec
        self._centre = None if spec.centre is None else np.asarray(spec.centre, np.float32)
        self._scale = None if spec.scale is None else np.asarray(spec.scale, np.float32)
        if self._scale is not None and spec.normalise == "balanced":
            # dividing by scale * sqrt(block width) standardises and balances in one step
            self._scale = self._scale * self._block_widths()
        if spec.loudness and not self.store.has_loudness:
            raise SonotypeError(
                f"{self.store.url}: holds no per-frame loudness (written by an earlier "
                "sonotype); encode it again with --force, or cluster without loudness"
            )

    @property
    def n_rows(self) -> int:
        """Committed rows at this level."""
        return self.store.n_rows(self.spec.storage_level)

    @property
    def dim(self) -> int:
        """Columns of a row: the embedding dim (twice for windows: mean and standard
        deviation), or the codebook size for bag-of-tokens."""
        if self.spec.feature == "tokens":
            return self.store.codebook_size
        if self.spec.level == WINDOW:
            return 2 * self.store.dim + int(self.spec.loudness)
        return self.store.dim

    def _block_widths(self) -> np.ndarray:
        """`[dim]` square root of the width of the block each column belongs to."""
        if self.spec.level != WINDOW or self.spec.feature == "tokens":
            return np.full(self.dim, np.sqrt(self.dim), np.float32)
        widths = [np.full(self.store.dim, np.sqrt(self.store.dim))] * 2
        if self.spec.loudness:
            widths.append(np.ones(1))
        return np.concatenate(widths).astype(np.float32)

    def block_ranges(
        self, block_rows: int, start: int = 0, stop: int | None = None
    ) -> list[tuple[int, int]]:
        """Blocks of at most about `block_rows` rows on the store's chunk grid."""
        return self.store.block_ranges(self.spec.storage_level, block_rows, start, stop)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows `[start, stop)` as float32 `[stop - start, dim]`, normalised."""
        if self.spec.feature == "tokens":
            rows = self._bag_of_tokens(start, stop)
        elif self.spec.level == WINDOW:
            rows = self._window_statistics(start, stop)
        else:
            name = EMBEDDINGS if self.spec.level == FRAME else POOLED
            rows = self.store.read(name, start, stop).astype(np.float32)
        if self._centre is not None:
            rows -= self._centre
        if self._scale is not None:
            # a constant column (scale 0) stays at zero instead of becoming NaN
            np.divide(rows, self._scale, out=rows, where=self._scale > 0)
        if self.spec.normalise in ("l2", "centred-l2"):
            norms = np.linalg.norm(rows, axis=1, keepdims=True)
            # An all-zero row (digital silence) stays zero instead of becoming NaN.
            np.divide(rows, norms, out=rows, where=norms > 0)
        return rows

    def _bag_of_tokens(self, start: int, stop: int) -> np.ndarray:
        table = self.store.read_segments(start, stop, ["frame_start", "n_frames"])
        n_frames = table.column("n_frames").to_numpy().astype(np.int64)
        if len(n_frames) == 0:
            return np.zeros((0, self.dim), np.float32)
        first = int(table.column("frame_start")[0].as_py())
        tokens = self.store.read(TOKENS, first, first + int(n_frames.sum())).astype(np.int64)
        owner = np.repeat(np.arange(len(n_frames)), n_frames)
        counts = np.bincount(owner * self.dim + tokens, minlength=len(n_frames) * self.dim)
        return counts.reshape(len(n_frames), self.dim).astype(np.float32)

    def _window_statistics(self, start: int, stop: int) -> np.ndarray:
        """Rows of frames `[start, stop)`: their windows' mean and standard deviation."""
        if stop <= start:
            return np.zeros((0, self.dim), np.float32)
        edges = _window_edges(self.store, start, stop, self.spec.window_frames)
        first, last = int(edges[0]), int(edges[-1])
        frames = self.store.read(EMBEDDINGS, first, last).astype(np.float64)
        offsets = edges[:-1] - first
        lengths = np.diff(edges)[:, None]
        mean = np.add.reduceat(frames, offsets, axis=0) / lengths
        square = np.add.reduceat(frames * frames, offsets, axis=0) / lengths
        std = np.sqrt(np.maximum(square - mean * mean, 0.0))
        columns = [mean, std]
        if self.spec.loudness:
            columns.append(self._window_loudness(first, last, offsets, lengths))
        windows = np.concatenate(columns, axis=1).astype(np.float32)
        owner = np.repeat(np.arange(len(lengths)), lengths[:, 0])
        return windows[owner[start - first : stop - first]]

    def _window_loudness(
        self, first: int, last: int, offsets: np.ndarray, lengths: np.ndarray
    ) -> np.ndarray:
        """`[n_windows, 1]` recorded level of each window: its frames' power mean, dBFS."""
        frames = self.store.read(LOUDNESS, first, last).astype(np.float64)
        if np.isnan(frames).any():
            raise SonotypeError(
                f"{self.store.url}: frames [{first}, {last}) have no recorded loudness "
                "(appended without it); encode again with --force"
            )
        power = np.add.reduceat(10.0 ** (frames / 10.0), offsets) / lengths[:, 0]
        return 10.0 * np.log10(power)[:, None]


@functools.lru_cache(maxsize=4)
def _segment_frame_starts(url: str, n_segments: int) -> np.ndarray:
    """First frame of every committed segment (8 bytes per segment, read once per process)."""
    table = open_store(url).read_segments(0, n_segments, ["frame_start"])
    return table.column("frame_start").to_numpy().astype(np.int64)


def _window_edges(store: FeatureStore, start: int, stop: int, window_frames: int) -> np.ndarray:
    """Sorted frame edges of the windows covering frames `[start, stop)`.

    Returns `[e0, e1, ..., en]`: window i spans frames `[e_i, e_{i+1})`, `e0 <= start`
    and `en >= stop`.
    """
    starts = _segment_frame_starts(store.url, store.n_segments)
    ends = np.append(starts[1:], store.n_frames)
    first = int(np.searchsorted(starts, start, side="right")) - 1
    last = int(np.searchsorted(starts, stop - 1, side="right"))
    edges = []
    for segment_start, segment_end in zip(starts[first:last], ends[first:last], strict=True):
        n_windows = max(1, (segment_end - segment_start) // window_frames)
        # the remainder shorter than a window joins the last window
        edges.append(segment_start + window_frames * np.arange(n_windows))
    edges.append(np.array([ends[last - 1]]))
    return np.concatenate(edges).astype(np.int64)


def row_moments(view: FeatureView, block_rows: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and standard deviation of every committed row of `view`, block by block.

    A centre (and scale) is computed on the rows before normalisation: give a view with
    `normalise="none"`. Accumulated in float64, so the order of blocks does not matter.
    """
    total = np.zeros(view.dim, np.float64)
    squares = np.zeros(view.dim, np.float64)
    for start, stop in view.block_ranges(block_rows):
        rows = view.read(start, stop).astype(np.float64)
        total += rows.sum(axis=0)
        squares += (rows * rows).sum(axis=0)
    n = max(1, view.n_rows)
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)

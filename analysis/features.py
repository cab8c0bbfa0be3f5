"""What is clustered: the rows of one level and feature of a store, normalised, as float32.

- level "frame", feature "embeddings": `embeddings[i]`, one row per frame;
- level "segment", feature "embeddings": `pooled[i]`, one row per segment;
- level "segment", feature "tokens": the bag of tokens of segment i, a `[codebook_size]`
  histogram of its frames' tokens (text-style clustering of token documents).

Rows are then normalised:

- `"centred-l2"`: a fixed centre (the mean row of the first fit, `row_mean`) is
  subtracted, then rows are scaled to unit length. Encoder outputs share a large common
  offset (a tokenizer's embeddings point within a degree of one another), so plain L2
  rows differ by almost nothing and k-means splits noise; centring first keeps the
  differences between sounds. The centre is saved with the clustering and never
  refitted, so a new year is placed in the same space as the old.
- `"l2"`: unit-length rows (cosine); `"none"`: rows as they are.
"""

from dataclasses import dataclass

import numpy as np

from analysis.store import FRAME, SEGMENT, FeatureStore, open_store
from sonotype.contracts import EMBEDDINGS, POOLED, TOKENS
from sonotype.errors import SonotypeError

FEATURES = ("embeddings", "tokens")
NORMALISATIONS = ("centred-l2", "l2", "none")


@dataclass(frozen=True)
class FeatureSpec:
    """Which rows of which store are clustered; small and picklable, for Dask tasks.

    Attributes:
        url: the feature store.
        level: "frame" or "segment".
        feature: "embeddings" or "tokens" (bag-of-tokens; segments only).
        normalise: "centred-l2", "l2" or "none".
        centre: the row subtracted before "centred-l2" (length dim); None otherwise.
    """

    url: str
    level: str
    feature: str
    normalise: str
    centre: tuple[float, ...] | None = None

    def open(self, store: FeatureStore | None = None) -> "FeatureView":
        """A view on the store (opened from `url` unless given).

        Raises:
            SonotypeError: invalid combination, or the store cannot be opened.
        """
        if self.level not in (FRAME, SEGMENT) or self.feature not in FEATURES:
            raise SonotypeError(
                f"level/feature must be frame|segment and {'|'.join(FEATURES)}, "
                f"got {self.level}/{self.feature}"
            )
        if self.feature == "tokens" and self.level != SEGMENT:
            raise SonotypeError("feature 'tokens' (bag-of-tokens) is defined for segments only")
        if self.normalise not in NORMALISATIONS:
            raise SonotypeError(
                f"normalise must be one of {NORMALISATIONS}, got {self.normalise!r}"
            )
        if (self.normalise == "centred-l2") != (self.centre is not None):
            raise SonotypeError("a centre is given exactly when normalise is 'centred-l2'")
        return FeatureView(store if store is not None else open_store(self.url), self)


class FeatureView:
    """Reads normalised float32 rows `[start, stop)` of one level/feature of a store."""

    def __init__(self, store: FeatureStore, spec: FeatureSpec):
        self.store = store
        self.spec = spec
        self._centre = None if spec.centre is None else np.asarray(spec.centre, np.float32)

    @property
    def n_rows(self) -> int:
        """Committed rows at this level."""
        return self.store.n_rows(self.spec.level)

    @property
    def dim(self) -> int:
        """Columns of a row: the embedding dim, or the codebook size for bag-of-tokens."""
        return self.store.codebook_size if self.spec.feature == "tokens" else self.store.dim

    def block_ranges(
        self, block_rows: int, start: int = 0, stop: int | None = None
    ) -> list[tuple[int, int]]:
        """Blocks of at most about `block_rows` rows on the store's chunk grid."""
        return self.store.block_ranges(self.spec.level, block_rows, start, stop)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows `[start, stop)` as float32 `[stop - start, dim]`, normalised."""
        if self.spec.feature == "tokens":
            rows = self._bag_of_tokens(start, stop)
        else:
            name = EMBEDDINGS if self.spec.level == FRAME else POOLED
            rows = self.store.read(name, start, stop).astype(np.float32)
        if self._centre is not None:
            rows -= self._centre
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


def row_mean(view: FeatureView, block_rows: int) -> tuple[float, ...]:
    """The mean of every committed row of `view` as it reads them, block by block.

    A "centred-l2" centre is the mean of the rows before normalisation: give a view with
    `normalise="none"`. Accumulated in float64, so the order of blocks does not matter.
    """
    total = np.zeros(view.dim, np.float64)
    for start, stop in view.block_ranges(block_rows):
        total += view.read(start, stop).sum(axis=0, dtype=np.float64)
    return tuple(float(value) for value in total / max(1, view.n_rows))

"""What is clustered: the rows of one level and feature of a store, normalised, as float32.

- level "frame", feature "embeddings": `embeddings[i]`, one row per frame;
- level "segment", feature "embeddings": `pooled[i]`, one row per segment;
- level "segment", feature "tokens": the bag of tokens of segment i, a `[codebook_size]`
  histogram of its frames' tokens (text-style clustering of token documents).

Rows are then L2-normalised (`normalise="l2"`) or left as they are (`"none"`).
"""

from dataclasses import dataclass

import numpy as np

from analysis.store import FRAME, SEGMENT, FeatureStore, open_store
from sonotype.contracts import EMBEDDINGS, POOLED, TOKENS
from sonotype.errors import SonotypeError

FEATURES = ("embeddings", "tokens")
NORMALISATIONS = ("l2", "none")


@dataclass(frozen=True)
class FeatureSpec:
    """Which rows of which store are clustered; small and picklable, for Dask tasks.

    Attributes:
        url: the feature store.
        level: "frame" or "segment".
        feature: "embeddings" or "tokens" (bag-of-tokens; segments only).
        normalise: "l2" or "none".
    """

    url: str
    level: str
    feature: str
    normalise: str

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
        return FeatureView(store if store is not None else open_store(self.url), self)


class FeatureView:
    """Reads normalised float32 rows `[start, stop)` of one level/feature of a store."""

    def __init__(self, store: FeatureStore, spec: FeatureSpec):
        self.store = store
        self.spec = spec

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
        if self.spec.normalise == "l2":
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

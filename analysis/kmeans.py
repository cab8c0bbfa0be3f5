"""Out-of-core k-means: scikit-learn's MiniBatchKMeans.partial_fit over blocks of a store.

`StreamingKMeans` never holds more than one block of rows (`block_rows`, rounded up to
whole Zarr chunks) plus the reservoir sample. Its k-means++ initialisation runs on a
uniform reservoir sample of all rows (one extra pass), not on the first mini-batch as
`partial_fit` would, so the first chunks of the store (one site, one night) do not
decide the starting centres. Each of `n_init` k-means++ draws is refined by Lloyd
iterations on the sample (scikit-learn `KMeans`) and the best one starts the stream:
one draw alone sometimes lands two centres in one blob, which mini-batch steps over
the stream rarely undo.
"""

import logging

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import pairwise_distances_argmin_min

from analysis.features import FeatureView
from sonotype.errors import SonotypeError
from sonotype.progress import progress_bar

logger = logging.getLogger(__name__)


def reservoir_sample(
    view: FeatureView,
    size: int,
    rng: np.random.Generator,
    block_rows: int,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """A uniform sample without replacement of rows `[start, stop)`, in one pass.

    Every row draws a uniform key and the `size` smallest keys are kept (a vectorised
    reservoir): memory is `size + block_rows` rows whatever the number of rows.

    Args:
        view: the rows.
        size: rows wanted (all rows if there are fewer).
        rng: seeded generator; the same seed gives the same sample.
        block_rows: rows read at once.
        start: first row.
        stop: one past the last row (None: all committed rows).

    Returns:
        float32 `[min(size, stop - start), dim]`, in row order.
    """
    blocks = view.block_ranges(block_rows, start, stop)
    kept_rows = np.zeros((0, view.dim), np.float32)
    kept_keys = np.zeros(0)
    kept_index = np.zeros(0, np.int64)
    with progress_bar(len(blocks), "chunks", "reservoir sample") as bar:
        for first, last in blocks:
            keys = np.concatenate([kept_keys, rng.random(last - first)])
            if len(keys) > size:
                # Sorted, the kept rows come first and in order, like `kept_keys[chosen]`.
                chosen = np.sort(np.argpartition(keys, size - 1)[:size])
            else:
                chosen = np.arange(len(keys))
            old = chosen[chosen < len(kept_keys)]
            new = chosen[chosen >= len(kept_keys)] - len(kept_keys)
            block = view.read(first, last)
            kept_rows = np.concatenate([kept_rows[old], block[new]])
            kept_index = np.concatenate([kept_index[old], first + new])
            kept_keys = keys[chosen]
            bar.update(1)
    return kept_rows[np.argsort(kept_index, kind="stable")]


def block_sample(
    view: FeatureView,
    size: int,
    rng: np.random.Generator,
    block_rows: int,
    start: int = 0,
    stop: int | None = None,
) -> np.ndarray:
    """About `size` rows drawn from randomly chosen blocks of `[start, stop)`.

    Cheaper than `reservoir_sample` (it reads only the blocks it draws from, not every
    row), at the price of rows clustered in a few blocks; used to estimate churn
    without reading all old rows.

    Returns:
        float32 `[min(size, stop - start), dim]`.
    """
    blocks = view.block_ranges(block_rows, start, stop)
    taken: list[np.ndarray] = []
    n_taken = 0
    for block_index in rng.permutation(len(blocks)):
        if n_taken >= size:
            break
        first, last = blocks[block_index]
        rows = view.read(first, last)
        keep = rng.choice(len(rows), min(len(rows), size - n_taken), replace=False)
        taken.append(rows[np.sort(keep)])
        n_taken += len(keep)
    return np.concatenate(taken) if taken else np.zeros((0, view.dim), np.float32)


def assign(rows: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centroid of every row.

    Args:
        rows: float32 `[n, dim]`.
        centroids: `[k, dim]`.

    Returns:
        labels int64 `[n]` and squared Euclidean distances float64 `[n]`.
    """
    if len(rows) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    labels, distances = pairwise_distances_argmin_min(rows, centroids.astype(rows.dtype))
    return labels.astype(np.int64), distances.astype(np.float64) ** 2


class StreamingKMeans:
    """k-means over the rows of a store, one block at a time.

    Follows scikit-learn conventions: parameters in `__init__`, validation in `fit`,
    fitted state in attributes ending in `_`.

    Args:
        n_clusters: number of centroids k.
        batch_size: rows per `MiniBatchKMeans.partial_fit` step.
        block_rows: rows read from the store at once (memory bound).
        passes: passes over the rows.
        reservoir_size: sample size for the k-means++ initialisation.
        n_init: k-means++ draws on the reservoir, each refined by Lloyd iterations there;
            the one of least inertia on the reservoir starts the stream.
        reassignment_ratio: passed to MiniBatchKMeans.
        random_state: seed of the reservoir, the block and row order and MiniBatchKMeans.

    Attributes:
        cluster_centers_: float32 `[k, dim]`.
        counts_: float64 `[k]`, rows each centroid summarises: the rows assigned to it
            in the final pass, plus `init_counts` when continuing a model.
        inertia_: sum of squared distances of the final pass's rows to their centroid
            just after each step (an estimate; `analysis.labelling` gives the exact one).
        n_rows_: rows in the fitted range.
        n_steps_: partial_fit steps taken.
        reservoir_: the initialisation sample, float32 `[<= reservoir_size, dim]`
            (empty when continuing from given centroids).
        max_block_rows_: most rows held in one block (at most `block_rows` rounded up
            to whole chunks).
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        batch_size: int = 4096,
        block_rows: int = 65536,
        passes: int = 2,
        reservoir_size: int = 20000,
        n_init: int = 3,
        reassignment_ratio: float = 0.0,
        random_state: int = 0,
    ):
        self.n_clusters = n_clusters
        self.batch_size = batch_size
        self.block_rows = block_rows
        self.passes = passes
        self.reservoir_size = reservoir_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio
        self.random_state = random_state

    def _validate(self, n_rows: int) -> None:
        for name in (
            "n_clusters",
            "batch_size",
            "block_rows",
            "passes",
            "reservoir_size",
            "n_init",
        ):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise SonotypeError(f"StreamingKMeans {name} must be a positive int, got {value!r}")
        if n_rows < self.n_clusters:
            raise SonotypeError(
                f"k-means with k={self.n_clusters} needs at least {self.n_clusters} rows, "
                f"found {n_rows}"
            )

    def fit(
        self,
        view: FeatureView,
        start: int = 0,
        stop: int | None = None,
        init: np.ndarray | None = None,
        init_counts: np.ndarray | None = None,
    ) -> "StreamingKMeans":
        """Fit on rows `[start, stop)` of `view`.

        Args:
            view: the rows to cluster.
            start: first row.
            stop: one past the last row (None: all committed rows).
            init: `[k, dim]` starting centroids (None: k-means++ and Lloyd on a reservoir
                sample).
            init_counts: `[k]` rows the `init` centroids already summarise. Given, the
                fit continues that model: the first step sees each old centroid as a row
                weighted `init_counts × passes`, so old and new rows keep their shares.

        Returns:
            self.

        Raises:
            SonotypeError: bad parameters, too few rows, or init of the wrong shape.
        """
        stop = view.n_rows if stop is None else stop
        # A continued model brings its k centroids as rows of the first step.
        self._validate(stop - start if init is None else stop - start + self.n_clusters)
        rng = np.random.default_rng(self.random_state)
        if init is None:
            self.reservoir_ = reservoir_sample(
                view, self.reservoir_size, rng, self.block_rows, start, stop
            )
            centres = (
                KMeans(self.n_clusters, n_init=self.n_init, random_state=self.random_state)
                .fit(self.reservoir_)
                .cluster_centers_
            )
        else:
            centres = np.asarray(init, np.float32)
            if centres.shape != (self.n_clusters, view.dim):
                raise SonotypeError(
                    f"init centroids must be [{self.n_clusters}, {view.dim}], got {centres.shape}"
                )
            self.reservoir_ = np.zeros((0, view.dim), np.float32)
        model = MiniBatchKMeans(
            n_clusters=self.n_clusters,
            init=centres,
            n_init=1,
            batch_size=self.batch_size,
            reassignment_ratio=self.reassignment_ratio,
            random_state=self.random_state,
            compute_labels=False,
        )
        if init is None:
            # partial_fit starts every count at zero and, on a first step whose rows miss a
            # centre (a block holds only a few recordings), "rescues" that centre to a
            # random row. A first step on the uniform reservoir gives every centre its count.
            model.partial_fit(self.reservoir_)
        carried = None if init_counts is None else np.asarray(init_counts, np.float64)
        blocks = view.block_ranges(self.block_rows, start, stop)
        self.max_block_rows_ = 0
        counts = np.zeros(self.n_clusters)
        inertia = 0.0
        with progress_bar(len(blocks) * self.passes, "chunks", "k-means passes") as bar:
            for pass_index in range(self.passes):
                # The final pass records the labels of each step: the counts come from it.
                final = pass_index == self.passes - 1
                for block_index in rng.permutation(len(blocks)):
                    first, last = blocks[block_index]
                    rows = view.read(first, last)
                    self.max_block_rows_ = max(self.max_block_rows_, len(rows))
                    # Consecutive frames are one recording; shuffling breaks that up so a
                    # mini-batch is not one sound.
                    order = rng.permutation(len(rows))
                    n_batches = max(1, round(len(rows) / self.batch_size))
                    for batch in np.array_split(order, n_batches):
                        x, weights = rows[batch], None
                        if carried is not None:
                            x = np.concatenate([centres, x])
                            weights = np.concatenate([carried * self.passes, np.ones(len(batch))])
                            carried = None
                        model.partial_fit(x, sample_weight=weights)
                        if final:
                            # What partial_fit's compute_labels gives, without the weighted
                            # old centroids of a continued model.
                            labels, distances = assign(rows[batch], model.cluster_centers_)
                            counts += np.bincount(labels, minlength=self.n_clusters)
                            inertia += float(distances.sum())
                    bar.update(1)
        self.cluster_centers_ = model.cluster_centers_.astype(np.float32)
        self.counts_ = counts + (0.0 if init_counts is None else np.asarray(init_counts, float))
        self.inertia_ = inertia
        self.n_rows_ = stop - start
        self.n_steps_ = int(model.n_steps_)
        logger.info(
            "k-means: k=%d on %d rows, %d passes, %d steps",
            self.n_clusters,
            self.n_rows_,
            self.passes,
            self.n_steps_,
        )
        return self

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Nearest fitted centroid of every row of float32 `[n, dim]` → int64 `[n]`."""
        return assign(rows, self.cluster_centers_)[0]

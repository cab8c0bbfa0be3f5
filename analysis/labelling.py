"""Labels written back to the store chunk by chunk: one Dask task per block of rows.

Each task opens the store by URL (so it runs on any Dask worker), reads one block,
assigns every row to its nearest centroid, writes those labels to `labels/<name>`
and returns counts. Blocks lie on the chunk grid, so no two tasks write one chunk.
"""

from dataclasses import dataclass

import numpy as np
from dask import delayed

from analysis.features import FeatureSpec
from analysis.incremental import label_changes
from analysis.kmeans import assign
from analysis.scheduler import run_tasks
from analysis.store import open_store


@dataclass(frozen=True)
class LabelCounts:
    """What labelling some rows found.

    Attributes:
        sizes: int64 `[k]`, rows given each sonotype.
        inertia: sum of squared distances of the rows to their centroid.
        n_rows: rows labelled.
        n_changed: rows whose sonotype differs under the `previous` centroids (0 if none).
        n_compared: rows compared with the `previous` centroids.
    """

    sizes: np.ndarray
    inertia: float
    n_rows: int
    n_changed: int
    n_compared: int

    def __add__(self, other: "LabelCounts") -> "LabelCounts":
        return LabelCounts(
            self.sizes + other.sizes,
            self.inertia + other.inertia,
            self.n_rows + other.n_rows,
            self.n_changed + other.n_changed,
            self.n_compared + other.n_compared,
        )


def label_block(
    spec: FeatureSpec,
    labels_name: str,
    centroids: np.ndarray,
    start: int,
    stop: int,
    previous: np.ndarray | None = None,
    previous_stop: int = 0,
) -> LabelCounts:
    """Label rows `[start, stop)` and write them to `labels/<labels_name>`.

    Args:
        spec: the rows.
        labels_name: the label array.
        centroids: `[k, dim]` in sonotype order.
        start: first row.
        stop: one past the last row.
        previous: centroids of the previous version, to count changed labels of the
            rows before `previous_stop` (None: no comparison).
        previous_stop: rows the previous version had seen.

    Returns:
        The counts of this block.
    """
    store = open_store(spec.url, mode="r+")
    rows = spec.open(store).read(start, stop)
    labels, distances = assign(rows, centroids)
    store.write_labels(labels_name, start, labels)
    n_changed = n_compared = 0
    if previous is not None and start < previous_stop:
        old_rows = rows[: min(stop, previous_stop) - start]
        n_changed = label_changes(old_rows, previous, centroids)
        n_compared = len(old_rows)
    return LabelCounts(
        np.bincount(labels, minlength=len(centroids)).astype(np.int64),
        float(distances.sum()),
        len(rows),
        n_changed,
        n_compared,
    )


def label_rows(
    spec: FeatureSpec,
    labels_name: str,
    centroids: np.ndarray,
    ranges: list[tuple[int, int]],
    client: object,
    workers: int,
    previous: np.ndarray | None = None,
    previous_stop: int = 0,
) -> LabelCounts:
    """Label every block of `ranges` in parallel (see `label_block`) and add up the counts."""
    tasks = [
        delayed(label_block, pure=False)(
            spec, labels_name, centroids, start, stop, previous, previous_stop
        )
        for start, stop in ranges
    ]
    total = LabelCounts(np.zeros(len(centroids), np.int64), 0.0, 0, 0, 0)
    for counts in run_tasks(tasks, client, workers, f"labels/{labels_name}"):
        total = total + counts
    return total

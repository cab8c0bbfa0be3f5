"""Labels written back to the store chunk by chunk: one Dask task per block of rows.

`ensure_labels` labels a committed clustering version and records it as complete in
the label array's attributes (`fit_id`, `version`, `n_labelled`), so that a re-run
after a crash relabels what is unfinished and skips what is done.

Each task opens the store by URL (so it runs on any Dask worker), reads one block,
assigns every row to its nearest centroid, writes those labels to `labels/<name>`
and returns counts. Blocks lie on the chunk grid, so no two tasks write one chunk.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
from dask import delayed

from analysis import clusters_io
from analysis.clusters_io import Clustering
from analysis.features import FeatureSpec
from analysis.incremental import label_changes
from analysis.kmeans import assign
from analysis.scheduler import run_tasks
from analysis.store import FeatureStore, open_store
from sonotype.config.cluster import ClusterConfig

_LABELS_FIT = "fit_id"
_LABELS_VERSION = "version"
_LABELS_N = "n_labelled"


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


def labels_complete(store: FeatureStore, name: str, clustering: Clustering) -> bool:
    """Whether `labels/<name>` holds the labels of the clustering's current version."""
    if name not in store.label_names():
        return False
    attrs = store.labels_attrs(name)
    # fit_id tells apart a new fit from labels left by a replaced clustering of that name.
    return (
        attrs.get(_LABELS_FIT) == clustering.model["fit_id"]
        and attrs.get(_LABELS_VERSION) == clustering.version
        and attrs.get(_LABELS_N) == clustering.n_rows
    )


def ensure_labels(
    store: FeatureStore,
    name: str,
    spec: FeatureSpec,
    clustering: Clustering,
    config: ClusterConfig,
    client: Any,
    workers: int,
) -> tuple[int, float]:
    """Label the current version's rows unless already done; returns (rows, mean inertia).

    After a fit (or an update with `relabel_all`) every row is labelled, comparing with
    the previous version's centroids for the exact share of old rows that moved; after
    an update, only the new rows. The version's history entry then gets `sizes`,
    `n_labelled`, `inertia` (and that exact share), and the label array's attributes
    record the version as complete.
    """
    if labels_complete(store, name, clustering):
        return 0, float("nan")
    entry = clustering.history[-1]
    relabel = entry["relabel_all"] or name not in store.label_names()
    start = 0 if relabel else clustering.n_rows - entry["n_new_rows"]
    if entry["kind"] == "fit" or name not in store.label_names():
        store.create_labels(name, spec.storage_level, clustering.k)
    previous = None
    previous_stop = 0
    if entry["kind"] == "update" and relabel:
        previous = clustering.centroids_of(clustering.version - 1)
        previous_stop = clustering.n_rows - entry["n_new_rows"]
    ranges = spec.open(store).block_ranges(config.block_rows, start, clustering.n_rows)
    counts = label_rows(
        spec, name, clustering.centroids, ranges, client, workers, previous, previous_stop
    )
    sizes = counts.sizes
    if not relabel:
        # an update may have opened new sonotypes: the earlier version had none of them
        before = np.asarray(clustering.history[-2]["sizes"], np.int64)
        sizes = sizes + np.pad(before, (0, len(sizes) - len(before)))
    changes: dict[str, Any] = {
        "sizes": sizes.tolist(),
        "n_labelled": counts.n_rows,
        "inertia": counts.inertia / max(1, counts.n_rows),
    }
    if counts.n_compared:
        # every old row was relabelled: those that moved were rewritten
        share = counts.n_changed / counts.n_compared
        changes.update(
            reassigned=share,
            reassigned_method="exact",
            reassigned_rows=counts.n_compared,
            relabelled=share,
        )
    clusters_io.update_history_entry(clustering.directory, clustering.version, changes)
    store.set_labels_attrs(
        name,
        {
            _LABELS_FIT: clustering.model["fit_id"],
            _LABELS_VERSION: clustering.version,
            _LABELS_N: clustering.n_rows,
        },
    )
    return counts.n_rows, changes["inertia"]

"""Stable sonotype identities across versions: matching, reassignment and drift.

When a new year arrives the model is continued (or refitted) and its raw centroid
order may differ from the previous version's: a refit starts from a new k-means++
draw, and MiniBatchKMeans may reassign a nearly empty centre elsewhere. The new
centroids are therefore matched one-to-one to the old ones by the Hungarian method
on squared Euclidean distances (scipy's `linear_sum_assignment`), so that sonotype j
keeps meaning the same sound.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from analysis.kmeans import assign
from sonotype.errors import SonotypeError


def match_centroids(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The one-to-one matching of new centroids to old sonotypes of least total distance.

    Args:
        old: `[k, dim]` centroids of the previous version, row j = sonotype j.
        new: `[k, dim]` raw centroids of the new fit.

    Returns:
        int64 `[k]` `mapping`, `mapping[j]` = row of `new` that becomes sonotype j;
        `new[mapping]` puts the new centroids in sonotype order.

    Raises:
        SonotypeError: the two sets differ in shape.
    """
    if old.shape != new.shape:
        raise SonotypeError(
            f"cannot match {new.shape[0]} new centroids of dim {new.shape[1]} to "
            f"{old.shape[0]} old ones of dim {old.shape[1]}: k and dim must not change"
        )
    cost = cdist(old.astype(np.float64), new.astype(np.float64), "sqeuclidean")
    rows, columns = linear_sum_assignment(cost)
    mapping = np.empty(len(old), np.int64)
    mapping[rows] = columns
    return mapping


def centroid_drift(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Euclidean distance each sonotype's centroid moved, float64 `[k]` (both in sonotype order)."""
    return np.linalg.norm(new.astype(np.float64) - old.astype(np.float64), axis=1)


def label_changes(rows: np.ndarray, old: np.ndarray, new: np.ndarray) -> int:
    """How many of `rows` change sonotype between the `old` and `new` centroids.

    Args:
        rows: float32 `[n, dim]`.
        old: `[k, dim]` previous centroids, sonotype order.
        new: `[k, dim]` new centroids, sonotype order.

    Returns:
        The number of rows whose nearest centroid index differs.
    """
    return int(np.count_nonzero(assign(rows, old)[0] != assign(rows, new)[0]))

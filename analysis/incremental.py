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
from sklearn.cluster import KMeans

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


CENTRE_FACTOR = 4.0
"""A new sonotype's centre lies beyond twice the far distance (4× its square) from every
old centroid."""


def far_groups(
    old_rows: np.ndarray,
    new_rows: np.ndarray,
    centroids: np.ndarray,
    quantile: float,
    min_share: float,
    most: int,
    random_state: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Dense groups of new rows that no old centroid covers: candidates for new sonotypes.

    A new row is far when its squared distance to the nearest centroid exceeds the
    `quantile` of the old rows' distances to theirs. The far rows are split by k-means
    into at most `most` groups; a group becomes a candidate when it holds at least
    `min_share` of the new rows, is dense (its rows lie closer to its centre, on
    average, than the old rows' `quantile` distance) and is itself far: its centre lies
    more than twice that distance from every old centroid. An old sound that moved has
    its far rows on one side of a centroid that still nearly covers it, its centre at
    about the old cloud's edge; a new sound lies outside every cloud.

    Args:
        old_rows: `[n, dim]` sample of the rows the centroids were fitted on.
        new_rows: `[m, dim]` sample of the rows just added.
        centroids: `[k, dim]` current centroids.
        quantile: what counts as far, e.g. 0.99.
        min_share: smallest group, as a share of `new_rows`.
        most: most groups returned.
        random_state: seed of the k-means on the far rows.

    Returns:
        float32 `[g, dim]` group centres and float64 `[g]` their shares of `new_rows`,
        largest first (g = 0 when nothing new is found).
    """
    dim = centroids.shape[1]
    none = np.zeros((0, dim), np.float32), np.zeros(0)
    if most < 1 or len(old_rows) == 0 or len(new_rows) == 0:
        return none
    threshold = float(np.quantile(assign(old_rows, centroids)[1], quantile))
    far = new_rows[assign(new_rows, centroids)[1] > threshold]
    least = max(2, int(np.ceil(min_share * len(new_rows))))
    if len(far) < least:
        return none
    n_groups = min(most, len(far) // least)
    model = KMeans(n_groups, n_init=3, random_state=random_state).fit(far)
    centres, shares = [], []
    for group in range(n_groups):
        members = far[model.labels_ == group]
        spread = float(np.mean(np.sum((members - model.cluster_centers_[group]) ** 2, axis=1)))
        centre = model.cluster_centers_[group][None].astype(np.float32)
        far_centre = assign(centre, centroids)[1][0] > CENTRE_FACTOR * threshold
        if len(members) >= least and spread < threshold and far_centre:
            centres.append(model.cluster_centers_[group])
            shares.append(len(members) / len(new_rows))
    if not centres:
        return none
    order = np.argsort(shares)[::-1]
    return np.asarray(centres, np.float32)[order], np.asarray(shares)[order]


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

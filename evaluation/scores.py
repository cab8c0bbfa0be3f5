"""Scores of a partition against labels, and of a representation by a linear probe.

- NMI, ARI and V-measure (scikit-learn) and purity (the share of windows whose
  cluster's most common label is their own) score a partition; label names and
  cluster numbers do not matter.
- The linear probe asks whether a representation carries the labels at all,
  separately from k-means: a logistic regression on standardised features,
  cross-validated with folds grouped by recording, so that no recording sits on both
  sides of a split (neighbouring windows of one recording are near-copies).
"""

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    adjusted_rand_score,
    normalized_mutual_info_score,
    v_measure_score,
)
from sklearn.metrics.cluster import contingency_matrix
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

PROBE_FOLDS = 5
PROBE_ITERATIONS = 300


def partition_scores(truth: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """NMI, ARI, V-measure and purity of `clusters` against `truth`."""
    table = contingency_matrix(truth, clusters)
    return {
        "nmi": float(normalized_mutual_info_score(truth, clusters)),
        "ari": float(adjusted_rand_score(truth, clusters)),
        "v_measure": float(v_measure_score(truth, clusters)),
        "purity": float(table.max(axis=0).sum() / table.sum()),
    }


def kmeans_partition(features: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k-means (10 starts) on standardised features, as the yardstick clusters them."""
    standardised = StandardScaler().fit_transform(features)
    return KMeans(k, n_init=10, random_state=seed).fit_predict(standardised)


def probe_accuracy(features: np.ndarray, truth: np.ndarray, groups: np.ndarray, seed: int) -> float:
    """Mean accuracy of a grouped, cross-validated linear probe (NaN if it cannot be run).

    Folds are `min(PROBE_FOLDS, number of groups)`; with fewer than two groups or one
    label there is nothing to cross-validate.
    """
    n_groups = len(np.unique(groups))
    if n_groups < 2 or len(np.unique(truth)) < 2:
        return float("nan")
    probe = make_pipeline(
        StandardScaler(),
        LogisticRegression(max_iter=PROBE_ITERATIONS, tol=1e-3, random_state=seed),
    )
    folds = GroupKFold(min(PROBE_FOLDS, n_groups))
    with warnings.catch_warnings():
        # A probe stopped after PROBE_ITERATIONS is a slightly low estimate, not an error.
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(probe, features, truth, groups=groups, cv=folds)
    return float(scores.mean())


def majority_share(truth: np.ndarray) -> float:
    """Accuracy of always answering the most common label: the probe's chance level."""
    _, counts = np.unique(truth, return_counts=True)
    return float(counts.max() / counts.sum())

"""Partition scores and the grouped linear probe."""

import numpy as np

from evaluation.scores import majority_share, partition_scores, probe_accuracy


def test_purity_counts_each_clusters_most_common_label():
    truth = np.array(["a", "a", "a", "b", "b", "c"])
    clusters = np.array([0, 0, 1, 1, 1, 1])
    # cluster 0: a a (2); cluster 1: a b b c (2) → 4 of 6
    assert partition_scores(truth, clusters)["purity"] == 4 / 6


def test_scores_ignore_cluster_numbering():
    truth = np.array(["x", "x", "y", "y"])
    assert partition_scores(truth, np.array([5, 5, 2, 2]))["nmi"] == 1.0
    assert partition_scores(truth, np.array([5, 2, 5, 2]))["ari"] < 0


def test_the_probe_reads_labels_that_features_carry_across_recordings():
    rng = np.random.default_rng(0)
    truth = np.repeat(["a", "b"], 60)
    groups = np.tile(np.arange(6), 20)
    carrying = rng.normal(0, 1, (120, 3)) + (truth == "a")[:, None] * 4.0
    assert probe_accuracy(carrying, truth, groups, seed=0) > 0.95
    assert probe_accuracy(rng.normal(0, 1, (120, 3)), truth, groups, seed=0) < 0.75


def test_the_probe_never_trains_and_tests_on_one_recording():
    # each recording has its own offset and its own label: a probe that saw the
    # recording would be perfect; grouped folds leave it at chance or below
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(8), 15)
    truth = np.where(groups % 2 == 0, "a", "b")
    offsets = rng.normal(0, 5, (8, 4))
    features = offsets[groups] + rng.normal(0, 0.1, (120, 4))
    assert probe_accuracy(features, truth, groups, seed=0) < 0.8
    assert np.isnan(probe_accuracy(features, truth, np.zeros(120), seed=0))


def test_chance_is_the_share_of_the_most_common_label():
    assert majority_share(np.array(["a", "a", "a", "b"])) == 0.75

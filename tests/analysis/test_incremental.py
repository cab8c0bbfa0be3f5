"""Matching centroids across versions, drift and label changes, on hand-made cases."""

import datetime as dt

import numpy as np
import pytest

from analysis.features import FeatureSpec
from analysis.incremental import centroid_drift, far_groups, label_changes, match_centroids
from analysis.labelling import label_rows
from analysis.store import create_store
from sonotype.errors import SonotypeError
from tests.analysis.synthetic import identity, make_batch


def test_matching_recovers_a_permutation_of_perturbed_centroids():
    rng = np.random.default_rng(0)
    old = rng.normal(0, 5, (12, 16))
    permutation = rng.permutation(12)
    new = old[permutation] + rng.normal(0, 0.2, (12, 16))
    mapping = match_centroids(old, new)
    # sonotype j is the new row that came from old row j
    assert (permutation[mapping] == np.arange(12)).all()
    np.testing.assert_allclose(new[mapping], old, atol=1.0)


def test_matching_is_global_not_greedy():
    # Greedy nearest-first would pair old 0 with new 0 (cost 1), then old 1 with new 1
    # (cost 169): 170. The assignment of least total cost swaps them: 9 + 81 = 90.
    old = np.array([[0.0], [10.0]])
    new = np.array([[1.0], [-3.0]])
    assert match_centroids(old, new).tolist() == [1, 0]


def test_matching_refuses_other_shapes():
    with pytest.raises(SonotypeError, match="k and dim must not change"):
        match_centroids(np.zeros((3, 2)), np.zeros((4, 2)))


def test_drift_and_label_changes_by_hand():
    old = np.array([[0.0, 0.0], [10.0, 0.0]])
    new = np.array([[0.0, 0.0], [4.0, 0.0]])
    assert centroid_drift(old, new).tolist() == [0.0, 6.0]
    rows = np.stack([np.arange(11.0), np.zeros(11)], axis=1).astype(np.float32)
    # old: x <= 5 → 0 (5 is a tie, first wins); new: x <= 2 → 0: x = 3, 4, 5 change.
    assert label_changes(rows, old, new) == 3


def test_labelling_counts_exact_churn_chunk_by_chunk(tmp_path):
    store = create_store(str(tmp_path / "f.zarr"), identity(2), frames_per_chunk=4)
    rows = np.stack([np.arange(11.0), np.zeros(11)], axis=1)
    batch = make_batch(np.zeros((1, 2)), 1, 11, np.random.default_rng(0), dt.datetime(2024, 1, 1))
    store.append(np.zeros(11, np.int16), rows, batch.segments)
    store.create_labels("x", "frame", 2)
    spec = FeatureSpec(store.url, "frame", "embeddings", "none")
    old = np.array([[0.0, 0.0], [10.0, 0.0]])
    new = np.array([[0.0, 0.0], [4.0, 0.0]])
    ranges = store.block_ranges("frame", 1)
    assert len(ranges) == 3
    counts = label_rows(spec, "x", new, ranges, None, 2, previous=old, previous_stop=9)
    # rows 0..8 were seen before: x = 3, 4, 5 change
    assert (counts.n_changed, counts.n_compared, counts.n_rows) == (3, 9, 11)
    assert counts.sizes.tolist() == [3, 8]
    assert store.array("labels/x")[:].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    # squared distances: 0,1,4 to 0; (x-4)^2 for x = 3..10 → 1,0,1,4,9,16,25,36
    assert counts.inertia == pytest.approx(5 + 92)


def test_far_groups_need_enough_rows_and_a_centre_outside_every_old_cloud():
    rng = np.random.default_rng(0)
    centroids = np.array([[0.0, 0.0], [10.0, 0.0]], np.float32)
    old = np.concatenate([c + rng.normal(0, 0.5, (500, 2)) for c in centroids]).astype(np.float32)
    familiar = old[rng.choice(len(old), 900)]
    new_sound = (np.array([0.0, 20.0]) + rng.normal(0, 0.5, (100, 2))).astype(np.float32)
    centres, shares = far_groups(
        old, np.concatenate([familiar, new_sound]), centroids, 0.99, 0.02, 2, 0
    )
    assert len(centres) == 1
    np.testing.assert_allclose(centres[0], [0.0, 20.0], atol=0.2)
    assert shares[0] == pytest.approx(0.1, abs=0.01)
    # the same sound, but only 1 % of the new rows: not enough for a sonotype
    rare = np.concatenate([familiar, new_sound[:9]])
    assert len(far_groups(old, rare, centroids, 0.99, 0.02, 2, 0)[0]) == 0
    # an old sound that moved by about its spread stays its own sonotype
    moved = np.concatenate([familiar, old[:500] + np.float32(1.2)])
    assert len(far_groups(old, moved, centroids, 0.99, 0.02, 2, 0)[0]) == 0
    assert (
        len(far_groups(old, np.concatenate([familiar, new_sound]), centroids, 0.99, 0.02, 0, 0)[0])
        == 0
    )

"""Streaming k-means: finds known blobs, matches in-memory k-means, bounded memory, seeded init."""

import datetime as dt

import numpy as np
import pytest
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.metrics import adjusted_rand_score

from analysis.features import FeatureSpec, FeatureView
from analysis.incremental import match_centroids
from analysis.kmeans import StreamingKMeans, assign, block_sample, reservoir_sample
from analysis.store import create_store
from sonotype.errors import SonotypeError
from tests.analysis.synthetic import blob_centres, identity, make_batch, write_store

START = dt.datetime(2024, 3, 15, 5, 0, tzinfo=dt.UTC)
K, DIM = 5, 8


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    """8000 frames (40 chunks of 200) from 5 known blobs."""
    url = str(tmp_path_factory.mktemp("blobs") / "features.zarr")
    centres = blob_centres(K, DIM)
    batch = make_batch(centres, 160, 50, np.random.default_rng(3), START)
    write_store(url, [batch], frames_per_chunk=200, segments_per_chunk=16)
    return url, centres, batch


class RecordingView(FeatureView):
    """A view that remembers the largest read."""

    max_rows = 0

    def read(self, start, stop):
        RecordingView.max_rows = max(RecordingView.max_rows, stop - start)
        return super().read(start, stop)


def _view(url, level="frame", feature="embeddings", normalise="none"):
    return FeatureSpec(url, level, feature, normalise).open()


def _estimator(**changes):
    params = dict(batch_size=256, block_rows=1000, passes=2, reservoir_size=1000, random_state=0)
    return StreamingKMeans(K, **{**params, **changes})


def test_finds_the_blobs_and_matches_in_memory_kmeans(blobs):
    url, centres, batch = blobs
    view = _view(url)
    model = _estimator().fit(view)
    # the known centres, up to order
    order = match_centroids(centres, model.cluster_centers_)
    np.testing.assert_allclose(model.cluster_centers_[order], centres, atol=0.1)
    data = view.read(0, view.n_rows)
    labels, distances = assign(data, model.cluster_centers_)
    assert adjusted_rand_score(batch.blob_of_frame, labels) == 1.0
    inertia = distances.sum()
    exact = KMeans(K, n_init=3, random_state=0).fit(data).inertia_
    in_memory = MiniBatchKMeans(K, batch_size=256, n_init=3, random_state=0).fit(data)
    assert inertia <= 1.02 * exact
    assert inertia <= 1.02 * in_memory.inertia_
    # counts are the final pass's rows per centroid: every frame once
    np.testing.assert_array_equal(np.sort(model.counts_), np.sort(np.bincount(labels)))
    assert model.n_rows_ == 8000


def test_memory_is_bounded_by_the_block(blobs):
    url, _, _ = blobs
    spec = FeatureSpec(url, "frame", "embeddings", "none")
    view = RecordingView(spec.open().store, spec)
    RecordingView.max_rows = 0
    model = _estimator(block_rows=300, reservoir_size=500).fit(view)
    # 300 rows round up to two 200-frame chunks; the data are 8000 rows
    assert RecordingView.max_rows == 400
    assert model.max_block_rows_ == 400
    assert model.reservoir_.shape == (500, DIM)


def test_reservoir_and_init_are_seeded(blobs):
    url, _, _ = blobs
    view = _view(url)
    first = reservoir_sample(view, 300, np.random.default_rng(7), 1000)
    second = reservoir_sample(view, 300, np.random.default_rng(7), 1000)
    other = reservoir_sample(view, 300, np.random.default_rng(8), 1000)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)
    assert first.shape == (300, DIM)
    # exactly the rows of the 300 smallest uniform keys, one key per row in row order
    keys = np.random.default_rng(7).random(view.n_rows)
    data = view.read(0, view.n_rows)
    np.testing.assert_array_equal(first, data[np.sort(np.argsort(keys)[:300])])
    # drawn from all over the data, not the first blocks
    index = [int(np.flatnonzero((data == row).all(axis=1))[0]) for row in first]
    assert len(set(index)) == 300
    assert max(index) > 6000
    assert min(index) < 2000
    a = _estimator().fit(view)
    b = _estimator().fit(view)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    c = _estimator(random_state=1).fit(view)
    assert not np.array_equal(a.cluster_centers_, c.cluster_centers_)


def test_block_sample_draws_the_asked_rows(blobs):
    url, _, _ = blobs
    view = _view(url)
    sample = block_sample(view, 450, np.random.default_rng(0), 1000, 0, 3000)
    data = view.read(0, 3000)
    assert sample.shape == (450, DIM)
    assert all((data == row).all(axis=1).any() for row in sample[:20])


def test_continuing_weights_old_centroids_by_their_counts(tmp_path):
    # Two far groups; 1000 new rows all at x=1 beside the old centre at 0 (count 1000):
    # one step gives (1000·0 + 1000·1) / 2000 = 0.5.
    store = create_store(str(tmp_path / "f.zarr"), identity(2), 2000)
    rows = np.tile([[1.0, 0.0]], (1000, 1))
    segments = make_batch(np.zeros((1, 2), np.float32), 1, 1000, np.random.default_rng(0), START)
    store.append(np.zeros(1000, np.int16), rows, segments.segments)
    model = StreamingKMeans(
        2, batch_size=2000, block_rows=2000, passes=1, reassignment_ratio=0.0
    ).fit(
        _view(store.url),
        init=np.array([[0.0, 0.0], [100.0, 0.0]]),
        init_counts=np.array([1000.0, 1000.0]),
    )
    np.testing.assert_allclose(model.cluster_centers_, [[0.5, 0.0], [100.0, 0.0]], atol=1e-3)
    np.testing.assert_array_equal(model.counts_, [2000.0, 1000.0])
    assert model.reservoir_.shape == (0, 2)


def test_bad_parameters_and_too_few_rows_are_named_errors(blobs):
    url, _, _ = blobs
    with pytest.raises(SonotypeError, match="passes must be a positive int"):
        _estimator(passes=0).fit(_view(url))
    with pytest.raises(SonotypeError, match="needs at least 5 rows, found 3"):
        _estimator().fit(_view(url), start=0, stop=3)
    with pytest.raises(SonotypeError, match=r"init centroids must be \[5, 8\]"):
        _estimator().fit(_view(url), init=np.zeros((4, 8)))


def test_segment_features_pooled_and_bag_of_tokens(blobs):
    url, _, batch = blobs
    pooled = _view(url, "segment", "embeddings", "l2")
    rows = pooled.read(0, 10)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)
    bag = _view(url, "segment", "tokens", "none").read(3, 5)
    assert bag.shape == (2, 64)
    # make_batch: 50 frames per segment, tokens blob*8 and blob*8+1 alternating
    for row, blob in zip(bag, batch.blob_of_segment[3:5], strict=True):
        assert row[blob * 8] == 25
        assert row[blob * 8 + 1] == 25
        assert row.sum() == 50
    with pytest.raises(SonotypeError, match="segments only"):
        _view(url, "frame", "tokens")

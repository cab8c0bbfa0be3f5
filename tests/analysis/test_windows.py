"""Window-level clustering: each frame carries its window's statistics; labels per window."""

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
import zarr

from analysis import FeatureSpec, cluster_features, clusters_dir, load_clustering, open_store
from analysis.features import WINDOW
from analysis.store import create_store
from sonotype.config.cluster import ClusterConfig
from sonotype.errors import SonotypeError
from tests.analysis.synthetic import FRAME_RATE, blob_centres, identity, make_batch, write_store

START = dt.datetime(2024, 3, 15, 5, 0, tzinfo=dt.UTC)
FRAMES_PER_SEGMENT = 25  # 2.5 s: two 1 s windows, the last one 15 frames long
WINDOW_FRAMES = int(FRAME_RATE)


@pytest.fixture
def store_url(tmp_path):
    rng = np.random.default_rng(3)
    batches = [
        make_batch(blob_centres(3, 6), 16, FRAMES_PER_SEGMENT, rng, START, noise=2.0),
        make_batch(blob_centres(3, 6), 9, FRAMES_PER_SEGMENT, rng, START, prefix="b", noise=2.0),
    ]
    url = str(tmp_path / "features.zarr")
    # chunks of 64 frames cut windows and segments, so reads must reach across them
    write_store(url, batches, frames_per_chunk=64, segments_per_chunk=4)
    return url


def _expected_rows(store) -> np.ndarray:
    """Each frame's window statistics and level, computed segment by segment the slow way."""
    embeddings = store.read("embeddings", 0, store.n_frames).astype(np.float64)
    loudness = store.read("loudness", 0, store.n_frames).astype(np.float64)
    rows = np.zeros((store.n_frames, 2 * store.dim + 1), np.float32)
    for segment in store.read_segments(columns=["frame_start", "n_frames"]).to_pylist():
        first, n = segment["frame_start"], segment["n_frames"]
        n_windows = max(1, n // WINDOW_FRAMES)
        for w in range(n_windows):
            a = first + w * WINDOW_FRAMES
            b = first + n if w == n_windows - 1 else a + WINDOW_FRAMES
            window = embeddings[a:b]
            level = 10 * np.log10(np.mean(10 ** (loudness[a:b] / 10)))
            rows[a:b] = np.concatenate([window.mean(0), window.std(0), [level]])
    return rows


@pytest.mark.parametrize(("start", "stop"), [(0, 64), (37, 101), (60, 65), (500, 625)])
def test_a_block_of_frames_reads_the_statistics_of_their_windows(store_url, start, stop):
    store = open_store(store_url)
    spec = FeatureSpec(
        store_url, WINDOW, "embeddings", "none", window_frames=WINDOW_FRAMES, loudness=True
    )
    view = spec.open()
    assert view.dim == 2 * store.dim + 1
    assert view.n_rows == store.n_frames
    np.testing.assert_allclose(
        view.read(start, stop), _expected_rows(store)[start:stop], rtol=1e-4, atol=1e-4
    )
    without = replace(spec, loudness=False).open()
    np.testing.assert_array_equal(without.read(start, stop), view.read(start, stop)[:, :-1])


def test_standard_rows_are_centred_and_scaled_by_the_saved_moments(store_url):
    config = ClusterConfig(
        k=3, level="window", normalise="standard", block_rows=64, batch_size=64, k_selection=[]
    )
    cluster_features(store_url, name="std", config=config, workers=1)
    clustering = load_clustering(clusters_dir(store_url, "std"))
    spec = clustering.feature_spec(store_url)
    assert spec.loudness
    assert spec.scale is not None
    rows = spec.open().read(0, open_store(store_url).n_frames)
    np.testing.assert_allclose(rows.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(rows.std(axis=0), 1.0, atol=1e-3)


def test_loudness_of_a_store_written_without_it_is_a_clear_error(tmp_path):
    rng = np.random.default_rng(0)
    batch = make_batch(blob_centres(2, 4), 4, 20, rng, START)
    url = str(tmp_path / "old.zarr")
    store = create_store(url, identity(4), 64, 4)
    store.append(batch.tokens, batch.embeddings, batch.segments)  # no loudness: NaN
    spec = FeatureSpec(url, WINDOW, "embeddings", "none", window_frames=10, loudness=True)
    with pytest.raises(SonotypeError, match="no recorded loudness"):
        spec.open().read(0, 20)
    zarr.open_group(url, mode="r+").__delitem__("loudness")
    with pytest.raises(SonotypeError, match="holds no per-frame loudness"):
        spec.open()


def test_window_level_labels_are_constant_within_a_window_and_follow_the_blobs(store_url):
    config = ClusterConfig(
        k=3, level="window", window_s=1.0, block_rows=64, batch_size=64, k_selection=[]
    )
    summary = cluster_features(store_url, name="win", config=config, workers=1)
    store = open_store(store_url)
    labels = store.read("labels/win", 0, store.n_frames)
    assert store.labels_level("win") == "frame"
    assert summary.n_rows == store.n_frames
    for segment in store.read_segments(columns=["frame_start", "n_frames"]).to_pylist():
        first, n = segment["frame_start"], segment["n_frames"]
        assert len(set(labels[first : first + WINDOW_FRAMES])) == 1
        assert len(set(labels[first + WINDOW_FRAMES : first + n])) == 1  # with the remainder
    # a segment is one blob: both its windows land in one sonotype
    assert all(
        labels[s["frame_start"]] == labels[s["frame_start"] + s["n_frames"] - 1]
        for s in store.read_segments(columns=["frame_start", "n_frames"]).to_pylist()
    )


def test_window_frames_come_exactly_with_the_window_level():
    with pytest.raises(SonotypeError, match="window_frames"):
        FeatureSpec("x", WINDOW, "embeddings", "none").open()
    with pytest.raises(SonotypeError, match="window_frames"):
        FeatureSpec("x", "frame", "embeddings", "none", window_frames=10).open()


def test_balanced_rows_give_each_block_of_columns_the_same_total_weight(store_url):
    config = ClusterConfig(
        k=3, level="window", normalise="balanced", block_rows=64, batch_size=64, k_selection=[]
    )
    cluster_features(store_url, name="bal", config=config, workers=1)
    spec = load_clustering(clusters_dir(store_url, "bal")).feature_spec(store_url)
    store = open_store(store_url)
    rows = spec.open().read(0, store.n_frames).astype(np.float64)
    variance = rows.var(axis=0)
    dim = store.dim
    # means, spreads, level: each block's columns add up to a variance of one
    assert variance[:dim].sum() == pytest.approx(1.0, rel=1e-3)
    assert variance[dim : 2 * dim].sum() == pytest.approx(1.0, rel=1e-3)
    assert variance[-1] == pytest.approx(1.0, rel=1e-3)

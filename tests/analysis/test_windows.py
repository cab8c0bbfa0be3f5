"""Window-level clustering: each frame carries its window's statistics; labels per window."""

import datetime as dt

import numpy as np
import pytest

from analysis import FeatureSpec, cluster_features, open_store
from analysis.features import WINDOW
from sonotype.config.cluster import ClusterConfig
from sonotype.errors import SonotypeError
from tests.analysis.synthetic import FRAME_RATE, blob_centres, make_batch, write_store

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
    """Each frame's window statistics, computed segment by segment the slow way."""
    embeddings = store.read("embeddings", 0, store.n_frames).astype(np.float64)
    rows = np.zeros((store.n_frames, 2 * store.dim), np.float32)
    for segment in store.read_segments(columns=["frame_start", "n_frames"]).to_pylist():
        first, n = segment["frame_start"], segment["n_frames"]
        n_windows = max(1, n // WINDOW_FRAMES)
        for w in range(n_windows):
            a = first + w * WINDOW_FRAMES
            b = first + n if w == n_windows - 1 else a + WINDOW_FRAMES
            window = embeddings[a:b]
            rows[a:b] = np.concatenate([window.mean(0), window.std(0)])
    return rows


@pytest.mark.parametrize(("start", "stop"), [(0, 64), (37, 101), (60, 65), (500, 625)])
def test_a_block_of_frames_reads_the_statistics_of_their_windows(store_url, start, stop):
    store = open_store(store_url)
    view = FeatureSpec(store_url, WINDOW, "embeddings", "none", window_frames=WINDOW_FRAMES).open()
    assert view.dim == 2 * store.dim
    assert view.n_rows == store.n_frames
    np.testing.assert_allclose(
        view.read(start, stop), _expected_rows(store)[start:stop], rtol=1e-5, atol=1e-5
    )


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

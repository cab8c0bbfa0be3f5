"""normalise="centred-l2": rows around the fit's mean, a centre kept across updates."""

import datetime as dt

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from analysis.clustering import cluster_features
from analysis.clusters_io import load_clustering
from analysis.features import FeatureSpec, row_moments
from analysis.store import open_store
from sonotype.config.cluster import ClusterConfig
from sonotype.errors import SonotypeError
from tests.analysis.synthetic import append, blob_centres, make_batch, write_store

K, DIM = 4, 8
# Every embedding shares this offset, 50 times the distance between sounds (a tokenizer's
# encoder output looks like this: all rows within a degree of one direction).
OFFSET = np.full(DIM, 200.0, np.float32)
NEW_YEAR = [0, 0, 0, 1]
"""The new year's sounds: mostly the first, some of the second (blob i → old blob)."""
CONFIG = ClusterConfig(
    k=K,
    level="frame",
    normalise="centred-l2",
    block_rows=400,
    batch_size=256,
    reservoir_size=1000,
    k_selection=[],
    timezone="UTC",
)


def _years(tmp_path):
    centres = blob_centres(K, DIM, spread=4.0) + OFFSET
    rng = np.random.default_rng(5)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    year1 = make_batch(centres, 80, 40, rng, start, noise=0.3, prefix="y1")
    # the new year is louder overall: its mean moves, the sounds stay where they were
    year2 = make_batch(centres[NEW_YEAR], 40, 40, rng, start.replace(year=2025), prefix="y2")
    url = str(tmp_path / "out" / "features.zarr")
    write_store(url, [year1], frames_per_chunk=200)
    return url, year1, year2


def test_rows_are_centred_then_unit_length(tmp_path):
    url, _, _ = _years(tmp_path)
    raw = FeatureSpec(url, "frame", "embeddings", "none").open()
    stored = raw.read(0, raw.n_rows)  # float16 in the store: not year1.embeddings exactly
    centre, _ = row_moments(raw, block_rows=300)
    np.testing.assert_allclose(centre, stored.astype(np.float64).mean(axis=0), rtol=1e-9)
    view = FeatureSpec(url, "frame", "embeddings", "centred-l2", centre).open()
    expected = stored[100:700] - np.asarray(centre, np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(view.read(100, 700), expected, rtol=1e-5, atol=1e-6)


def test_a_centre_goes_with_centred_l2_only(tmp_path):
    url, _, _ = _years(tmp_path)
    with pytest.raises(SonotypeError, match="centre"):
        FeatureSpec(url, "frame", "embeddings", "centred-l2").open()
    with pytest.raises(SonotypeError, match="centre"):
        FeatureSpec(url, "frame", "embeddings", "l2", (0.0,) * DIM).open()


def test_sounds_sharing_an_offset_are_found_and_the_centre_survives_updates(tmp_path):
    url, year1, year2 = _years(tmp_path)
    cluster_features(url, config=CONFIG)
    clustering = load_clustering(str(tmp_path / "out" / "clusters" / "default"))
    np.testing.assert_allclose(clustering.centre, year1.embeddings.mean(axis=0), atol=0.01)
    labels = open_store(url).array("labels/default")[:]
    assert adjusted_rand_score(year1.blob_of_frame, labels) == 1.0

    append(open_store(url, mode="r+"), year2)
    summary = cluster_features(url, config=CONFIG, update=True)
    updated = load_clustering(summary.directory)
    # the space does not move with the new year's mean, so last year's labels hold
    np.testing.assert_array_equal(updated.centre, clustering.centre)
    assert summary.reassigned == 0.0
    assert summary.relabelled == 0.0
    labels = open_store(url).array("labels/default")[:]
    n_old = len(year1.blob_of_frame)
    old_label = dict(zip(year1.blob_of_frame.tolist(), labels[:n_old], strict=True))
    expected = np.array([old_label[NEW_YEAR[blob]] for blob in year2.blob_of_frame.tolist()])
    np.testing.assert_array_equal(labels[n_old:], expected)

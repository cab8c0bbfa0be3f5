"""The report's pass over the store: examples against brute force, sizes, the map sample."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from analysis import cluster_features, load_clustering, open_store
from analysis.features import FeatureSpec
from analysis.report.scan import Candidates, best_candidates, scan_store
from sonotype.config.cluster import ClusterConfig
from tests.analysis.report.fake_out import CLUSTER, FakeOut, K


def _spec(store_url: str, clustering) -> FeatureSpec:
    return clustering.feature_spec(store_url)


def _brute_force(store, spec, name, centroids, per_sonotype):
    """Every (segment, sonotype) pair scored naively, then the best per sonotype."""
    view = spec.open(store)
    rows = view.read(0, view.n_rows)
    labels = store.array(f"labels/{name}")[: view.n_rows]
    table = store.read_segments().to_pylist()
    scored = []
    for segment in table:
        if spec.level == "frame":
            first, n = segment["frame_start"], segment["n_frames"]
            mine, mine_labels = rows[first : first + n], labels[first : first + n]
        else:
            index = segment["segment_index"]
            mine, mine_labels, n = rows[index : index + 1], labels[index : index + 1], 1
        for sonotype in sorted(set(mine_labels.tolist())):
            chosen = mine[mine_labels == sonotype]
            distance = np.linalg.norm(chosen - centroids[sonotype], axis=1).mean()
            scored.append((sonotype, len(chosen) / n, distance, segment["segment_index"]))
    best = {}
    for sonotype in range(len(centroids)):
        ranked = sorted((s for s in scored if s[0] == sonotype), key=lambda s: (-s[1], s[2], s[3]))
        best[sonotype] = [(s[3], s[1], s[2]) for s in ranked[:per_sonotype]]
    return best


def test_best_candidates_keeps_the_top_rows_per_sonotype_in_rank_order():
    candidates = Candidates(
        sonotype=np.array([1, 0, 1, 0, 1, 0]),
        segment=np.array([10, 11, 12, 13, 14, 15]),
        share=np.array([0.5, 1.0, 0.9, 1.0, 0.9, 0.2]),
        distance=np.array([0.1, 0.3, 0.2, 0.1, 0.2, 0.0]),
    )
    best = best_candidates(candidates, 2)
    # Sonotype 0: shares 1.0 (dist 0.1, seg 13) then 1.0 (dist 0.3); sonotype 1: two ties
    # at share 0.9 and distance 0.2, broken by the segment index.
    assert best.of(0) == [(13, 1.0, 0.1), (11, 1.0, 0.3)]
    assert best.of(1) == [(12, 0.9, 0.2), (14, 0.9, 0.2)]


@pytest.mark.parametrize("block_rows", [37, 100000])
def test_frame_level_examples_match_brute_force(fake_out: FakeOut, block_rows: int):
    store = open_store(fake_out.store)
    clustering = load_clustering(f"{fake_out.out}/clusters/default")
    spec = _spec(fake_out.store, clustering)
    scan = scan_store(
        store, spec, "default", clustering.centroids, clustering.n_rows, 3, 200, block_rows, 0
    )
    expected = _brute_force(store, spec, "default", clustering.centroids, 3)
    for sonotype in range(K):
        found = scan.candidates.of(sonotype)
        assert [f[0] for f in found] == [e[0] for e in expected[sonotype]]
        assert [f[1] for f in found] == pytest.approx([e[1] for e in expected[sonotype]])
        assert [f[2] for f in found] == pytest.approx([e[2] for e in expected[sonotype]], 1e-5)
    labels = store.array("labels/default")[: clustering.n_rows]
    assert scan.sizes.tolist() == np.bincount(labels, minlength=K).tolist()
    assert scan.seconds == pytest.approx(scan.sizes / store.frame_rate)
    assert (scan.n_labelled, scan.n_unlabelled) == (clustering.n_rows, 0)


def test_the_map_sample_is_uniform_rows_of_the_store_with_their_labels(fake_out: FakeOut):
    store = open_store(fake_out.store)
    clustering = load_clustering(f"{fake_out.out}/clusters/default")
    spec = _spec(fake_out.store, clustering)
    args = (store, spec, "default", clustering.centroids, clustering.n_rows, 0, 150, 64)
    scan = scan_store(*args, random_state=3)
    rows = spec.open(store).read(0, store.n_frames)
    labels = store.array("labels/default")[:]
    distances = np.linalg.norm(scan.map_rows[:, None, :] - rows[None, :, :], axis=2)
    index = distances.argmin(axis=1)
    assert scan.map_rows.shape == (150, rows.shape[1])
    assert distances.min(axis=1).max() == 0.0
    assert len(set(index.tolist())) == 150
    assert np.all(np.diff(index) > 0)  # in row order
    assert scan.map_labels.tolist() == labels[index].tolist()
    # Drawn from the whole store (both years), not from its first blocks.
    assert index.min() < 200
    assert index.max() > store.n_frames - 200
    again = scan_store(*args, random_state=3)
    assert np.array_equal(again.map_rows, scan.map_rows)


def test_rows_past_the_labelled_ones_are_counted_unlabelled(fake_out: FakeOut):
    store = open_store(fake_out.store)
    clustering = load_clustering(f"{fake_out.out}/clusters/default")
    spec = _spec(fake_out.store, clustering)
    scan = scan_store(store, spec, "default", clustering.centroids, 500, 1, 50, 128, 0)
    assert (scan.n_labelled, scan.n_unlabelled) == (500, store.n_frames - 500)
    assert all(s < 25 for s in scan.candidates.segment)  # frames 0..499 = segments 0..24


def test_segment_level_examples_are_the_segments_nearest_the_centroid(
    fake_out: FakeOut, tmp_path: Path
):
    out = tmp_path / "out"
    shutil.copytree(fake_out.out, out)
    url = str(out / "features.zarr")
    config = ClusterConfig(**{**CLUSTER.model_dump(), "level": "segment", "k_selection": []})
    cluster_features(url, "seg", config, workers=1)
    store = open_store(url)
    clustering = load_clustering(str(out / "clusters" / "seg"))
    spec = _spec(url, clustering)
    scan = scan_store(store, spec, "seg", clustering.centroids, clustering.n_rows, 2, 30, 5, 0)
    expected = _brute_force(store, spec, "seg", clustering.centroids, 2)
    for sonotype in range(K):
        found = scan.candidates.of(sonotype)
        assert [f[0] for f in found] == [e[0] for e in expected[sonotype]]
        assert all(f[1] == 1.0 for f in found)
    durations = store.read_segments(columns=["duration_s"]).column("duration_s").to_numpy()
    assert scan.seconds.sum() == pytest.approx(durations.sum())

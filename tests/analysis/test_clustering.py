"""cluster_features end to end on synthetic stores: labels, updates, resume, conflicts, Dask."""

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import adjusted_rand_score

from analysis import clusters_io, labelling
from analysis.clustering import cluster_features
from analysis.clusters_io import load_clustering
from analysis.features import FeatureSpec
from analysis.kmeans import assign
from analysis.store import UNLABELLED, open_store
from analysis.store_integrity import verify_store
from sonotype.config.cluster import ClusterConfig
from sonotype.errors import OutputConflictError, SonotypeError
from tests.analysis.synthetic import append, blob_centres, make_batch, write_store

YEAR1 = dt.datetime(2024, 3, 15, 5, 0, tzinfo=dt.UTC)
YEAR2 = dt.datetime(2025, 3, 15, 5, 0, tzinfo=dt.UTC)
K, DIM = 4, 8
CONFIG = ClusterConfig(
    k=K,
    level="frame",  # frame-level rows: each frame its own row
    normalise="none",
    block_rows=400,
    batch_size=256,
    reservoir_size=1000,
    k_selection=[2, 4],
    silhouette_sample=300,
)


def _config(**changes) -> ClusterConfig:
    return ClusterConfig(**{**CONFIG.model_dump(), **changes})


@pytest.fixture
def years(tmp_path):
    """Year 1 (4800 frames) in a store; year 2 (2400 frames, centres moved a little) aside."""
    centres = blob_centres(K, DIM)
    rng = np.random.default_rng(11)
    year1 = make_batch(centres, 120, 40, rng, YEAR1, prefix="y1")
    moved = centres + rng.normal(0, 0.3, centres.shape).astype(np.float32)
    year2 = make_batch(moved, 60, 40, rng, YEAR2, prefix="y2")
    url = str(tmp_path / "out" / "features.zarr")
    write_store(url, [year1], frames_per_chunk=200, segments_per_chunk=16)
    return url, year1, year2


def _labels(url: str, name: str = "default") -> np.ndarray:
    return open_store(url).array(f"labels/{name}")[:]


def _label_of_blob(labels: np.ndarray, blobs: np.ndarray) -> dict[int, int]:
    pairs = set(zip(blobs.tolist(), labels.tolist(), strict=True))
    assert len(pairs) == K, "each blob should be exactly one sonotype"
    return dict(pairs)


def test_fit_labels_exactly_the_committed_frames(years, monkeypatch):
    url, year1, year2 = years
    store = open_store(url, mode="r+")

    # An encode killed at its commit leaves year 2's rows past the committed length.
    def killed(self, attrs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(store.group), "update_attributes", killed)
    with pytest.raises(KeyboardInterrupt):
        append(store, year2)
    monkeypatch.undo()

    summary = cluster_features(url, config=CONFIG)
    assert (summary.action, summary.version, summary.n_rows, summary.n_labelled) == (
        "fit",
        1,
        4800,
        4800,
    )
    labels = _labels(url)
    assert labels.shape == (7200,)
    assert (labels[4800:] == UNLABELLED).all()
    assert adjusted_rand_score(year1.blob_of_frame, labels[:4800]) == 1.0
    clustering = load_clustering(summary.directory)
    rows = FeatureSpec(url, "frame", "embeddings", "none").open().read(0, 4800)
    np.testing.assert_array_equal(labels[:4800], assign(rows, clustering.centroids)[0])
    entry = clustering.history[0]
    assert entry["kind"] == "fit"
    assert entry["n_rows"] == 4800
    assert entry["n_labelled"] == 4800
    assert entry["sizes"] == np.bincount(labels[:4800], minlength=K).tolist()
    assert open_store(url).labels_attrs("default") == {
        "level": "frame",
        "fit_id": clustering.model["fit_id"],
        "version": 1,
        "n_labelled": 4800,
    }
    assert summary.directory == str(open_store(url).url).rsplit("/", 1)[0] + "/clusters/default"
    for name in ("occurrence", "token_usage", "token_entropy", "k_selection"):
        assert name in summary.tables


@pytest.mark.parametrize(
    ("strategy", "random_state"), [("continue", 0), ("refit", 3), ("refit", 4)]
)
def test_update_keeps_sonotype_identity(years, strategy, random_state):
    url, year1, year2 = years
    cluster_features(url, config=CONFIG)
    before = _label_of_blob(_labels(url)[:4800], year1.blob_of_frame)
    append(open_store(url, mode="r+"), year2)
    config = _config(update_strategy=strategy, random_state=random_state)
    summary = cluster_features(url, config=config, update=True)
    assert (summary.action, summary.version, summary.n_rows) == ("update", 2, 7200)
    labels = _labels(url)
    # the new year's frames get the sonotype their blob had last year
    assert _label_of_blob(labels[4800:], year2.blob_of_frame) == before
    assert _label_of_blob(labels[:4800], year1.blob_of_frame) == before
    clustering = load_clustering(summary.directory)
    entry = clustering.history[-1]
    assert sorted(entry["mapping"]) == list(range(K))
    drift = np.linalg.norm(clustering.centroids - clustering.centroids_of(1), axis=1)
    np.testing.assert_allclose(entry["drift"], drift, rtol=1e-5)
    assert entry["drift_max"] == pytest.approx(drift.max())
    assert 0 < entry["drift_max"] < 1.0
    assert (entry["reassigned"], entry["reassigned_method"], entry["reassigned_rows"]) == (
        0.0,
        "sample",
        4800,
    )
    assert entry["relabelled"] == 0.0
    assert entry["n_new_rows"] == 2400
    assert entry["new_sonotypes"] == []  # nothing far from last year's sonotypes
    assert entry["n_labelled"] == 2400
    assert entry["sizes"] == np.bincount(labels, minlength=K).tolist()


def test_rewritten_and_moving_shares_of_old_frames_are_reported_apart(tmp_path):
    # Overlapping blobs along one axis; next year the middle one moves right, so frames
    # near its borders change sonotype.
    centres = np.zeros((3, 2), np.float32)
    centres[:, 0] = [0.0, 4.0, 8.0]
    rng = np.random.default_rng(2)
    year1 = make_batch(centres, 90, 40, rng, YEAR1, noise=1.5, prefix="y1")
    moved = centres + np.array([[0, 0], [2.5, 0], [0, 0]], np.float32)
    year2 = make_batch(moved, 90, 40, rng, YEAR2, noise=1.5)
    url = str(tmp_path / "features.zarr")
    # the same two years, once updated without and once with relabelling every frame
    # (each store in its own folder: a store's clusterings live beside it)
    kept_url = str(tmp_path / "kept" / "features.zarr")
    write_store(kept_url, [year1], frames_per_chunk=200)
    write_store(url, [year1], frames_per_chunk=200)
    config = _config(k=3, k_selection=[], relabel_all=True)
    cluster_features(url, config=config)
    cluster_features(kept_url, config=_config(k=3, k_selection=[]))
    old_labels = _labels(url)
    kept_old_labels = _labels(kept_url)
    append(open_store(url, mode="r+"), year2)
    append(open_store(kept_url, mode="r+"), year2)
    summary = cluster_features(url, config=config, update=True)
    new_labels = _labels(url)
    entry = load_clustering(summary.directory).history[-1]
    changed = float(np.mean(old_labels != new_labels[:3600]))
    assert entry["reassigned_method"] == "exact"
    assert entry["reassigned_rows"] == 3600
    assert entry["reassigned"] == pytest.approx(changed)
    assert entry["relabelled"] == pytest.approx(changed)
    assert 0 < changed < 0.5
    assert summary.relabelled == pytest.approx(changed)

    kept = cluster_features(kept_url, config=_config(k=3, k_selection=[]), update=True)
    # no stored label changed, although the moved centroids would place some elsewhere
    np.testing.assert_array_equal(_labels(kept_url)[:3600], kept_old_labels)
    assert kept.relabelled == 0.0
    assert kept.reassigned == pytest.approx(changed, abs=0.05)


def test_rerun_and_empty_update_change_nothing(years):
    url, _, _ = years
    first = cluster_features(url, config=CONFIG)
    files = {
        name: (clusters_io.join(first.directory, name))
        for name in (clusters_io.MODEL_FILE, clusters_io.HISTORY_FILE)
    }
    before = {name: Path(path).read_bytes() for name, path in files.items()}
    labels = _labels(url)
    again = cluster_features(url, config=CONFIG)
    update = cluster_features(url, config=CONFIG, update=True)
    assert (again.action, update.action) == ("unchanged", "unchanged")
    assert again.n_labelled == 0
    assert update.version == 1
    assert {name: Path(path).read_bytes() for name, path in files.items()} == before
    np.testing.assert_array_equal(_labels(url), labels)


def _history_without_times(directory: str) -> list[dict]:
    return [
        {key: value for key, value in entry.items() if key != "created"}
        for entry in load_clustering(directory).history
    ]


@pytest.mark.faults
@pytest.mark.parametrize("kill_at", ["labels", "commit"])
def test_killed_run_resumes_to_the_same_result(years, tmp_path, monkeypatch, kill_at):
    url, _, year2 = years
    twin = str(tmp_path / "twin" / "features.zarr")
    shutil.copytree(url, twin)
    shutil.copytree(
        url.replace(".zarr", ".segments.parquet"), twin.replace(".zarr", ".segments.parquet")
    )
    for target in (url, twin):
        cluster_features(target, config=CONFIG)
        append(open_store(target, mode="r+"), year2)
    config = _config(relabel_all=True)
    reference = cluster_features(url, config=config, update=True)

    calls = {"n": 0}
    if kill_at == "labels":
        original = labelling.label_block

        def dying(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 7:
                raise KeyboardInterrupt
            return original(*args, **kwargs)

        monkeypatch.setattr(labelling, "label_block", dying)
    else:
        original = clusters_io._write_json

        def dying(path, data):
            if path.endswith(clusters_io.MODEL_FILE):
                raise KeyboardInterrupt
            original(path, data)

        monkeypatch.setattr(clusters_io, "_write_json", dying)
    with pytest.raises(KeyboardInterrupt):
        cluster_features(twin, config=config, update=True, workers=1)
    monkeypatch.undo()

    resumed = cluster_features(twin, config=config, update=True)
    assert resumed.version == reference.version == 2
    np.testing.assert_array_equal(_labels(twin), _labels(url))
    assert _history_without_times(resumed.directory) == _history_without_times(reference.directory)
    for name in ("occurrence", "token_entropy"):
        path = clusters_io.stats_path(resumed.directory, f"{name}.parquet")
        expected = clusters_io.stats_path(reference.directory, f"{name}.parquet")
        assert pq.read_table(path).equals(pq.read_table(expected))


def test_conflicts_are_named_errors(years):
    url, _, year2 = years
    with pytest.raises(SonotypeError, match="no clustering 'default' to update"):
        cluster_features(url, config=CONFIG, update=True)
    cluster_features(url, config=CONFIG)
    with pytest.raises(OutputConflictError, match=r"k=5 \(saved 4\)"):
        cluster_features(url, config=_config(k=5))
    append(open_store(url, mode="r+"), year2)
    with pytest.raises(OutputConflictError, match="use --update to add them"):
        cluster_features(url, config=CONFIG)
    refit = cluster_features(url, config=_config(k=5), force=True)
    assert (refit.action, refit.version, refit.k, refit.n_rows) == ("fit", 1, 5, 7200)
    # the old labels (version 1 too, all rows) are replaced, not taken for the new fit's
    assert refit.n_labelled == 7200
    assert set(_labels(url).tolist()) == set(range(5))
    assert len(load_clustering(refit.directory).history) == 1


@pytest.mark.parametrize("feature", ["embeddings", "tokens"])
def test_segment_level_clustering(years, feature):
    url, year1, _ = years
    config = _config(level="segment", feature=feature, normalise="l2", k_selection=[])
    summary = cluster_features(url, name=f"seg-{feature}", config=config)
    labels = _labels(url, f"seg-{feature}")
    assert labels.shape == (120,)
    assert adjusted_rand_score(year1.blob_of_segment, labels) == 1.0
    occurrence = pq.read_table(summary.tables["occurrence"]).to_pandas()
    assert occurrence["n"].sum() == 120
    assert occurrence["seconds"].sum() == pytest.approx(120 * 4.0)


def test_scheduler_address_uses_dask_distributed(years):
    from distributed import LocalCluster

    url, _, _ = years
    cluster_features(url, name="threads", config=CONFIG, workers=2)
    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        summary = cluster_features(
            url, name="distributed", config=CONFIG, scheduler=cluster.scheduler_address
        )
    assert summary.n_labelled == 4800
    np.testing.assert_array_equal(_labels(url, "distributed"), _labels(url, "threads"))


@pytest.fixture
def new_sound(tmp_path):
    """Year 1 (K blobs) in a store; year 2 aside: those blobs and blob K, never heard before."""
    centres = blob_centres(K + 1, DIM)
    rng = np.random.default_rng(5)
    year1 = make_batch(centres[:K], 120, 40, rng, YEAR1, prefix="y1")
    year2 = make_batch(centres, 60, 40, rng, YEAR2, prefix="y2")
    url = str(tmp_path / "out" / "features.zarr")
    write_store(url, [year1], frames_per_chunk=200, segments_per_chunk=16)
    return url, year1, year2


def test_a_new_sound_in_a_new_year_opens_a_new_sonotype_with_a_new_number(new_sound):
    url, year1, year2 = new_sound
    cluster_features(url, config=CONFIG)
    before = _labels(url)
    append(open_store(url, mode="r+"), year2)
    summary = cluster_features(url, config=CONFIG, update=True)
    clustering = load_clustering(summary.directory)
    assert clustering.k == K + 1
    assert clustering.history[-1]["new_sonotypes"] == [K]
    labels = _labels(url)
    np.testing.assert_array_equal(labels[: len(before)], before)  # old labels kept
    new = labels[len(before) :]
    # every frame of the new sound, and only those, gets the new number
    np.testing.assert_array_equal(new == K, year2.blob_of_frame == K)
    old_blobs = year2.blob_of_frame < K
    assert _label_of_blob(new[old_blobs], year2.blob_of_frame[old_blobs]) == _label_of_blob(
        before, year1.blob_of_frame
    )
    assert clustering.history[-1]["sizes"] == np.bincount(labels, minlength=K + 1).tolist()


def test_no_new_sonotype_when_the_update_may_not_open_one(new_sound):
    url, _, year2 = new_sound
    config = _config(new_sonotypes=0)
    cluster_features(url, config=config)
    append(open_store(url, mode="r+"), year2)
    summary = cluster_features(url, config=config, update=True)
    assert load_clustering(summary.directory).k == K


@pytest.mark.faults
def test_frames_appended_during_an_update_are_left_for_the_next_one(years, monkeypatch):
    # Issue 16, item 8: encode appending while `cluster --update` reads the store.
    url, _, year2 = years
    late = make_batch(blob_centres(K, DIM), 20, 40, np.random.default_rng(12), YEAR2, prefix="y3")
    cluster_features(url, config=CONFIG)
    append(open_store(url, mode="r+"), year2)
    original = labelling.label_block
    appended = []

    def encode_meanwhile(*args, **kwargs):
        if not appended:  # another process's encode commits a shard mid-update
            append(open_store(url, mode="r+"), late)
            appended.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(labelling, "label_block", encode_meanwhile)
    first = cluster_features(url, config=_config(relabel_all=True), update=True, workers=1)
    monkeypatch.undo()
    assert appended
    store = open_store(url)
    assert (first.n_rows, store.n_frames) == (7200, 8000)
    labels = _labels(url)
    assert labels.shape == (8000,)
    assert (labels[:7200] != UNLABELLED).all()
    assert (labels[7200:] == UNLABELLED).all()
    assert verify_store(store).problems == []

    second = cluster_features(url, config=_config(relabel_all=True), update=True)
    assert second.n_rows == 8000
    assert (_labels(url) != UNLABELLED).all()

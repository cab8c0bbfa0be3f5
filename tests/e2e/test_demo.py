"""`sonotype demo` end to end on a small example, then every contract between its stages.

One run of the whole chain (example → ingest 2024 → verify → stats → train → encode →
cluster → ingest 2025 → encode → cluster --update → report), shared by the tests below;
each test checks what one stage handed to the next, read back as the next stage (or a
user) reads it: catalogs against their schemas, shards against the catalog, the feature
store against the catalog and the tokenizer, labels and clusterings against the store,
the report's files against its page.
"""

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from analysis import clusters_dir, load_clustering, open_store
from analysis.store import UNLABELLED
from shards.catalog import read_recordings, read_segments
from shards.verify import verify_shards
from sonotype.cli.main import main
from sonotype.contracts import (
    FEATURE_SEGMENTS_SCHEMA,
    RECORDING_STATUS_OK,
    RECORDINGS_SCHEMA,
    SEGMENTS_SCHEMA,
    OutputLayout,
    RunLayout,
    check_table,
    features_table_path,
    is_valid_key,
)
from sonotype.example import ANNOTATIONS_FILE
from training import load_tokenizer
from training.encode_store import checkpoint_sha256

K = 4
TRAIN_STEPS = 12


def _demo_argv(root: Path) -> list[str]:
    settings = {
        "example": "small",
        "train_steps": TRAIN_STEPS,
        # crops of a whole second, few of them: the chain's contracts, not the model, are
        # under test here
        "train_overrides": "[data.batch_size=2, codebook.init_batches=4, validation.max_batches=2]",
        "k": K,
        "workers": 2,
    }
    argv = ["demo", "--out", str(root), "-q"]
    for key, value in settings.items():
        argv += ["--set", f"{key}={value}"]
    return argv


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    assert main(_demo_argv(root)) == 0
    return root


def test_every_stage_saved_its_config_and_a_rerun_changes_nothing(demo, capsys):
    out = OutputLayout(str(demo / "out"))
    assert Path(out.report_index).is_file()
    assert Path(RunLayout(str(demo / "run")).config).is_file()
    for saved in ("catalog/ingest.yaml", "features.encode.yaml", "clusters/default/config.yaml"):
        assert yaml.safe_load((demo / "out" / saved).read_text()), saved
    # a second run finds everything done and resumes each stage to the same result
    before = open_store(out.features).n_frames
    history = load_clustering(clusters_dir(out.features, "default")).history
    capsys.readouterr()
    assert main(_demo_argv(demo)) == 0
    assert f"report: {out.report_index}" in capsys.readouterr().out
    assert open_store(out.features).n_frames == before
    assert load_clustering(clusters_dir(out.features, "default")).history == history


def test_ingest_catalogs_follow_the_contract_and_cover_both_years(demo):
    out = str(demo / "out")
    recordings = read_recordings(out)
    segments = read_segments(out)
    check_table(recordings, RECORDINGS_SCHEMA, "recordings")
    check_table(segments, SEGMENTS_SCHEMA, "segments")
    ok = recordings.filter(pc.equal(recordings["status"], RECORDING_STATUS_OK))
    truth = pq.read_table(demo / "example" / "ground_truth.parquet")
    # every file of the example was read, and nothing else (side files are "ignored")
    read = sorted(
        Path(path).relative_to(demo / "example").as_posix() for path in ok["path"].to_pylist()
    )
    assert read == sorted(set(truth["path"].to_pylist()))
    years = {time.year for time in ok["start_time"].to_pylist()}
    assert years == {2024, 2025}
    assert all(is_valid_key(key) for key in segments["key"].to_pylist())  # dot-free too
    assert verify_shards(out).problems == []


def test_feature_store_holds_every_kept_segment_once_encoded_by_the_exported_tokenizer(demo):
    out = OutputLayout(str(demo / "out"))
    export = RunLayout(str(demo / "run")).export
    tokenizer = load_tokenizer(export)
    store = open_store(out.features)
    table = pq.read_table(features_table_path(out.features))
    check_table(table, FEATURE_SEGMENTS_SCHEMA, "features.segments.parquet")
    kept = read_segments(out.root)
    kept = kept.filter(pc.fill_null(kept["kept"], False))
    assert sorted(table["key"].to_pylist()) == sorted(kept["key"].to_pylist())
    assert store.n_segments == table.num_rows == len(set(table["key"].to_pylist()))
    # frames are contiguous per segment and add up to the arrays' committed lengths
    starts = table["frame_start"].to_numpy()
    counts = table["n_frames"].to_numpy()
    order = np.argsort(table["segment_index"].to_numpy())
    np.testing.assert_array_equal(np.cumsum(counts[order])[:-1], starts[order][1:])
    assert store.n_frames == counts.sum()
    durations = table["duration_s"].to_numpy()
    np.testing.assert_array_equal(counts, np.ceil(durations * tokenizer.frame_rate))
    assert store.frame_rate == tokenizer.frame_rate
    assert store.codebook_size == tokenizer.codebook_size
    assert store.dim == tokenizer.embedding_dim
    assert store.checkpoint_sha256 == checkpoint_sha256(export)
    tokens = store.read("tokens", 0, store.n_frames)
    assert tokens.dtype == np.int16
    assert tokens.min() >= 0
    assert tokens.max() < tokenizer.codebook_size
    embeddings = store.read("embeddings", 0, store.n_frames)
    assert embeddings.dtype == np.float16
    assert embeddings.shape == (store.n_frames, store.dim)
    assert np.isfinite(embeddings).all()
    assert store.read("pooled", 0, store.n_segments).shape == (store.n_segments, store.dim)
    assert sorted(store.shards) == sorted(set(kept["shard"].to_pylist()))


def test_clustering_was_updated_with_the_new_year_and_labels_every_frame(demo):
    features = OutputLayout(str(demo / "out")).features
    store = open_store(features)
    clustering = load_clustering(clusters_dir(features, "default"))
    assert (clustering.version, clustering.k, clustering.n_rows) == (2, K, store.n_frames)
    fit, update = clustering.history
    assert (fit["kind"], update["kind"]) == ("fit", "update")
    assert sorted(update["mapping"]) == list(range(K))
    assert fit["n_rows"] + update["n_new_rows"] == store.n_frames
    labels = store.array("labels/default")[:]
    assert len(labels) == store.n_frames
    assert UNLABELLED not in labels
    assert labels.max() < K
    assert update["sizes"] == np.bincount(labels, minlength=K).tolist()
    occurrence = pq.read_table(clustering.stats_path("occurrence.parquet"))
    sites = set(read_segments(str(demo / "out"))["site"].to_pylist())
    assert set(occurrence["site"].to_pylist()) <= sites


def test_the_default_sonotypes_are_windows_and_none_is_made_of_segment_edges(demo):
    features = OutputLayout(str(demo / "out")).features
    store = open_store(features)
    clustering = load_clustering(clusters_dir(features, "default"))
    assert (clustering.level, clustering.model["normalise"]) == ("window", "balanced")
    labels = store.array("labels/default")[:]
    window = round(store.frame_rate * clustering.model["window_s"])
    segments = store.read_segments(columns=["frame_start", "n_frames"]).to_pylist()
    at_edge = np.zeros(store.n_frames, bool)
    for segment in segments:
        first, n = segment["frame_start"], segment["n_frames"]
        at_edge[first : first + window] = True
        # every window of a segment carries one sonotype
        for start in range(first, first + n - n % window - window, window):
            assert len(set(labels[start : start + window])) == 1
    # a sonotype of edge artefacts would sit (almost) only in segments' first windows
    for sonotype in range(K):
        chosen = labels == sonotype
        if chosen.any():
            assert at_edge[chosen].mean() < 0.5, sonotype


def test_evaluate_scores_the_demo_against_the_example_ground_truth(demo, capsys):
    annotations = str(demo / "example" / ANNOTATIONS_FILE)
    assert main(["evaluate", str(demo / "out"), "--annotations", annotations, "-q"]) == 0
    table = pd.read_csv(demo / "out" / "clusters" / "default" / "evaluation" / "scores.csv")
    assert set(table["unit"]) == {"window", "segment"}
    assert len(table) == 6
    assert table["n_windows"].min() > 0
    # the yardstick finds structure in the example whatever the tokenizer learnt
    assert table.loc[table["method"] == "spectral shape", "nmi"].min() > 0.1


class _Sources(HTMLParser):
    """The files a page loads: img/audio/source `src` attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.audio: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        src = dict(attrs).get("src")
        if src and tag == "img":
            self.images.append(src)
        elif src and tag in ("audio", "source"):
            self.audio.append(src)


def test_report_lists_every_sonotype_and_every_file_it_names_exists(demo):
    index = Path(OutputLayout(str(demo / "out")).report_index)
    page = index.read_text()
    sources = _Sources()
    sources.feed(page)
    assert sources.images
    assert sources.audio
    for src in sources.images + sources.audio:
        if not src.startswith("data:"):
            assert not re.match(r"^[a-z]+://", src), f"{src}: the page must work offline"
            assert (index.parent / src).is_file(), src
    lines = Path(RunLayout(str(demo / "run")).metrics).read_text().splitlines()
    metrics = [json.loads(line) for line in lines]
    assert max(entry.get("step", 0) for entry in metrics) == TRAIN_STEPS
    for sonotype in range(K):
        assert re.search(rf"sonotype {sonotype}\b", page, re.IGNORECASE), sonotype

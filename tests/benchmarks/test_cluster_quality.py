"""Alignment of frames and segments to per-second ground truth, the scores, the log-mel baseline."""

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile

from analysis.store import create_store
from benchmarks.cluster_quality import align, ground_truth_seconds, logmel_per_second, scores
from sonotype.contracts import UTC_TIMESTAMP
from sonotype.errors import SonotypeError
from tests.analysis.synthetic import identity

START = dt.datetime(2024, 3, 15, 5, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path):
    """Two 3-s segments at 10 frames/s: site A from 05:00:00, site B from 05:00:00.5."""
    store = create_store(str(tmp_path / "features.zarr"), identity(2), frames_per_chunk=8)
    segments = {
        "key": ["a", "b"],
        "recording_id": ["ra", "rb"],
        "site": ["A", "B"],
        "start_time": pa.array([START, START + dt.timedelta(seconds=0.5)], UTC_TIMESTAMP),
        "offset_s": [0.0, 0.0],
        "duration_s": [3.0, 3.0],
        "shard": ["s.tar", "s.tar"],
        "n_frames": pa.array([30, 30], pa.int32()),
    }
    store.append(np.zeros(60, np.int16), np.ones((60, 2)), segments)
    return store


def _truth_file(tmp_path, rows):
    table = pa.table(
        {
            "path": [row[0] for row in rows],
            "site": [row[1] for row in rows],
            "file_start": pa.array([START] * len(rows), UTC_TIMESTAMP),
            "offset_s": pa.array([row[2] for row in rows], pa.int32()),
            "time": pa.array([START + dt.timedelta(seconds=row[2]) for row in rows], UTC_TIMESTAMP),
            "local_hour": pa.array([2.0] * len(rows), pa.float32()),
            "dominant": [row[3] for row in rows],
        }
    )
    path = tmp_path / "ground_truth.parquet"
    pq.write_table(table, path)
    return str(path)


def test_frames_and_segments_align_to_their_second(tmp_path, store):
    rows = [("a.wav", "A", s, d) for s, d in enumerate(["birds", "birds", "rain", "frogs"])]
    rows += [("b.wav", "B", s, d) for s, d in enumerate(["insects", "rain", "rain", "rain"])]
    truth = ground_truth_seconds(_truth_file(tmp_path, rows))
    assert truth["second"].iloc[1] - truth["second"].iloc[0] == 1

    frames = align(store, truth, "frame")
    expected_a = ["birds"] * 20 + ["rain"] * 10
    # B starts half a second in: frames 0-4 in second 0, then 10 per second, 5 in second 3
    expected_b = ["insects"] * 5 + ["rain"] * 25
    assert frames["index"].tolist() == list(range(60))
    assert frames["dominant"].tolist() == expected_a + expected_b

    segments = align(store, truth, "segment")
    assert segments.to_dict("list") == {"index": [0, 1], "dominant": ["birds", "rain"]}


def test_unaligned_frames_are_dropped_and_none_is_an_error(tmp_path, store):
    truth = ground_truth_seconds(_truth_file(tmp_path, [("a.wav", "A", 1, "birds")]))
    assert align(store, truth, "frame")["index"].tolist() == list(range(10, 20))
    other_site = ground_truth_seconds(_truth_file(tmp_path, [("c.wav", "C", 1, "birds")]))
    with pytest.raises(SonotypeError, match=r"truth sites \['C'\]"):
        align(store, other_site, "frame")


def test_scores_ignore_label_names():
    truth = np.array(["birds"] * 4 + ["rain"] * 4)
    assert scores(truth, np.array([7] * 4 + [2] * 4)) == {"n": 8, "nmi": 1.0, "ari": 1.0}
    mixed = scores(truth, np.array([0, 1] * 4))
    assert mixed["nmi"] == pytest.approx(0.0)
    assert mixed["ari"] < 0


def test_logmel_baseline_per_second(tmp_path):
    rate = 16000
    t = np.arange(rate) / rate
    signal = np.concatenate(
        [np.sin(2 * np.pi * 300 * t), np.zeros(rate), np.sin(2 * np.pi * 5000 * t)]
    )
    soundfile.write(tmp_path / "x.wav", np.stack([signal, signal], axis=1) * 0.5, rate)
    truth = pd.DataFrame(
        {"path": ["x.wav"] * 3, "offset_s": [2, 0, 1], "dominant": ["hi", "lo", "quiet"]}
    )
    features = logmel_per_second(str(tmp_path), truth)
    assert features.shape == (3, 64)
    high, low, quiet = features
    assert np.argmax(low) < np.argmax(high)
    assert quiet.max() < low.max() - 10

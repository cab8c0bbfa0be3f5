"""Statistics tables against counts worked out by hand."""

import datetime as dt
import itertools

import numpy as np
import pyarrow as pa
import pytest

from analysis.stats import compute_statistics, k_selection_table
from analysis.store import create_store
from tests.analysis.synthetic import blob_centres, identity

UTC = dt.UTC


@pytest.fixture
def store(tmp_path):
    """Three segments at 10 frames/s, written in two appends.

    - A: SITE-A from 2024-03-15 05:59:58 UTC, 40 frames (4 s): frames 0–19 before 06:00,
      20–39 after. Tokens 3 (×10), 4 (×10), 5 (×20). Labels 1 (×30), 2 (×10).
    - B: SITE-B from 2024-03-16 23:00 UTC, 12 frames, tokens 0,1,2,3 three times each,
      label 0.
    - C: SITE-B from 2024-03-17 01:00 UTC, 8 frames, token 9, left unlabelled.
    """
    store = create_store(str(tmp_path / "features.zarr"), identity(2), frames_per_chunk=16)

    def rows(site, start, n_frames, index):
        return {
            "key": [f"k{index}"],
            "recording_id": [f"r{index}"],
            "site": [site],
            "start_time": pa.array([start], pa.timestamp("ms", tz="UTC")),
            "offset_s": [0.0],
            "duration_s": [n_frames / 10],
            "shard": ["s.tar"],
            "n_frames": pa.array([n_frames], pa.int32()),
        }

    a = rows("SITE-A", dt.datetime(2024, 3, 15, 5, 59, 58, tzinfo=UTC), 40, 0)
    tokens_a = np.repeat([3, 4, 5], [10, 10, 20])
    store.append(tokens_a, np.ones((40, 2)), a)
    b = rows("SITE-B", dt.datetime(2024, 3, 16, 23, 0, tzinfo=UTC), 12, 1)
    c = rows("SITE-B", dt.datetime(2024, 3, 17, 1, 0, tzinfo=UTC), 8, 2)
    both = {key: pa.concat_arrays([pa.array(b[key]), pa.array(c[key])]) for key in b}
    tokens_bc = np.concatenate([np.tile([0, 1, 2, 3], 3), np.full(8, 9)])
    store.append(tokens_bc, np.ones((20, 2)), both)
    store.create_labels("x", "frame", 3)
    store.write_labels("x", 0, np.repeat([1, 2, 0], [30, 10, 12]))
    return store


def _rows(table: pa.Table) -> list[tuple]:
    return [tuple(row.values()) for row in table.to_pylist()]


def test_occurrence_per_site_date_hour_in_utc(store):
    tables = compute_statistics(store, "x", n_rows=52, timezone="UTC", block_rows=20)
    day = dt.date
    assert _rows(tables["occurrence"]) == [
        ("SITE-A", day(2024, 3, 15), 5, 1, 20, 2.0, 1.0),
        ("SITE-A", day(2024, 3, 15), 6, 1, 10, 1.0, 0.5),
        ("SITE-A", day(2024, 3, 15), 6, 2, 10, 1.0, 0.5),
        ("SITE-B", day(2024, 3, 16), 23, 0, 12, 1.2, 1.0),
    ]


def test_occurrence_in_local_time(store):
    # America/Cayenne is UTC-3 all year: 05:59:58 → 02:59:58, 23:00 → 20:00 the same day.
    tables = compute_statistics(store, "x", 52, "America/Cayenne", block_rows=1000)
    hours = [(row[0], row[1].isoformat(), row[2], row[4]) for row in _rows(tables["occurrence"])]
    assert hours == [
        ("SITE-A", "2024-03-15", 2, 20),
        ("SITE-A", "2024-03-15", 3, 10),
        ("SITE-A", "2024-03-15", 3, 10),
        ("SITE-B", "2024-03-16", 20, 12),
    ]


def test_rows_past_the_labelled_count_are_left_out(store):
    tables = compute_statistics(store, "x", n_rows=25, timezone="UTC", block_rows=20)
    assert tables["occurrence"].column("n").to_pylist() == [20, 5]


def test_token_usage_and_entropy(store):
    tables = compute_statistics(store, "x", 52, "UTC", block_rows=20)
    usage = _rows(tables["token_usage"])
    assert usage == [
        ("SITE-A", 5, 3, 10),
        ("SITE-A", 5, 4, 10),
        ("SITE-A", 6, 5, 20),
        ("SITE-B", 1, 9, 8),
        ("SITE-B", 23, 0, 3),
        ("SITE-B", 23, 1, 3),
        ("SITE-B", 23, 2, 3),
        ("SITE-B", 23, 3, 3),
    ]
    entropy = tables["token_entropy"].to_pylist()
    # two tokens, equally often: 1 bit; one token: 0 bits; four equally: 2 bits
    assert [(e["site"], e["hour"], e["n_frames"], e["n_tokens_used"]) for e in entropy] == [
        ("SITE-A", 5, 20, 2),
        ("SITE-A", 6, 20, 1),
        ("SITE-B", 1, 8, 1),
        ("SITE-B", 23, 12, 4),
    ]
    assert [e["entropy_bits"] for e in entropy] == pytest.approx([1.0, 0.0, 0.0, 2.0])
    assert [e["perplexity"] for e in entropy] == pytest.approx([2.0, 1.0, 1.0, 4.0])


def test_segment_level_occurrence(store):
    store.create_labels("seg", "segment", 2)
    store.write_labels("seg", 0, np.array([1, 0, 1]))
    tables = compute_statistics(store, "seg", n_rows=3, timezone="UTC", block_rows=20)
    assert [(r[0], r[2], r[3], r[4], r[5]) for r in _rows(tables["occurrence"])] == [
        ("SITE-A", 5, 1, 1, 4.0),
        ("SITE-B", 23, 0, 1, 1.2),
        ("SITE-B", 1, 1, 1, 0.8),
    ]


def test_k_selection_table():
    rng = np.random.default_rng(0)
    centres = blob_centres(4, 6)
    sample = (centres[rng.integers(0, 4, 600)] + rng.normal(0, 0.3, (600, 6))).astype(np.float32)
    table = k_selection_table(sample, [2, 3, 4, 6, 8], silhouette_sample=300, random_state=0)
    assert table.column_names == ["k", "inertia", "inertia_per_row", "silhouette", "n_rows"]
    assert table.column("k").to_pylist() == [2, 3, 4, 6, 8]
    inertia = table.column("inertia").to_pylist()
    assert all(later < earlier for earlier, later in itertools.pairwise(inertia))
    np.testing.assert_allclose(table.column("inertia_per_row").to_numpy(), np.array(inertia) / 600)
    silhouette = table.column("silhouette").to_pylist()
    assert int(np.argmax(silhouette)) == 2  # the true k = 4
    assert table.column("n_rows").to_pylist() == [600] * 5

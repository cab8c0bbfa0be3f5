"""Feature store: round trips, commit protocol, bad input, other readers (zarr, dask, xarray)."""

import datetime as dt

import dask.array as da
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr

from analysis.store import UNLABELLED, create_store, open_store
from sonotype.contracts import (
    ATTR_N_FRAMES,
    EMBEDDINGS,
    FEATURE_SEGMENTS_SCHEMA,
    POOLED,
    TOKENS,
    features_table_path,
)
from sonotype.errors import OutputConflictError, SonotypeError
from tests.analysis.synthetic import append, blob_centres, identity, make_batch, write_store

START = dt.datetime(2024, 3, 15, 5, 0, tzinfo=dt.UTC)


@pytest.fixture
def batches():
    rng = np.random.default_rng(1)
    centres = blob_centres(3, 6)
    return [make_batch(centres, n, 7, rng, START, prefix=f"b{i}") for i, n in enumerate((5, 9, 4))]


def test_append_round_trip(tmp_path, batches):
    url = str(tmp_path / "features.zarr")
    store = write_store(url, batches, frames_per_chunk=16, segments_per_chunk=4)
    store = open_store(url)
    assert (store.n_frames, store.n_segments, store.dim) == (18 * 7, 18, 6)
    assert (
        store.read(TOKENS, 0, store.n_frames).tolist()
        == np.concatenate([b.tokens for b in batches]).tolist()
    )
    embeddings = store.read(EMBEDDINGS, 0, store.n_frames)
    assert embeddings.dtype == np.float16
    expected = np.concatenate([b.embeddings for b in batches]).astype(np.float16)
    np.testing.assert_array_equal(embeddings, expected)
    # pooled defaults to the float32 mean of each segment's frames
    pooled = store.read(POOLED, 0, 18)
    np.testing.assert_allclose(pooled[5], expected[35:42].astype(np.float32).mean(axis=0))
    table = store.read_segments()
    assert table.schema == FEATURE_SEGMENTS_SCHEMA
    assert table.column("segment_index").to_pylist() == list(range(18))
    assert table.column("frame_start").to_pylist() == [7 * i for i in range(18)]
    assert table.column("key").to_pylist()[5:7] == ["b1_000000", "b1_000001"]
    assert store.shards == ["b0-0000.tar", "b1-0000.tar", "b2-0000.tar"]
    # a range across parts reads only what is asked for
    assert store.read_segments(3, 7, ["key"]).column("key").to_pylist() == [
        "b0_000003",
        "b0_000004",
        "b1_000000",
        "b1_000001",
    ]
    chunks = [zarr.open_array(url + "/" + name).chunks for name in (TOKENS, EMBEDDINGS, POOLED)]
    assert chunks == [(16,), (16, 6), (4, 6)]


def test_block_ranges_follow_the_chunk_grid(tmp_path, batches):
    store = write_store(str(tmp_path / "f.zarr"), batches, frames_per_chunk=16)
    assert store.block_ranges("frame", 20) == [(0, 32), (32, 64), (64, 96), (96, 126)]
    assert store.block_ranges("frame", 1, 40, 70) == [(40, 48), (48, 64), (64, 70)]
    assert store.block_ranges("segment", 100) == [(0, 18)]


def test_uncommitted_append_is_ignored_and_overwritten(tmp_path, batches, monkeypatch):
    url = str(tmp_path / "features.zarr")
    store = write_store(url, batches[:1], frames_per_chunk=16, segments_per_chunk=4)
    store.create_labels("x", "frame", 4)

    # Kill the next append at its commit: data regions and the table part are written.
    def killed(self, attrs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(store.group), "update_attributes", killed)
    with pytest.raises(KeyboardInterrupt):
        append(store, batches[1])
    monkeypatch.undo()

    store = open_store(url, mode="r+")
    assert (store.n_frames, store.n_segments) == (35, 5)
    assert store.array(TOKENS).shape[0] == 35 + 63  # the unfinished tail is there...
    assert store.read_segments().num_rows == 5  # ...but not read
    with pytest.raises(SonotypeError, match=r"committed rows are \[0, 35\)"):
        store.read(TOKENS, 0, 36)
    assert store.dask_array(EMBEDDINGS).shape == (35, 6)

    # A resumed encode appends another batch over the unfinished one.
    append(store, batches[2])
    store = open_store(url)
    assert (store.n_frames, store.n_segments) == (35 + 28, 9)
    assert store.read(TOKENS, 35, 63).tolist() == batches[2].tokens.tolist()
    assert store.read_segments(5, 9, ["key"]).column("key").to_pylist()[0] == "b2_000000"
    assert store.shards == ["b0-0000.tar", "b2-0000.tar"]
    # label arrays follow the frame arrays, new rows unlabelled
    labels = store.array("labels/x")
    assert labels.shape == (63,)
    assert set(labels[:].tolist()) == {UNLABELLED}


def test_a_store_killed_while_being_created_is_created_again(tmp_path, batches, monkeypatch):
    url = str(tmp_path / "features.zarr")

    def killed(self, attrs):
        raise KeyboardInterrupt

    monkeypatch.setattr(zarr.Group, "update_attributes", killed)
    with pytest.raises(KeyboardInterrupt):
        create_store(url, identity(6))
    monkeypatch.undo()
    with pytest.raises(SonotypeError, match="missing; not a feature store"):
        open_store(url)
    store = create_store(url, identity(6))
    append(store, batches[0])
    assert (open_store(url).n_segments, open_store(url).shards) == (5, ["b0-0000.tar"])


def test_an_append_without_segments_only_records_its_shards(tmp_path, batches):
    url = str(tmp_path / "features.zarr")
    store = write_store(url, batches[:1], frames_per_chunk=16, segments_per_chunk=4)
    empty = {name: [] for name in FEATURE_SEGMENTS_SCHEMA.names}
    store.append(np.zeros(0, np.int16), np.zeros((0, 6), np.float32), empty, shards=["bad.tar"])
    append(store, batches[1])
    store = open_store(url)
    assert (store.n_frames, store.n_segments) == (35 + 63, 14)
    assert store.shards == ["b0-0000.tar", "bad.tar", "b1-0000.tar"]
    assert store.read_segments().column("frame_start").to_pylist()[5] == 35


def test_create_reopens_the_same_model_and_refuses_another(tmp_path, batches):
    url = str(tmp_path / "features.zarr")
    write_store(url, batches[:1])
    again = create_store(url, identity(6))
    assert again.n_segments == 5
    other = identity(6).__class__(**{**identity(6).__dict__, "checkpoint_sha256": "f" * 64})
    with pytest.raises(OutputConflictError, match="checkpoint_sha256"):
        create_store(url, other)
    with pytest.raises(OutputConflictError, match="dim"):
        create_store(url, identity(5))
    fresh = create_store(url, other, overwrite=True)
    assert (fresh.n_frames, fresh.n_segments) == (0, 0)
    assert fresh.read_segments().num_rows == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.tokens.__setitem__(0, 64), r"tokens must lie in \[0, 64\)"),
        (lambda b: setattr(b, "tokens", b.tokens[:-1]), "n_frames add up to 35"),
        (lambda b: setattr(b, "embeddings", b.embeddings[:, :5]), r"embeddings \[35, 6\]"),
        (lambda b: b.embeddings.__setitem__((0, 0), np.nan), "NaN/inf"),
        (lambda b: setattr(b, "segments", b.segments.drop(["site"])), r"miss columns \['site'\]"),
        (
            lambda b: setattr(
                b, "segments", b.segments.set_column(3, "start_time", pa.array(["x"] * 5))
            ),
            "do not fit the contract",
        ),
    ],
)
def test_bad_batches_are_named_errors(tmp_path, batches, change, message):
    store = create_store(str(tmp_path / "f.zarr"), identity(6))
    batch = batches[0]
    change(batch)
    with pytest.raises(SonotypeError, match=message):
        append(store, batch)
    assert open_store(str(tmp_path / "f.zarr")).n_frames == 0


def test_open_missing_store_is_a_named_error(tmp_path):
    with pytest.raises(SonotypeError, match="no feature store"):
        open_store(str(tmp_path / "nothing.zarr"))


def test_readable_with_zarr_dask_and_xarray(tmp_path, batches):
    url = str(tmp_path / "features.zarr")
    store = write_store(url, batches, frames_per_chunk=16, segments_per_chunk=4)
    labels = store.create_labels("demo", "frame", 3)
    store.write_labels("demo", 0, np.arange(store.n_frames) % 3)
    store.create_labels("seg", "segment", 3)

    group = zarr.open_group(url, mode="r")
    assert group.attrs[ATTR_N_FRAMES] == 126
    assert group[TOKENS].dtype == np.int16
    assert group[EMBEDDINGS].dtype == np.float16

    embeddings = da.from_zarr(url, component=EMBEDDINGS)
    assert embeddings.chunks[0][0] == 16
    np.testing.assert_array_equal(embeddings[:126].compute(), store.read(EMBEDDINGS, 0, 126))

    dataset = xr.open_zarr(url, consolidated=False)
    assert dict(dataset.sizes) == {"frame": 126, "dim": 6, "segment": 18}
    assert dataset[EMBEDDINGS].dims == ("frame", "dim")
    assert dataset[POOLED].dims == ("segment", "dim")
    assert int(dataset[TOKENS][10]) == int(store.read(TOKENS, 10, 11)[0])
    label_set = xr.open_zarr(url, group="labels", consolidated=False)
    assert label_set["demo"].dims == ("frame",)
    assert label_set["seg"].dims == ("segment",)
    assert label_set["demo"].values.tolist() == labels[:].tolist()

    table = pq.read_table(features_table_path(url))
    assert table.num_rows == 18

"""Feature-store integrity: missing chunks refused, altered or unreadable rows found by shard."""

import dataclasses
import datetime as dt
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from analysis.store import open_store
from analysis.store_integrity import missing_chunks, require_intact, verify_store
from sonotype.contracts import (
    ATTR_EVERY_CHUNK_WRITTEN,
    EMBEDDINGS,
    LOUDNESS,
    TOKENS,
    features_table_path,
)
from sonotype.errors import DamagedStoreError
from tests.analysis.synthetic import blob_centres, make_batch, write_store

pytestmark = pytest.mark.faults

START = dt.datetime(2024, 3, 15, 5, 0, tzinfo=dt.UTC)
FRAMES_PER_CHUNK = 16


@pytest.fixture
def store_url(tmp_path):
    """Three appends (shards b0, b1, b2) of 7-frame segments over 16-frame chunks."""
    rng = np.random.default_rng(3)
    centres = blob_centres(3, 6)
    batches = [
        make_batch(centres, n, 7, rng, START, prefix=f"b{i}") for i, n in enumerate((5, 9, 4))
    ]
    url = str(tmp_path / "features.zarr")
    write_store(url, batches, frames_per_chunk=FRAMES_PER_CHUNK, segments_per_chunk=4)
    return url


def test_a_written_store_is_intact_and_every_segment_checked(store_url):
    store = open_store(store_url)
    require_intact(store)
    damage = verify_store(store)
    assert damage.problems == []
    assert (damage.n_checked, damage.n_unchecked, damage.n_segments) == (18, 0, 18)


def test_a_deleted_chunk_is_refused_and_traced_to_its_shards(store_url):
    os.remove(os.path.join(store_url, EMBEDDINGS, "c", "1", "0"))
    store = open_store(store_url)
    # what Zarr alone would have handed to k-means
    assert not store.read(EMBEDDINGS, 16, 32).any()
    [chunk] = missing_chunks(store)
    assert (chunk.array, chunk.key, chunk.rows) == (EMBEDDINGS, "c/1/0", (16, 32))
    with pytest.raises(DamagedStoreError, match=r"embeddings/c/1/0 \(frames 16-31\)"):
        require_intact(store)
    damage = verify_store(store)
    # frames 16-31 belong to segments 2-4 of shard b0 (7 frames each)
    assert damage.shards == {"b0-0000.tar"}
    assert any("missing chunk embeddings/c/1/0" in problem for problem in damage.problems)


def test_altered_rows_are_found_by_segment(store_url):
    store = open_store(store_url, mode="r+")
    # segment 6 (b1_000001) owns frames 42-48; change one value behind the store's back
    array = store.array(EMBEDDINGS)
    array[44, 2] = np.float16(array[44, 2] + 1)
    damage = verify_store(open_store(store_url))
    assert damage.problems == ["b1-0000.tar: b1_000001: stored rows differ from their checksum"]
    assert damage.shards == {"b1-0000.tar"}


def test_a_chunk_that_no_longer_decodes_is_reported(store_url):
    with open(os.path.join(store_url, TOKENS, "c", "4"), "wb") as handle:
        handle.write(b"not a blosc frame")
    damage = verify_store(open_store(store_url))
    # tokens chunk 4 holds frames 64-79: segments 9-11, all of shard b1
    assert damage.problems == ["unreadable chunk tokens/c/4 (frames 64-79)"]
    assert damage.shards == {"b1-0000.tar"}


def test_a_chunk_equal_to_the_fill_value_is_still_written(tmp_path):
    rng = np.random.default_rng(0)
    batch = make_batch(blob_centres(2, 4), 4, 8, rng, START)
    silent = dataclasses.replace(batch, tokens=np.zeros_like(batch.tokens))
    store = write_store(str(tmp_path / "f.zarr"), [silent], frames_per_chunk=FRAMES_PER_CHUNK)
    assert missing_chunks(store) == []


def test_segments_written_before_checksums_are_counted_not_failed(store_url):
    table_dir = features_table_path(store_url)
    for name in os.listdir(table_dir):
        path = os.path.join(table_dir, name)
        pq.write_table(pq.read_table(path).drop_columns(["checksum"]), path)
    store = open_store(store_url)
    assert store.read_segments(0, 3, ["key", "checksum"]).column("checksum").null_count == 3
    damage = verify_store(store)
    assert damage.problems == []
    assert (damage.n_checked, damage.n_unchecked) == (0, 18)


def test_a_store_from_before_every_chunk_was_written_is_checked_where_it_can_be(store_url):
    store = open_store(store_url, mode="r+")
    del store.group.attrs[ATTR_EVERY_CHUNK_WRITTEN]
    # a NaN-only loudness chunk was not written then: absent, and no damage
    os.remove(os.path.join(store_url, LOUDNESS, "c", "0"))
    assert missing_chunks(open_store(store_url)) == []
    os.remove(os.path.join(store_url, EMBEDDINGS, "c", "0", "0"))
    assert [chunk.key for chunk in missing_chunks(open_store(store_url))] == ["c/0/0"]

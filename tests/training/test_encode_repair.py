"""`sonotype encode` repairs a store in place: lost chunks, altered rows, a killed repair."""

import os
from pathlib import Path

import numpy as np
import pytest

import training.encode
from analysis.store import open_store
from analysis.store_integrity import require_intact, verify_store
from sonotype.contracts import EMBEDDINGS, OutputLayout
from sonotype.errors import DamagedStoreError
from tests.training.encode_helpers import (
    record_encoded_shards,
    save_tiny_tokenizer,
    snapshot,
    write_out,
)
from training import encode_features

pytestmark = pytest.mark.faults

SIZES = (3, 2, 4)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.pt")


@pytest.fixture
def encoded(checkpoint, tmp_path):
    """(damaged-to-be output, an untouched copy's store) encoded from the same shards."""
    whole = write_out(tmp_path / "whole", SIZES)
    encode_features(checkpoint, whole.out, workers=0)
    fake = write_out(tmp_path / "out", SIZES)
    encode_features(checkpoint, fake.out, workers=0)
    return fake, OutputLayout(whole.out).features


def test_a_lost_chunk_is_encoded_again_in_place(checkpoint, encoded, monkeypatch):
    fake, whole = encoded
    url = OutputLayout(fake.out).features
    os.remove(os.path.join(url, EMBEDDINGS, "c", "0", "0"))  # every shard's frames
    with pytest.raises(DamagedStoreError):
        require_intact(open_store(url))
    encodes = record_encoded_shards(monkeypatch)
    summary = encode_features(checkpoint, fake.out, workers=0)
    assert sorted(encodes) == sorted(fake.shards)
    assert (summary.n_shards_encoded, sorted(summary.repaired)) == (0, sorted(fake.shards))
    assert "encoded again in place" in summary.describe()
    require_intact(open_store(url))
    snapshot(url).assert_equal(snapshot(whole))


def test_altered_rows_are_repaired_with_verify_only_for_their_shard(
    checkpoint, encoded, monkeypatch
):
    fake, whole = encoded
    url = OutputLayout(fake.out).features
    store = open_store(url, mode="r+")
    store.array(EMBEDDINGS)[130] = np.float16(0.5)  # shard 1: frames 120-199
    assert verify_store(open_store(url)).shards == {fake.shards[1]}
    encodes = record_encoded_shards(monkeypatch)
    # the cheap check sees no missing chunk: a plain re-run has nothing to do
    assert encode_features(checkpoint, fake.out, workers=0).repaired == []
    summary = encode_features(checkpoint, fake.out, workers=0, verify=True)
    assert (encodes, summary.repaired) == ([fake.shards[1]], [fake.shards[1]])
    assert verify_store(open_store(url)).problems == []
    snapshot(url).assert_equal(snapshot(whole))


def test_a_killed_repair_is_refused_until_a_rerun_finishes_it(checkpoint, encoded, monkeypatch):
    fake, whole = encoded
    url = OutputLayout(fake.out).features
    os.remove(os.path.join(url, EMBEDDINGS, "c", "0", "0"))
    original = training.encode.FeatureStore.rewrite
    calls = []

    def dying(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(training.encode.FeatureStore, "rewrite", dying)
    with pytest.raises(KeyboardInterrupt):
        encode_features(checkpoint, fake.out, workers=0)
    monkeypatch.undo()
    # the first shard's rewrite recreated the lost chunk: only the mark tells
    store = open_store(url)
    assert verify_store(store).shards >= set(fake.shards[1:])
    with pytest.raises(DamagedStoreError, match=r"repair of shards .* was interrupted"):
        require_intact(store)
    summary = encode_features(checkpoint, fake.out, workers=0)
    assert sorted(summary.repaired) == sorted(fake.shards)
    snapshot(url).assert_equal(snapshot(whole))


def test_a_chunk_that_no_longer_decodes_is_deleted_and_refilled(checkpoint, encoded):
    fake, whole = encoded
    url = OutputLayout(fake.out).features
    with open(os.path.join(url, EMBEDDINGS, "c", "0", "0"), "wb") as handle:
        handle.write(b"overwritten")
    # present, so the cheap check cannot see it; --verify reads it
    assert encode_features(checkpoint, fake.out, workers=0).repaired == []
    summary = encode_features(checkpoint, fake.out, workers=0, verify=True)
    assert sorted(summary.repaired) == sorted(fake.shards)
    assert verify_store(open_store(url)).problems == []
    snapshot(url).assert_equal(snapshot(whole))

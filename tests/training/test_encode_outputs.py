"""An encoded store as other tools read it (zarr, dask, xarray, pyarrow), and `sonotype encode`."""

import hashlib
from pathlib import Path

import dask.array as da
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr

from analysis.store import open_store
from sonotype.cli.main import main
from sonotype.config.load import read_yaml
from sonotype.contracts import (
    ATTR_CHECKPOINT_HASH,
    ATTR_N_FRAMES,
    ATTR_N_SEGMENTS,
    ATTR_SHARDS,
    EMBEDDINGS,
    POOLED,
    TOKENS,
    OutputLayout,
    features_config_path,
    features_table_path,
)
from tests.training.encode_helpers import garble_sample, save_tiny_tokenizer, write_out
from training import encode_features


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.pt")


def test_plain_zarr_dask_xarray_and_pyarrow_read_what_the_store_holds(checkpoint, tmp_path):
    fake = write_out(tmp_path / "out", (3, 2), durations={1: 0.6})
    encode_features(checkpoint, fake.out, workers=0)
    url = OutputLayout(fake.out).features
    store = open_store(url)
    n_frames, n_segments = store.n_frames, store.n_segments
    assert (n_frames, n_segments) == (4 * 40 + 24, 5)

    group = zarr.open_group(url, mode="r")
    assert group.attrs[ATTR_N_FRAMES] == n_frames
    assert group.attrs[ATTR_N_SEGMENTS] == n_segments
    assert group.attrs[ATTR_SHARDS] == fake.shards
    assert group.attrs[ATTR_CHECKPOINT_HASH] == store.checkpoint_sha256
    np.testing.assert_array_equal(group[TOKENS][:n_frames], store.read(TOKENS, 0, n_frames))
    assert group[EMBEDDINGS].dtype == np.float16

    embeddings = da.from_zarr(url, component=EMBEDDINGS)[:n_frames]
    np.testing.assert_array_equal(embeddings.compute(), store.read(EMBEDDINGS, 0, n_frames))

    dataset = xr.open_zarr(url, consolidated=False)
    assert dataset[TOKENS].dims == ("frame",)
    assert dataset[EMBEDDINGS].dims == ("frame", "dim")
    assert dataset[POOLED].dims == ("segment", "dim")
    np.testing.assert_array_equal(
        dataset[POOLED].values[:n_segments], store.read(POOLED, 0, n_segments)
    )
    np.testing.assert_array_equal(
        dataset[EMBEDDINGS].isel(frame=slice(40, 64)).values, store.read(EMBEDDINGS, 40, 64)
    )

    table = pq.read_table(features_table_path(url))
    table = table.filter(pc.less(table.column("segment_index"), n_segments))
    assert table.sort_by("segment_index").equals(store.read_segments())


def test_the_command_encodes_saves_its_settings_and_reports_problems_with_strict(
    checkpoint, tmp_path
):
    fake = write_out(tmp_path / "out", (2, 2))
    garble_sample(fake, fake.all_keys[1])
    store = str(tmp_path / "elsewhere.zarr")
    arguments = ["-q", "encode", "--checkpoint", str(checkpoint), "--shards", fake.out]
    arguments += ["--out", store, "--workers", "0", "--set", "batch_size=2"]
    assert main([*arguments, "--strict"]) == 1  # one sample could not be decoded
    assert open_store(store).read_segments().column("key").to_pylist() == [
        fake.all_keys[0],
        *fake.all_keys[2:],
    ]
    assert read_yaml(features_config_path(store))["batch_size"] == 2
    assert main(arguments) == 0  # nothing new
    other = save_tiny_tokenizer(tmp_path / "other.pt", seed=3)
    refused = ["-q", "encode", "--checkpoint", str(other), "--shards", fake.out, "--out", store]
    assert main([*refused, "--workers", "0"]) == 2
    assert main([*refused, "--workers", "0", "--force"]) == 0
    assert open_store(store).checkpoint_sha256 == hashlib.sha256(other.read_bytes()).hexdigest()

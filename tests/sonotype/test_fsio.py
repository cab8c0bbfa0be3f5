"""Atomic writes and URL handling."""

from pathlib import Path

import pyarrow as pa
import pytest

from sonotype import fsio


def test_atomic_write_leaves_nothing_when_the_block_fails(tmp_path: Path):
    target = tmp_path / "sub" / "out.bin"

    def killed_mid_write() -> None:
        with fsio.atomic_open(target) as handle:
            handle.write(b"partial")
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        killed_mid_write()
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_atomic_write_replaces_the_old_file_only_when_done(tmp_path: Path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with fsio.atomic_open(target, "w") as handle:
        handle.write("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_parquet_round_trip_on_a_memory_url():
    table = pa.table({"a": [1, 2, 3]})
    fsio.write_parquet_atomic(table, "memory://bucket/t.parquet")
    assert fsio.read_parquet("memory://bucket/t.parquet").equals(table)
    (found,) = fsio.glob("memory://bucket/*.parquet")
    assert found.startswith("memory://")
    assert fsio.read_parquet(found).equals(table)
    assert not fsio.is_local("memory://bucket/t.parquet")


def test_join_keeps_url_separators(tmp_path: Path):
    assert fsio.join("s3://b/root", "catalog", "x.parquet") == "s3://b/root/catalog/x.parquet"
    assert fsio.join(str(tmp_path), "a") == str(tmp_path / "a")
    assert fsio.TEMP_MARKER in fsio.temporary_name(str(tmp_path / "x.tar"))


def test_split_gives_parent_and_name_of_paths_and_urls():
    assert fsio.split("/data/out/features.zarr/") == ("/data/out", "features.zarr")
    assert fsio.split("s3://bucket/out/features.zarr") == ("s3://bucket/out", "features.zarr")
    assert fsio.split("features.zarr") == ("", "features.zarr")

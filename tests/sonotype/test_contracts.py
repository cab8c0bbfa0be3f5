"""Data contracts: shard keys, layout and schema checks."""

import pyarrow as pa
import pytest

from sonotype import contracts
from sonotype.errors import SonotypeError


def test_segment_keys_are_deterministic_and_dot_free():
    key = contracts.segment_key("PARACOU-20240315T084500Z-ab12", 0, 17)
    assert key == contracts.segment_key("PARACOU-20240315T084500Z-ab12", 0, 17)
    assert key == "PARACOU-20240315T084500Z-ab12_s0_000017"
    assert contracts.is_valid_key(key)
    assert "." not in key
    assert "/" not in key


@pytest.mark.parametrize("bad", ["a.b", "dir/x", "", "-lead", "sp ace"])
def test_invalid_recording_ids_are_refused(bad: str):
    with pytest.raises(SonotypeError, match="invalid shard key"):
        contracts.segment_key(bad, 0, 0)


def test_slug_makes_any_text_key_safe():
    assert contracts.slug("Saut Lavilette / point 3.b") == "Saut-Lavilette-point-3-b"
    assert contracts.is_valid_key(contracts.slug("...")) is True


def test_layout_paths():
    layout = contracts.OutputLayout("s3://lab/out")
    assert layout.recordings == "s3://lab/out/catalog/recordings.parquet"
    assert layout.clusters("default") == "s3://lab/out/clusters/default"
    assert contracts.features_table_path("s3://lab/out/features.zarr") == (
        "s3://lab/out/features.segments.parquet"
    )


def test_check_table_lists_every_problem():
    table = pa.table({"key": pa.array(["a"]), "recording_id": pa.array([1])})
    with pytest.raises(SonotypeError) as error:
        contracts.check_table(table, contracts.SEGMENTS_SCHEMA, "x.parquet")
    message = str(error.value)
    assert "x.parquet" in message
    assert "column 'recording_id' is int64, expected string" in message
    assert "missing column 'kept'" in message


def test_check_table_accepts_a_conforming_table_with_extra_columns():
    table = contracts.RECORDINGS_SCHEMA.empty_table().append_column(
        "extra", pa.array([], pa.int8())
    )
    contracts.check_table(table, contracts.RECORDINGS_SCHEMA, "r.parquet")


def test_segment_column_names_follow_the_schema_in_order():
    assert [str(column) for column in contracts.SegmentColumn] == contracts.SEGMENTS_SCHEMA.names
    assert {contracts.SegmentColumn.SITE: 1}["site"] == 1


def test_run_layout_paths():
    run = contracts.RunLayout("runs/tiny")
    assert run.metrics == "runs/tiny/metrics.jsonl"
    assert run.export == "runs/tiny/export/tokenizer.pt"
    assert run.checkpoints_dir == "runs/tiny/checkpoints"

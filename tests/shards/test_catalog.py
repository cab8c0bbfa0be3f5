"""Catalog I/O: contract checks on read and write."""

from pathlib import Path

import pyarrow as pa
import pytest

from shards.catalog import read_segments, write_recordings, write_segments
from sonotype.contracts import RECORDINGS_SCHEMA, SEGMENTS_SCHEMA
from sonotype.errors import SonotypeError


def test_missing_catalog_says_to_ingest_first(tmp_path: Path):
    with pytest.raises(SonotypeError, match="run `sonotype ingest` first"):
        read_segments(str(tmp_path))


def test_written_segments_read_back_in_contract_order(tmp_path: Path):
    row = {field.name: [None] for field in SEGMENTS_SCHEMA}
    row.update(key=["k_s0_000000"], recording_id=["k"], kept=[True])
    table = pa.table({name: row[name] for name in reversed(SEGMENTS_SCHEMA.names)})
    write_segments(table.cast(pa.schema(reversed(list(SEGMENTS_SCHEMA)))), str(tmp_path))
    read = read_segments(str(tmp_path))
    assert read.schema.names == SEGMENTS_SCHEMA.names
    assert read.column("key").to_pylist() == ["k_s0_000000"]
    assert read_segments(str(tmp_path), columns=["kept"]).column("kept").to_pylist() == [True]


def test_writing_a_table_that_breaks_the_contract_fails(tmp_path: Path):
    bad = RECORDINGS_SCHEMA.empty_table().drop_columns(["status"])
    with pytest.raises(SonotypeError, match="missing column 'status'"):
        write_recordings(bad, str(tmp_path))

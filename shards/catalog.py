"""The recordings and segments catalogs: read and write them, checked against the contract."""

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from sonotype.contracts import (
    OPTIONAL_SEGMENT_COLUMNS,
    RECORDINGS_SCHEMA,
    SEGMENTS_SCHEMA,
    OutputLayout,
    check_table,
    columns_to_read,
    with_optional_nulls,
)
from sonotype.errors import SonotypeError
from sonotype.fsio import exists, read_parquet, url_to_fs, write_parquet_atomic


def with_optional_columns(table: pa.Table, columns: list[str]) -> pa.Table:
    """Segment rows' `columns`, those older catalogs lack (OPTIONAL_SEGMENT_COLUMNS) as nulls."""
    return with_optional_nulls(table, SEGMENTS_SCHEMA, columns, OPTIONAL_SEGMENT_COLUMNS)


def _read(
    url: str, schema: pa.Schema, columns: list[str] | None, optional: tuple[str, ...] = ()
) -> pa.Table:
    if not exists(url):
        raise SonotypeError(f"{url}: catalog not found; run `sonotype ingest` first")
    wanted = columns or schema.names
    present = wanted
    if optional:
        fs, path = url_to_fs(url)
        present = pq.read_schema(path, filesystem=fs).names
    table = read_parquet(url, columns=columns_to_read(wanted, present, optional))
    table = with_optional_nulls(table, schema, wanted, optional)
    check_table(table, pa.schema([schema.field(c) for c in wanted]), url)
    return table


def read_recordings(out: str, columns: list[str] | None = None) -> pa.Table:
    """`OUT/catalog/recordings.parquet` (RECORDINGS_SCHEMA).

    Raises:
        SonotypeError: the catalog is missing or breaks the contract.
    """
    return _read(OutputLayout(out).recordings, RECORDINGS_SCHEMA, columns)


def read_segments(out: str, columns: list[str] | None = None) -> pa.Table:
    """`OUT/catalog/segments.parquet` (SEGMENTS_SCHEMA).

    Raises:
        SonotypeError: the catalog is missing or breaks the contract.
    """
    return _read(OutputLayout(out).segments, SEGMENTS_SCHEMA, columns, OPTIONAL_SEGMENT_COLUMNS)


def iter_segments(
    out: str, columns: list[str], batch_rows: int = 65536
) -> Iterator[pa.RecordBatch]:
    """`OUT/catalog/segments.parquet` in record batches, so memory stays at one batch.

    Args:
        out: the output root.
        columns: the columns to read.
        batch_rows: rows per batch.

    Yields:
        Record batches with `columns`, in file order.

    Raises:
        SonotypeError: the catalog is missing or breaks the contract.
    """
    url = OutputLayout(out).segments
    if not exists(url):
        raise SonotypeError(f"{url}: catalog not found; run `sonotype ingest` first")
    fs, path = url_to_fs(url)
    with fs.open(path, "rb") as handle:
        parquet = pq.ParquetFile(handle)
        wanted = pa.schema([SEGMENTS_SCHEMA.field(c) for c in columns])
        readable = columns_to_read(columns, parquet.schema_arrow.names, OPTIONAL_SEGMENT_COLUMNS)
        empty = with_optional_columns(parquet.schema_arrow.empty_table(), columns)
        check_table(empty, wanted, url)
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=readable):
            if len(readable) == len(columns):
                yield batch
            else:
                table = with_optional_columns(pa.Table.from_batches([batch]), columns)
                yield from table.to_batches()


def count_segments(out: str) -> int:
    """Rows of `OUT/catalog/segments.parquet`, from the Parquet footer.

    Raises:
        SonotypeError: the catalog is missing.
    """
    url = OutputLayout(out).segments
    if not exists(url):
        raise SonotypeError(f"{url}: catalog not found; run `sonotype ingest` first")
    fs, path = url_to_fs(url)
    with fs.open(path, "rb") as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def _write(table: pa.Table, url: str, schema: pa.Schema) -> None:
    check_table(table, schema, url)
    write_parquet_atomic(table.select(schema.names).cast(schema), url)


def write_recordings(table: pa.Table, out: str) -> None:
    """Replace `OUT/catalog/recordings.parquet` atomically (columns ordered as the contract)."""
    _write(table, OutputLayout(out).recordings, RECORDINGS_SCHEMA)


def write_segments(table: pa.Table, out: str) -> None:
    """Replace `OUT/catalog/segments.parquet` atomically (columns ordered as the contract)."""
    _write(table, OutputLayout(out).segments, SEGMENTS_SCHEMA)

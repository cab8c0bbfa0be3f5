"""The segment table beside a feature store: a directory of Parquet parts, one per append.

`X.segments.parquet/part-<first segment_index, 12 digits>.parquet`, rows following
FEATURE_SEGMENTS_SCHEMA. A part is named by the committed segment count when its
append began, so a part left by an append killed before its commit is overwritten by
the next append; readers pass the committed count and never see it. Any Parquet reader
reads the directory as one table (then keep `segment_index < n_segments`).
"""

import posixpath
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sonotype import contracts
from sonotype.contracts import (
    FEATURE_SEGMENT_FILLED_COLUMNS,
    FEATURE_SEGMENTS_SCHEMA,
    OPTIONAL_FEATURE_SEGMENT_COLUMNS,
)
from sonotype.errors import SonotypeError
from sonotype.fsio import exists, join, makedirs, url_to_fs, write_parquet_atomic

_PART_PREFIX = "part-"
_PART_DIGITS = 12


def check_rows(segments: pa.Table | Mapping[str, Sequence], where: str) -> pa.Table:
    """New segment rows: every contract column but those the store fills in, cast to the contract.

    Raises:
        SonotypeError: a column is missing or cannot take the contract's type.
    """
    table = segments if isinstance(segments, pa.Table) else pa.table(dict(segments))
    filled = FEATURE_SEGMENT_FILLED_COLUMNS
    expected = [name for name in FEATURE_SEGMENTS_SCHEMA.names if name not in filled]
    missing = [name for name in expected if name not in table.column_names]
    if missing:
        raise SonotypeError(f"{where}: segment rows miss columns {missing}")
    try:
        return table.select(expected).cast(
            pa.schema([FEATURE_SEGMENTS_SCHEMA.field(name) for name in expected])
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise SonotypeError(f"{where}: segment rows do not fit the contract: {error}") from None


def write_part(table_url: str, first_segment: int, table: pa.Table) -> None:
    """Write the rows of one append (full FEATURE_SEGMENTS_SCHEMA) atomically."""
    makedirs(table_url)
    name = f"{_PART_PREFIX}{first_segment:0{_PART_DIGITS}d}.parquet"
    rows = table.select(FEATURE_SEGMENTS_SCHEMA.names).cast(FEATURE_SEGMENTS_SCHEMA)
    write_parquet_atomic(rows, join(table_url, name))


def replace_checksums(
    table_url: str, parts: list[tuple[int, str]], checksums: Mapping[int, str]
) -> None:
    """Set the checksum of segments `{segment_index: checksum}`, rewriting each part that
    holds one of them whole and atomically (the rows of a repaired shard)."""
    wanted = sorted(checksums)
    for index, (first, url) in enumerate(parts):
        end = parts[index + 1][0] if index + 1 < len(parts) else None
        if not any(first <= row and (end is None or row < end) for row in wanted):
            continue
        table = _read_part(url, FEATURE_SEGMENTS_SCHEMA.names)
        rows = table.column("segment_index").to_pylist()
        values = table.column("checksum").to_pylist()
        values = [checksums.get(row, value) for row, value in zip(rows, values, strict=True)]
        column = table.schema.get_field_index("checksum")
        write_part(table_url, first, table.set_column(column, "checksum", pa.array(values)))


def remove(table_url: str) -> None:
    """Delete the whole table (when its store is replaced)."""
    if exists(table_url):
        fs, path = url_to_fs(table_url)
        fs.rm(path, recursive=True)


def list_parts(table_url: str, committed: int) -> list[tuple[int, str]]:
    """`(first segment_index, url)` of every part that may hold committed rows, in order."""
    if not exists(table_url):
        return []
    fs, path = url_to_fs(table_url)
    parts = []
    for entry in fs.ls(path, detail=False):
        name = posixpath.basename(entry)
        digits = name[len(_PART_PREFIX) : len(_PART_PREFIX) + _PART_DIGITS]
        if name.startswith(_PART_PREFIX) and name.endswith(".parquet") and digits.isdigit():
            parts.append((int(digits), join(table_url, name)))
    return sorted(part for part in parts if part[0] < committed)


def read_rows(
    table_url: str,
    parts: list[tuple[int, str]],
    committed: int,
    start: int,
    stop: int,
    columns: Sequence[str],
) -> pa.Table:
    """Rows with `start <= segment_index < stop` (< committed), in order.

    Only the parts overlapping the range are read, so memory follows the range (and
    the append batch size), not the size of the table.

    Args:
        table_url: the table directory.
        parts: `list_parts(table_url, committed)`.
        committed: the store's committed segment count.
        start: first segment.
        stop: one past the last segment.
        columns: columns to return.

    Raises:
        SonotypeError: rows are missing or a part breaks the contract.
    """
    stop = min(stop, committed)
    read_columns = sorted(set(columns) | {"segment_index"})
    schema = pa.schema([FEATURE_SEGMENTS_SCHEMA.field(name) for name in read_columns])
    tables = []
    for index, (first, url) in enumerate(parts):
        end = parts[index + 1][0] if index + 1 < len(parts) else stop
        if end <= start or first >= stop:
            continue
        table = _read_part(url, read_columns)
        contracts.check_table(table, schema, url)
        index_column = table.column("segment_index")
        mask = pc.and_(pc.greater_equal(index_column, start), pc.less(index_column, stop))
        tables.append(table.filter(mask))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    table = table.sort_by("segment_index")
    if table.num_rows != max(0, stop - start):
        raise SonotypeError(
            f"{table_url}: segments [{start}, {stop}) expected, found {table.num_rows} rows"
        )
    return table.select(list(columns))


def _read_part(url: str, columns: list[str]) -> pa.Table:
    """`columns` of one part; an optional column the part predates reads as nulls."""
    fs, path = url_to_fs(url)
    optional = OPTIONAL_FEATURE_SEGMENT_COLUMNS
    asks_optional = any(name in optional for name in columns)
    present = pq.read_schema(path, filesystem=fs).names if asks_optional else columns
    table = pq.read_table(
        path, filesystem=fs, columns=contracts.columns_to_read(columns, present, optional)
    )
    return contracts.with_optional_nulls(table, FEATURE_SEGMENTS_SCHEMA, columns, optional)

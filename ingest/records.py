"""Catalog rows as typed records whose fields are the contract's columns, and their tables.

`RecordingRecord` mirrors RECORDINGS_SCHEMA and `SegmentRecord` SEGMENTS_SCHEMA, field
for field and in order (tests check it), so ingest builds rows by attribute and never
spells a column name as a string of its own.
"""

import dataclasses
import datetime as dt
from collections.abc import Iterable
from typing import Any, Final

import pyarrow as pa

from sonotype.contracts import RECORDINGS_SCHEMA, SEGMENTS_SCHEMA


@dataclasses.dataclass(frozen=True)
class RecordingRecord:
    """One row of `catalog/recordings.parquet`.

    `time_source` names the filename rule that gave `start_time` (e.g. "audiomoth",
    "songmeter"), None when the start is unknown. `fingerprint` is "<bytes>:<hash of the
    first and last 64 KiB>"; it is None for ignored side files, which are not read.
    """

    recording_id: str
    path: str
    site: str | None
    start_time: dt.datetime | None
    time_source: str | None
    duration_s: float | None
    sample_rate: int | None
    channels: int | None
    format: str | None
    subtype: str | None
    bytes: int | None
    fingerprint: str | None
    status: str
    error: str | None
    n_segments_kept: int | None
    n_segments_dropped: int | None


@dataclasses.dataclass(frozen=True)
class SegmentRecord:
    """One row of `catalog/segments.parquet`, also stored as the sample's JSON in its shard.

    `rms_dbfs`, `peak` and `dc_offset` describe the stored (resampled) audio;
    `clipped_fraction`, `is_silent` and `has_nonfinite` describe the source samples the
    segment was made from (resampling smears clipping and cannot carry NaN).
    """

    key: str
    recording_id: str
    site: str | None
    stream: int
    channel: int
    start_time: dt.datetime | None
    offset_s: float
    duration_s: float
    sample_rate: int
    shard: str | None
    rms_dbfs: float
    peak: float
    clipped_fraction: float
    is_silent: bool
    has_nonfinite: bool
    dc_offset: float
    kept: bool
    drop_reason: str | None
    checksum: str | None = None


RECORDING_ID_COLUMN: Final = dataclasses.fields(SegmentRecord)[1].name
"""The column tying segments to their recording (the same name in both schemas)."""


def as_row(record: RecordingRecord | SegmentRecord) -> dict[str, Any]:
    """The record as a column → value mapping (values are scalars: no deep copy needed)."""
    return {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}


def recordings_table(records: Iterable[RecordingRecord]) -> pa.Table:
    """Records as a table of RECORDINGS_SCHEMA."""
    return pa.Table.from_pylist([as_row(r) for r in records], schema=RECORDINGS_SCHEMA)


def segments_table(records: Iterable[SegmentRecord]) -> pa.Table:
    """Records as a table of SEGMENTS_SCHEMA."""
    return pa.Table.from_pylist([as_row(r) for r in records], schema=SEGMENTS_SCHEMA)


def recordings_from_table(table: pa.Table) -> list[RecordingRecord]:
    """The rows of a recordings table (RECORDINGS_SCHEMA) as records."""
    names = [field.name for field in dataclasses.fields(RecordingRecord)]
    return [RecordingRecord(**row) for row in table.select(names).to_pylist()]

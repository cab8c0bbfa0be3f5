"""Merge the finished work of a run into the recordings and segments catalogs.

The recordings catalog is small (one row per file) and rewritten whole. The segments
catalog can hold millions of rows, so it is rewritten by streaming: the old file's
row groups are copied (minus the recordings this run redid), then the new task parts
are appended, so memory stays at one row group. Both writes are atomic, and the work
parts are removed only after both, so a run killed at any point merges again on the
next run with the same result.
"""

import logging

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest import work
from ingest.plan import task_prefix
from ingest.records import (
    RECORDING_ID_COLUMN,
    RecordingRecord,
    recordings_from_table,
    recordings_table,
)
from shards.catalog import read_recordings, write_recordings
from sonotype.contracts import RECORDING_STATUS_OK, SEGMENTS_SCHEMA, OutputLayout, check_table
from sonotype.fsio import atomic_open, exists, read_parquet, url_to_fs

logger = logging.getLogger(__name__)

_BATCH_ROWS = 65536


def previous_recordings(out: str) -> dict[str, RecordingRecord]:
    """Every recording the output knows: catalog rows, overridden by unmerged finished parts.

    Raises:
        SonotypeError: the catalog does not follow the contract.
    """
    known: dict[str, RecordingRecord] = {}
    if exists(OutputLayout(out).recordings):
        known.update((r.recording_id, r) for r in recordings_from_table(read_recordings(out)))
    for record in work.read_recording_parts(out):
        _replace(known, record)
    return known


def _replace(known: dict[str, RecordingRecord], record: RecordingRecord) -> set[str]:
    """Put `record` in `known`, removing any row of the same file under another id.

    Returns:
        The ids whose segments `record` replaces.
    """
    replaced = {record.recording_id}
    for other in [r for r in known.values() if r.path == record.path]:
        if other.recording_id != record.recording_id:
            del known[other.recording_id]
            replaced.add(other.recording_id)
    known[record.recording_id] = record
    return replaced


def task_parts_of(record: RecordingRecord, finished: dict[str, str]) -> list[str]:
    """URLs of the task parts of `record`'s current version, in task order."""
    if record.fingerprint is None:
        return []
    prefix = task_prefix(record.recording_id, record.fingerprint)
    return [finished[name] for name in sorted(finished) if name.startswith(prefix)]


def _copy_old_segments(writer: pq.ParquetWriter, url: str, replaced: set[str]) -> int:
    fs, path = url_to_fs(url)
    n_rows = 0
    with fs.open(path, "rb") as handle:
        source = pq.ParquetFile(handle)
        check_table(source.schema_arrow.empty_table(), SEGMENTS_SCHEMA, url)
        drop = pa.array(sorted(replaced), pa.string())
        for batch in source.iter_batches(batch_size=_BATCH_ROWS, columns=SEGMENTS_SCHEMA.names):
            table = pa.Table.from_batches([batch])
            keep = pc.invert(pc.is_in(table.column(RECORDING_ID_COLUMN), value_set=drop))
            table = table.filter(keep).cast(SEGMENTS_SCHEMA)
            writer.write_table(table)
            n_rows += table.num_rows
    return n_rows


def consolidate(out: str) -> int:
    """Merge finished recordings and their task parts into the catalogs, then remove the parts.

    Args:
        out: the output root.

    Returns:
        How many recordings were merged (0: nothing to do, the catalogs are untouched).

    Raises:
        SonotypeError: an existing catalog or part does not follow the contract.
    """
    layout = OutputLayout(out)
    parts = work.finished_recordings(out)
    if not parts:
        return 0
    known: dict[str, RecordingRecord] = {}
    if exists(layout.recordings):
        known.update((r.recording_id, r) for r in recordings_from_table(read_recordings(out)))
    new = sorted(
        (r for url in parts.values() for r in recordings_from_table(read_parquet(url))),
        key=lambda r: r.recording_id,
    )
    replaced: set[str] = set()
    for record in new:
        replaced |= _replace(known, record)
    finished = work.finished_tasks(out)
    consumed = []
    n_rows = 0
    with atomic_open(layout.segments, "wb") as handle:
        writer = pq.ParquetWriter(handle, SEGMENTS_SCHEMA, compression="zstd")
        if exists(layout.segments):
            n_rows += _copy_old_segments(writer, layout.segments, replaced)
        for record in new:
            urls = task_parts_of(record, finished)
            consumed.extend(urls)
            if record.status != RECORDING_STATUS_OK:
                continue
            for url in urls:
                table = read_parquet(url)
                check_table(table, SEGMENTS_SCHEMA, url)
                writer.write_table(table.select(SEGMENTS_SCHEMA.names).cast(SEGMENTS_SCHEMA))
                n_rows += table.num_rows
        writer.close()
    write_recordings(recordings_table(sorted(known.values(), key=lambda r: r.recording_id)), out)
    work.remove(consumed + list(parts.values()))
    logger.info(
        "catalogs: %d recordings (%d merged now), %d segments", len(known), len(new), n_rows
    )
    return len(new)

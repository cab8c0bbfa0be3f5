"""Merge a run's recordings and their task parts into the recordings and segments catalogs.

The recordings catalog is small (one row per file) and rewritten whole. The segments
catalog can hold millions of rows, so it is rewritten by streaming: the old file's
row groups are copied (minus the recordings this run redid), then the new task parts
are appended, all gathered into row groups of up to `_BATCH_ROWS` rows rather than one
per task (a task of a 2 min file has 12 rows), so memory stays at one row group and
readers of the catalog do not wade through thousands of tiny groups. Both writes are
atomic, and task parts are removed only after both: a run killed before the end leaves
parts the next run resumes from, one killed after the writes leaves parts the next run
just removes.
"""

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

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
from shards.catalog import iter_segments, read_recordings, write_recordings
from sonotype.contracts import RECORDING_STATUS_OK, SEGMENTS_SCHEMA, OutputLayout
from sonotype.fsio import atomic_open, exists

logger = logging.getLogger(__name__)

_BATCH_ROWS = 65536
_READ_THREADS = 4
_READ_CHUNK = 256


def known_recordings(out: str) -> dict[str, RecordingRecord]:
    """The rows of the recordings catalog by id ({} when there is none yet).

    Raises:
        SonotypeError: the catalog does not follow the contract.
    """
    if not exists(OutputLayout(out).recordings):
        return {}
    return {r.recording_id: r for r in recordings_from_table(read_recordings(out))}


def _merge(known: dict[str, RecordingRecord], records: list[RecordingRecord]) -> set[str]:
    """Put `records` in `known`, removing any row of the same file under another id.

    Returns:
        The ids whose segments the new rows replace.
    """
    by_path = {r.path: r.recording_id for r in known.values()}
    replaced = set()
    for record in records:
        other = by_path.get(record.path)
        if other is not None and other != record.recording_id:
            known.pop(other, None)
            replaced.add(other)
        known[record.recording_id] = record
        by_path[record.path] = record.recording_id
        replaced.add(record.recording_id)
    return replaced


def _parts_by_recording(finished: dict[str, str]) -> dict[str, list[tuple[str, str]]]:
    """Finished task parts grouped by recording id: (task name, URL), in task order."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    for name in sorted(finished):
        grouped.setdefault(work.recording_of_task(name), []).append((name, finished[name]))
    return grouped


def _task_parts_of(record: RecordingRecord, grouped: dict[str, list[tuple[str, str]]]) -> list[str]:
    """URLs of the task parts of `record`'s current version (fingerprint), in task order."""
    if record.fingerprint is None:
        return []
    prefix = task_prefix(record.recording_id, record.fingerprint)
    return [url for name, url in grouped.get(record.recording_id, []) if name.startswith(prefix)]


class _RowGroup:
    """Gathers small tables and writes them as one row group once `_BATCH_ROWS` are held."""

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self._writer = writer
        self._tables: list[pa.Table] = []
        self._n_rows = 0

    def add(self, table: pa.Table) -> None:
        self._tables.append(table)
        self._n_rows += table.num_rows
        if self._n_rows >= _BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        """Write what is held (nothing if empty)."""
        if self._tables:
            self._writer.write_table(pa.concat_tables(self._tables), row_group_size=_BATCH_ROWS)
        self._tables, self._n_rows = [], 0


def _copy_old_segments(group: _RowGroup, out: str, replaced: set[str]) -> int:
    n_rows = 0
    drop = pa.array(sorted(replaced), pa.string())
    for batch in iter_segments(out, SEGMENTS_SCHEMA.names, _BATCH_ROWS):
        table = pa.Table.from_batches([batch])
        keep = pc.invert(pc.is_in(table.column(RECORDING_ID_COLUMN), value_set=drop))
        table = table.filter(keep).cast(SEGMENTS_SCHEMA)
        group.add(table)
        n_rows += table.num_rows
    return n_rows


def _write_segments(
    out: str,
    new: list[RecordingRecord],
    replaced: set[str],
    grouped: dict[str, list[tuple[str, str]]],
) -> int:
    layout = OutputLayout(out)
    n_rows = 0
    with atomic_open(layout.segments, "wb") as handle:
        writer = pq.ParquetWriter(handle, SEGMENTS_SCHEMA, compression="zstd")
        group = _RowGroup(writer)
        if exists(layout.segments):
            n_rows += _copy_old_segments(group, out, replaced)
        urls = [
            url
            for record in new
            if record.status == RECORDING_STATUS_OK
            for url in _task_parts_of(record, grouped)
        ]
        for table in _read_parts(urls):
            group.add(table)
            n_rows += table.num_rows
        group.flush()
        writer.close()
    return n_rows


def _read_parts(urls: list[str]) -> Iterator[pa.Table]:
    """Each task part (`work.read_task_table`), in order, read `_READ_THREADS` at a time.

    Reading a small Parquet file is mostly pyarrow's C++ work, which runs outside the
    GIL; a run's end has every core free for it. Chunks bound what is held in memory.
    """
    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        for start in range(0, len(urls), _READ_CHUNK):
            chunk = urls[start : start + _READ_CHUNK]
            yield from pool.map(work.read_task_table, chunk)


def consolidate(out: str, records: list[RecordingRecord]) -> int:
    """Merge `records` (rows this run finished) and their task parts into the catalogs.

    Task parts of every recording in the merged catalog are removed afterwards; parts
    of recordings the catalog does not hold yet (a killed run's unfinished work on
    files not among this run's inputs) are kept for a later run to resume.

    Args:
        out: the output root.
        records: recordings finished by this run (ok, failed or ignored), in any order.

    Returns:
        How many segment rows the catalog holds now (0 if it was left untouched).

    Raises:
        SonotypeError: an existing catalog or part does not follow the contract.
    """
    known = known_recordings(out)
    finished = work.finished_tasks(out)
    n_rows = 0
    if records:
        new = sorted(records, key=lambda r: r.recording_id)
        replaced = _merge(known, new)
        n_rows = _write_segments(out, new, replaced, _parts_by_recording(finished))
        write_recordings(
            recordings_table(sorted(known.values(), key=lambda r: r.recording_id)), out
        )
        logger.info(
            "catalogs: %d recordings (%d from this run), %d segments", len(known), len(new), n_rows
        )
    merged = [url for name, url in finished.items() if work.recording_of_task(name) in known]
    work.remove(merged)
    return n_rows

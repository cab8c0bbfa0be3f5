"""Ingest's persisted progress, which makes a killed run resumable without redoing work.

`OUT/catalog/ingest-work/tasks/<task name>.parquet` holds the segment rows of one
finished task, written atomically by the client when the worker returns them, after
the task's shard has been renamed into place. A run killed at any point leaves only
whole parts and whole shards; the next run skips the tasks whose part exists and
rebuilds their recordings' rows from the parts. At the end of a run the parts are
merged into the catalogs (`ingest.consolidate`) and removed.
"""

import logging
import posixpath
import re

import pyarrow as pa

from ingest.records import SegmentRecord, segments_table
from shards.catalog import with_optional_columns
from sonotype.contracts import SEGMENTS_SCHEMA, SHARD_SUFFIX, OutputLayout, check_table
from sonotype.fsio import (
    TEMP_MARKER,
    glob,
    join,
    read_parquet_file,
    url_to_fs,
    write_parquet_atomic,
)

logger = logging.getLogger(__name__)

_SUFFIX = ".parquet"
_SHARD_PART = re.compile(r"-p\d{3}$")


def work_dir(out: str) -> str:
    """`OUT/catalog/ingest-work/`."""
    return join(OutputLayout(out).catalog_dir, "ingest-work")


def _tasks_dir(out: str) -> str:
    return join(work_dir(out), "tasks")


def task_part_url(out: str, task_name: str) -> str:
    """Where the segment rows of task `task_name` go."""
    return join(_tasks_dir(out), task_name + _SUFFIX)


def _stems(directory: str) -> dict[str, str]:
    """File stem → URL of the finished parts in `directory`."""
    return {
        posixpath.basename(url)[: -len(_SUFFIX)]: url
        for url in glob(join(directory, "*" + _SUFFIX))
        if TEMP_MARKER not in url
    }


def write_task_part(out: str, task_name: str, records: list[SegmentRecord]) -> None:
    """Persist the segment rows of a finished task (atomic)."""
    write_parquet_atomic(segments_table(records), task_part_url(out, task_name))


def finished_tasks(out: str) -> dict[str, str]:
    """Task name → URL of the task parts on disk."""
    return _stems(_tasks_dir(out))


def read_task_table(url: str) -> pa.Table:
    """A task part as a table of SEGMENTS_SCHEMA (its columns, in order, with its types).

    Raises:
        SonotypeError: the part does not follow SEGMENTS_SCHEMA.
    """
    table = with_optional_columns(read_parquet_file(url), SEGMENTS_SCHEMA.names)
    check_table(table, SEGMENTS_SCHEMA, url)
    return table.select(SEGMENTS_SCHEMA.names).cast(SEGMENTS_SCHEMA)


def read_task_part(url: str) -> list[SegmentRecord]:
    """The segment rows of a task part.

    Raises:
        SonotypeError: the part does not follow SEGMENTS_SCHEMA.
    """
    return [SegmentRecord(**row) for row in read_task_table(url).to_pylist()]


def remove(urls: list[str]) -> None:
    """Delete files (those already gone are fine)."""
    if not urls:
        return
    fs, _ = url_to_fs(urls[0])
    for url in urls:
        _, path = url_to_fs(url)
        if fs.exists(path):
            fs.rm(path)


def remove_temporaries(directory: str) -> int:
    """Delete unfinished writes (`*.tmp-*`) a killed run left under `directory`; how many."""
    fs, path = url_to_fs(directory)
    if not fs.exists(path):
        return 0
    stale = [name for name in fs.find(path) if TEMP_MARKER in posixpath.basename(name)]
    for name in stale:
        fs.rm(name)
    if stale:
        logger.info("removed %d unfinished file(s) left by an interrupted run", len(stale))
    return len(stale)


def recording_of_task(task_name: str) -> str:
    """`<recording_id>-<digest>-pNNNofNNN` → recording_id (the last two fields split off)."""
    return task_name.rsplit("-", 2)[0]


def recording_of_shard(url: str) -> str:
    """`.../<site>/<recording_id>[-pNNN].tar` → recording_id."""
    return _SHARD_PART.sub("", posixpath.basename(url)[: -len(SHARD_SUFFIX)])


def remove_outputs(out: str, recording_ids: set[str]) -> None:
    """Delete the shards and unmerged task parts of recordings (before redoing or failing them).

    One listing of the shards and one of the task parts serve all the recordings.
    """
    if not recording_ids:
        return
    pattern = join(OutputLayout(out).shards_dir, "*", "*" + SHARD_SUFFIX)
    shards = [url for url in glob(pattern) if recording_of_shard(url) in recording_ids]
    tasks = [
        url for name, url in finished_tasks(out).items() if recording_of_task(name) in recording_ids
    ]
    remove(shards + tasks)

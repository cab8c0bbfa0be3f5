"""Decide, per file found, what this run does: ignore it, skip it, record its failure, or plan it.

This runs in the client before any Dask work, with threads (it reads headers and 128
KiB per file), so a re-run with nothing new starts no cluster at all.
"""

import dataclasses
import hashlib
from collections.abc import Set
from dataclasses import dataclass

from ingest.channels import channel_problem
from ingest.decode import inspect_recording
from ingest.discover import FoundFile, fingerprint
from ingest.job import TASK_ERROR_PREFIX
from ingest.metadata import read_path_metadata, recording_id
from ingest.plan import TaskSpec, plan_tasks
from ingest.records import RecordingRecord
from sonotype.audio import AudioInfo
from sonotype.config.ingest import IngestConfig
from sonotype.contracts import (
    RECORDING_STATUS_FAILED,
    RECORDING_STATUS_IGNORED,
    RECORDING_STATUS_OK,
)
from sonotype.errors import AudioDecodeError


@dataclass(frozen=True)
class ScanOutcome:
    """What to do with one file.

    Attributes:
        record: its catalog row: final (ignored, failed, or the previous row when
            skipped), or for a planned recording a template whose counts are unset.
        tasks: the tasks to run; empty unless the recording is to be processed.
        skipped: the file is unchanged since a run that finished it.
        previous: the row this one replaces (an earlier version of the file), if any.
    """

    record: RecordingRecord
    tasks: list[TaskSpec]
    skipped: bool = False
    previous: RecordingRecord | None = None


def is_finished(record: RecordingRecord) -> bool:
    """Whether a row is a final outcome: not a task failure, which the next run retries."""
    if record.status == RECORDING_STATUS_FAILED:
        return not (record.error or "").startswith(TASK_ERROR_PREFIX)
    return True


def _with_header(record: RecordingRecord, info: AudioInfo) -> RecordingRecord:
    return dataclasses.replace(
        record,
        duration_s=info.duration_s,
        sample_rate=info.sample_rate,
        channels=info.channels,
        format=info.format,
        subtype=info.subtype,
    )


def scan_file(
    found: FoundFile,
    config: IngestConfig,
    known: dict[str, RecordingRecord],
    known_paths: dict[str, RecordingRecord],
    redo: bool,
    repair: Set[str] = frozenset(),
) -> ScanOutcome:
    """Decide what to do with one file found by discovery.

    Args:
        found: the file.
        config: the ingest settings.
        known: rows of the output by recording id.
        known_paths: the same rows by path.
        redo: process the file even if an earlier run finished it (`--force`).
        repair: ids of recordings whose catalog rows or shards were lost
            (`ingest.repair`): processed again too.

    Returns:
        The file's outcome. Bad files give a failed row; nothing raises for bad input.
    """
    meta = read_path_metadata(found.url, config.metadata)
    rid = recording_id(meta.site, meta.start_time, found.relative)
    previous = known.get(rid) or known_paths.get(found.url)
    row = RecordingRecord(
        recording_id=rid,
        path=found.url,
        site=meta.site,
        start_time=meta.start_time,
        time_source=meta.time_source,
        duration_s=None,
        sample_rate=None,
        channels=None,
        format=None,
        subtype=None,
        bytes=found.size,
        fingerprint=None,
        status=RECORDING_STATUS_IGNORED,
        error=found.ignore_reason,
        n_segments_kept=None,
        n_segments_dropped=None,
    )
    if found.ignore_reason is not None:
        return ScanOutcome(row, [], skipped=previous == row)
    try:
        fingerprint_ = fingerprint(found.url, found.size)
    except OSError as error:
        failed = dataclasses.replace(
            row, status=RECORDING_STATUS_FAILED, error=f"{found.url}: unreadable ({error})"
        )
        return ScanOutcome(failed, [], previous=previous)
    if (
        previous is not None
        and not redo
        and previous.recording_id not in repair
        and previous.fingerprint == fingerprint_
        and is_finished(previous)
    ):
        return ScanOutcome(previous, [], skipped=True)
    row = dataclasses.replace(row, fingerprint=fingerprint_, status=RECORDING_STATUS_FAILED)
    try:
        info = inspect_recording(found.url, found.size)
    except AudioDecodeError as error:
        return ScanOutcome(dataclasses.replace(row, error=str(error)), [], previous=previous)
    row = _with_header(row, info)
    problem = channel_problem(info.channels, config.channels)
    if problem is not None:
        failed = dataclasses.replace(row, error=f"{found.url}: {problem}")
        return ScanOutcome(failed, [], previous=previous)
    planned = dataclasses.replace(row, status=RECORDING_STATUS_OK, error=None)
    tasks = plan_tasks(rid, found.url, meta.site, meta.start_time, fingerprint_, info, config)
    return ScanOutcome(planned, tasks, previous=previous)


def set_aside_duplicates(outcomes: list[ScanOutcome]) -> list[ScanOutcome]:
    """Keep one file per recording id; the others become ignored rows naming the first.

    Two files share an id when they have the same site, start time and path below their
    inputs: the same recording reached through two inputs (a backup copy, say).
    Processing both would write two sets of segments under one set of keys.

    Args:
        outcomes: the scan outcomes, in discovery order (sorted by URL).

    Returns:
        The outcomes with each duplicate replaced by an ignored row under its own id
        (`<id>-<hash of its URL>`).
    """
    first: dict[str, str] = {}
    kept = []
    for outcome in outcomes:
        record = outcome.record
        if record.recording_id not in first:
            first[record.recording_id] = record.path
            kept.append(outcome)
            continue
        digest = hashlib.sha1(record.path.encode("utf-8"), usedforsecurity=False).hexdigest()[:8]
        duplicate = dataclasses.replace(
            record,
            recording_id=f"{record.recording_id}-{digest}",
            status=RECORDING_STATUS_IGNORED,
            error=f"duplicate of {first[record.recording_id]}: the same site, start time and "
            "path below its input",
            n_segments_kept=None,
            n_segments_dropped=None,
        )
        kept.append(ScanOutcome(duplicate, []))
    return kept

"""`run_ingest`: discover → scan (skip what is done) → Dask tasks → finish recordings → catalogs.

A recording is finished once all its tasks are: ok with its segment counts, or failed
with the first task's reason and its shards removed. The catalogs are merged from the
finished recordings at the end. A killed run leaves the segment rows of its finished
tasks on disk; the next run does not run those tasks again.
"""

import dataclasses
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ingest import work
from ingest.consolidate import consolidate, known_recordings
from ingest.discover import FoundFile, discover
from ingest.job import run_tasks
from ingest.plan import TaskSpec
from ingest.process import TaskResult
from ingest.records import RecordingRecord
from ingest.repair import recordings_to_repair
from ingest.saved_config import check_and_save
from ingest.scan import ScanOutcome, scan_file, set_aside_duplicates
from sonotype.config.ingest import IngestConfig
from sonotype.config.load import dump_config
from sonotype.contracts import (
    RECORDING_STATUS_FAILED,
    RECORDING_STATUS_IGNORED,
    RECORDING_STATUS_OK,
    OutputLayout,
)
from sonotype.dask_cluster import dask_client
from sonotype.output_lock import output_lock
from sonotype.progress import track

logger = logging.getLogger(__name__)

_FAILURES_SHOWN = 20


@dataclass
class IngestSummary:
    """What a run did.

    Attributes:
        n_found: files found under the inputs.
        n_ignored: side files and duplicates among them (recorded, not read).
        n_skipped: recordings finished by an earlier run with the same fingerprint.
        n_processed: recordings processed by this run.
        n_ok: recordings among the inputs that are ok (this run or earlier).
        n_failed: recordings among the inputs that failed (this run or earlier).
        n_segments_kept: segments written to shards by this run.
        n_segments_dropped: segments dropped by the quality checks in this run.
        drop_reasons: dropped segments per reason, this run.
        audio_s: seconds of audio processed by this run.
        wall_s: the run's wall time.
        failures: (path, reason) of the failed recordings among the inputs.
    """

    n_found: int = 0
    n_ignored: int = 0
    n_skipped: int = 0
    n_processed: int = 0
    n_ok: int = 0
    n_failed: int = 0
    n_segments_kept: int = 0
    n_segments_dropped: int = 0
    drop_reasons: dict[str, int] = field(default_factory=dict)
    audio_s: float = 0.0
    wall_s: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def describe(self) -> str:
        """A few lines for the log: counts, drop reasons, speed, and the failures."""
        speed = self.audio_s / self.wall_s if self.wall_s > 0 else 0.0
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.drop_reasons.items())) or "none"
        lines = [
            f"ingest: {self.n_found} files found: {self.n_processed} processed, "
            f"{self.n_skipped} unchanged and skipped, {self.n_ignored} ignored (side files, "
            "duplicates)",
            f"recordings: {self.n_ok} ok, {self.n_failed} failed",
            f"segments this run: {self.n_segments_kept} kept, {self.n_segments_dropped} dropped "
            f"(reasons: {reasons})",
            f"audio this run: {self.audio_s / 3600:.2f} h in {self.wall_s:.1f} s "
            f"({speed:.0f}x realtime)",
        ]
        lines += [f"failed: {path}: {reason}" for path, reason in self.failures[:_FAILURES_SHOWN]]
        if len(self.failures) > _FAILURES_SHOWN:
            lines.append(f"... and {len(self.failures) - _FAILURES_SHOWN} more failures")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Tally:
    """What the finisher keeps of a task once its rows are on disk."""

    name: str
    error: str | None
    n_kept: int
    n_dropped: int
    drop_reasons: Counter[str]


class _Finisher:
    """Collects task results, persists each task's rows, and finishes each recording once
    all its tasks are done. Only counts are kept in memory, not rows."""

    def __init__(self, out: str, outcomes: list[ScanOutcome]) -> None:
        self._out = out
        self._outcomes = {o.record.recording_id: o for o in outcomes}
        self._tallies: dict[str, list[_Tally]] = {}
        self.finished: list[RecordingRecord] = []
        self.drop_reasons: Counter[str] = Counter()

    def add(self, task: TaskSpec, result: TaskResult) -> None:
        """Take the result of a task run now: its rows are persisted, marking it done."""
        if result.error is None:
            work.write_task_part(self._out, task.name, result.records)
        self._collect(task, result)

    def add_resumed(self, task: TaskSpec, part_url: str) -> None:
        """Take a task an earlier, interrupted run finished, from its rows on disk."""
        records = work.read_task_part(part_url)
        self._collect(task, TaskResult(task.name, task.recording_id, None, records))

    def _collect(self, task: TaskSpec, result: TaskResult) -> None:
        tallies = self._tallies.setdefault(task.recording_id, [])
        tallies.append(
            _Tally(result.name, result.error, result.n_kept, result.n_dropped, result.drop_reasons)
        )
        if len(tallies) == task.n_parts:
            self._finish(self._outcomes[task.recording_id], self._tallies.pop(task.recording_id))

    def _finish(self, outcome: ScanOutcome, tallies: list[_Tally]) -> None:
        record = outcome.record
        errors = sorted((t.name, t.error) for t in tallies if t.error is not None)
        if errors:
            record = dataclasses.replace(record, status=RECORDING_STATUS_FAILED, error=errors[0][1])
            logger.warning("%s", record.error)
            work.remove_outputs(self._out, {record.recording_id})
        else:
            for tally in tallies:
                self.drop_reasons.update(tally.drop_reasons)
            record = dataclasses.replace(
                record,
                n_segments_kept=sum(t.n_kept for t in tallies),
                n_segments_dropped=sum(t.n_dropped for t in tallies),
            )
        self.finished.append(record)


def _scan(found: list[FoundFile], config: IngestConfig, out: str, redo: bool) -> list[ScanOutcome]:
    known = known_recordings(out)
    repair = set() if redo else recordings_to_repair(out, known)
    known_paths = {r.path: r for r in known.values()}
    with ThreadPoolExecutor(max_workers=config.job.scan_threads) as pool:
        outcomes = pool.map(lambda f: scan_file(f, config, known, known_paths, redo, repair), found)
        return set_aside_duplicates(list(track(outcomes, len(found), "files", "scan")))


def run_ingest(
    inputs: list[str],
    out: str,
    config: IngestConfig,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    force: bool = False,
) -> IngestSummary:
    """Ingest recordings into `OUT/shards/` and `OUT/catalog/`.

    Args:
        inputs: folders, globs or files, local paths or fsspec URLs.
        out: the output root (path or URL).
        config: the ingest settings.
        workers: worker processes of the local Dask cluster (None: one per core).
        scheduler: address of a running Dask scheduler to use instead of a local cluster.
        force: accept output-shaping settings that differ from the output's, and
            process every recording found again.

    Returns:
        What the run did. Bad files are counted in `n_failed`, never raised.

    Raises:
        SonotypeError: an input does not exist, the scheduler cannot be reached, or an
            existing catalog breaks the contract.
        OutputConflictError: the output was made with other settings (without `force`).
        OutputLockedError: another run is writing the same output.
    """
    with output_lock(out, "ingest"):
        return _ingest(inputs, out, config, workers, scheduler, force)


def _ingest(
    inputs: list[str],
    out: str,
    config: IngestConfig,
    workers: int | None,
    scheduler: str | None,
    force: bool,
) -> IngestSummary:
    began = time.perf_counter()
    logger.info(
        "ingest %s → %s: %d Hz, %g s segments, channels %s",
        " ".join(inputs),
        out,
        config.resample.sample_rate,
        config.segment.length_s,
        config.channels.policy,
    )
    logger.debug("ingest config:\n%s", dump_config(config))
    check_and_save(out, config, force)
    work.remove_temporaries(OutputLayout(out).shards_dir)
    work.remove_temporaries(OutputLayout(out).catalog_dir)
    work.remove_temporaries(work.work_dir(out))
    found = discover(inputs, config.discover)
    outcomes = _scan(found, config, out, redo=force)
    for outcome in outcomes:
        if outcome.record.status == RECORDING_STATUS_FAILED and not outcome.skipped:
            logger.warning("%s", outcome.record.error)
    to_process = [o for o in outcomes if o.tasks]
    # Earlier versions of the files about to be redone: their shards and parts go first.
    work.remove_outputs(out, {o.previous.recording_id for o in to_process if o.previous})
    finisher = _Finisher(out, to_process)
    finished_tasks = work.finished_tasks(out)
    pending = []
    for outcome in to_process:
        for task in outcome.tasks:
            if task.name in finished_tasks:
                finisher.add_resumed(task, finished_tasks[task.name])
            else:
                pending.append(task)
    if pending:
        pending.sort(key=lambda t: t.audio_s, reverse=True)
        with dask_client(workers, scheduler) as client:
            run_tasks(client, pending, config, out, finisher.add)
    new = [o.record for o in outcomes if not o.tasks and not o.skipped] + finisher.finished
    consolidate(out, new)
    return _summary(found, outcomes, finisher, time.perf_counter() - began)


def _summary(
    found: list[FoundFile], outcomes: list[ScanOutcome], finisher: _Finisher, wall_s: float
) -> IngestSummary:
    records = [o.record for o in outcomes if not o.tasks] + finisher.finished
    failed = [r for r in records if r.status == RECORDING_STATUS_FAILED]
    return IngestSummary(
        n_found=len(found),
        n_ignored=sum(o.record.status == RECORDING_STATUS_IGNORED for o in outcomes),
        n_skipped=sum(o.skipped and o.record.status != RECORDING_STATUS_IGNORED for o in outcomes),
        n_processed=sum(1 for o in outcomes if o.tasks),
        n_ok=sum(r.status == RECORDING_STATUS_OK for r in records),
        n_failed=len(failed),
        n_segments_kept=sum(r.n_segments_kept or 0 for r in finisher.finished),
        n_segments_dropped=sum(r.n_segments_dropped or 0 for r in finisher.finished),
        drop_reasons=dict(finisher.drop_reasons),
        audio_s=sum(r.duration_s or 0.0 for r in finisher.finished),
        wall_s=wall_s,
        failures=sorted((r.path, r.error or "") for r in failed),
    )

"""Ingest: recordings → catalogs and resampled, segmented, quality-checked WebDataset shards.

`run_ingest` is the whole stage (the CLI calls only it); `process_task` is the per-task
work it maps on Dask, usable on its own.
"""

from ingest.process import TaskResult, process_task
from ingest.run import IngestSummary, run_ingest

__all__ = ["IngestSummary", "TaskResult", "process_task", "run_ingest"]

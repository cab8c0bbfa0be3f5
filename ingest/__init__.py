"""Ingest: recordings → catalogs and resampled, segmented, quality-checked WebDataset shards.

`run_ingest` is the whole stage (the CLI calls only it); `process_task` is the per-task
work it maps on Dask, usable on its own.

Both are imported on first use: a Dask worker unpickling `ingest.process.process_task`
imports this package first, and should not pay for the client's modules (the run, its
catalogs and pyarrow.compute), about 0.1 s per worker start.
"""

from sonotype.lazy import lazy_attributes

__all__ = ["IngestSummary", "TaskResult", "process_task", "run_ingest"]

_HOMES = {
    "IngestSummary": "ingest.run",
    "run_ingest": "ingest.run",
    "TaskResult": "ingest.process",
    "process_task": "ingest.process",
}


__getattr__, __dir__ = lazy_attributes(__name__, _HOMES)

"""Ingest: recordings → catalogs and resampled, segmented, quality-checked WebDataset shards.

`run_ingest` is the whole stage (the CLI calls only it); `process_task` is the per-task
work it maps on Dask, usable on its own.

Both are imported on first use: a Dask worker unpickling `ingest.process.process_task`
imports this package first, and should not pay for the client's modules (the run, its
catalogs and pyarrow.compute), about 0.1 s per worker start.
"""

import importlib
from typing import Any

__all__ = ["IngestSummary", "TaskResult", "process_task", "run_ingest"]

_HOMES = {
    "IngestSummary": "ingest.run",
    "run_ingest": "ingest.run",
    "TaskResult": "ingest.process",
    "process_task": "ingest.process",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'ingest' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])

"""Training metrics to metrics.jsonl (the report's input), metrics.csv and TensorBoard; rank 0 only.

metrics.jsonl follows `sonotype.contracts` (METRIC_STEP, METRIC_SPLIT): one JSON object
per line, `{"step": 120, "split": "train", "loss/mel": 0.81, ..., "time_s": 95.2}`.
metrics.csv holds the same values in long form (`step,split,metric,value`), so that
columns never change as terms appear or disappear. Lines are appended and flushed as
they are written; on resume, records past the checkpoint's step (written by the run that
was killed after it) are dropped, so the files read as one uninterrupted run.

The run directory must be local (files are appended to).
"""

import csv
import json
import logging
import math
import os
import resource
import sys
from pathlib import Path

import torch

from sonotype.contracts import METRIC_SPLIT, METRIC_STEP, RunLayout
from sonotype.fsio import write_text_atomic

logger = logging.getLogger(__name__)

_CSV_HEADER = [METRIC_STEP, METRIC_SPLIT, "metric", "value"]


class MetricsLog:
    """Appends metric records to the run's files.

    Args:
        layout: the run directory's layout.
        tensorboard: also write TensorBoard event files.
        resume_step: the step of the checkpoint being resumed (records after it are
            dropped), or None for a new run.
    """

    def __init__(self, layout: RunLayout, tensorboard: bool, resume_step: int | None) -> None:
        self.layout = layout
        Path(layout.root).mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            _truncate_jsonl(layout.metrics, resume_step)
            _truncate_csv(layout.metrics_csv, resume_step)
        if not os.path.exists(layout.metrics_csv):
            write_text_atomic(layout.metrics_csv, ",".join(_CSV_HEADER) + "\n")
        self._writer = None
        if tensorboard:
            # Imported here: tensorboard costs a second or two to import.
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resume_step is None else resume_step + 1
            self._writer = SummaryWriter(layout.tensorboard_dir, purge_step=purge)
        self._warned: set[str] = set()

    def write(self, step: int, split: str, values: dict[str, float]) -> None:
        """Append one record.

        Args:
            step: the optimizer step.
            split: "train" or "val".
            values: metric name → value; non-finite values are left out (JSON has no
                NaN), with one warning per metric.
        """
        finite = {}
        for key, value in values.items():
            if math.isfinite(value):
                finite[key] = float(value)
            elif key not in self._warned:
                self._warned.add(key)
                logger.warning("step %d: %s is %s; not logged", step, key, value)
        record = {METRIC_STEP: step, METRIC_SPLIT: split, **finite}
        with open(self.layout.metrics, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        with open(self.layout.metrics_csv, "a", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            for key, value in finite.items():
                writer.writerow([step, split, key, repr(value)])
        if self._writer is not None:
            for key, value in finite.items():
                if key != "time_s":
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()

    def close(self) -> None:
        """Close the TensorBoard writer."""
        if self._writer is not None:
            self._writer.close()


def read_metrics(path: str) -> list[dict]:
    """Every record of a metrics.jsonl file, in order."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _truncate_jsonl(path: str, last_step: int) -> None:
    if not os.path.exists(path):
        return
    kept = [
        line
        for line in Path(path).read_text(encoding="utf-8").splitlines(keepends=True)
        if line.strip() and json.loads(line)[METRIC_STEP] <= last_step
    ]
    write_text_atomic(path, "".join(kept))


def _truncate_csv(path: str, last_step: int) -> None:
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [rows[0], *(row for row in rows[1:] if int(row[0]) <= last_step)]
    lines = [",".join(row) for row in kept]
    write_text_atomic(path, "\n".join(lines) + "\n")


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory so far, MiB: allocated tensors on a GPU, the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10

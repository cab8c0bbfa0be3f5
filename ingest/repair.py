"""Recordings whose catalog rows or shards were lost, so that a plain re-run redoes them.

A recording the recordings catalog lists as `ok` owns `n_segments_kept +
n_segments_dropped` rows of `segments.parquet`, and every shard its kept rows name must
exist. Every ingest checks this before scanning, cheaply: one streamed read of two
columns of the segments catalog and one listing of `shards/`. A recording that fails
it is redone as if its file had changed (its old shards and rows are replaced):

- `segments.parquet` missing: every such recording;
- `segments.parquet` unreadable: the same, and the damaged file is kept aside as
  `segments.parquet.damaged-<UTC time>` (never deleted) so that the new catalog is
  written afresh;
- too few or too many rows (a run killed between the two catalog writes, or a file
  edited by hand), or a shard that is gone.

Altered bytes inside a shard are not found here: `sonotype shards verify` reads every
sample for that.
"""

import datetime as dt
import logging
from collections import Counter

import pyarrow as pa

from ingest.records import RecordingRecord
from shards.catalog import iter_segments
from shards.verify import shard_files
from sonotype.contracts import RECORDING_STATUS_OK, OutputLayout
from sonotype.errors import SonotypeError
from sonotype.fsio import exists, url_to_fs

logger = logging.getLogger(__name__)


def recordings_to_repair(out: str, known: dict[str, RecordingRecord]) -> set[str]:
    """The ids of `known` (the recordings catalog's rows) to redo; see the module docstring."""
    owning = {
        rid: record
        for rid, record in known.items()
        if record.status == RECORDING_STATUS_OK
        and (record.n_segments_kept or 0) + (record.n_segments_dropped or 0) > 0
    }
    if not owning:
        return set()
    layout = OutputLayout(out)
    if not exists(layout.segments):
        logger.warning(
            "%s is missing: the %d recordings it listed are processed again",
            layout.segments,
            len(owning),
        )
        return set(owning)
    rows: Counter[str] = Counter()
    shards: dict[str, set[str]] = {}
    try:
        for batch in iter_segments(out, ["recording_id", "shard"]):
            ids, names = batch.column(0).to_pylist(), batch.column(1).to_pylist()
            rows.update(ids)
            for rid, shard in zip(ids, names, strict=True):
                if shard is not None:
                    shards.setdefault(shard, set()).add(rid)
    except (SonotypeError, pa.ArrowInvalid) as error:
        # the file's content is broken; an I/O error (a passing NFS fault) is not damage
        # and propagates, so that a re-run does not redo every recording for it
        aside = _set_aside(layout.segments)
        logger.warning(
            "%s is unreadable (%s); kept as %s, and the %d recordings it listed are "
            "processed again",
            layout.segments,
            error,
            aside,
            len(owning),
        )
        return set(owning)
    damaged = {
        rid
        for rid, record in owning.items()
        if rows[rid] != (record.n_segments_kept or 0) + (record.n_segments_dropped or 0)
    }
    present = set(shard_files(layout.shards_dir))
    for shard, rids in shards.items():
        if shard not in present:
            damaged |= rids & owning.keys()
    if damaged:
        logger.warning(
            "%d recordings miss catalog rows or shards and are processed again: %s",
            len(damaged),
            ", ".join(sorted(damaged)[:5]) + (" ..." if len(damaged) > 5 else ""),
        )
    return damaged


def _set_aside(url: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = f"{url}.damaged-{stamp}"
    fs, path = url_to_fs(url)
    fs.mv(path, url_to_fs(aside)[1])
    return aside

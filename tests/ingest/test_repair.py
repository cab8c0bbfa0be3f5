"""A plain re-run of ingest repairs lost catalog rows and shards (no --force needed)."""

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import ingest
from sonotype.config.ingest import IngestConfig
from tests.audio_factory import AudioFactory, noise
from tests.ingest.helpers import catalog_rows, read_shards, short_config

pytestmark = pytest.mark.faults


def _ingest(root: Path, out: Path, config: IngestConfig, scheduler: str):
    return ingest.run_ingest([str(root)], str(out), config, scheduler=scheduler)


def _damage(out: Path, how: str) -> None:
    segments = out / "catalog" / "segments.parquet"
    if how == "segments_deleted":
        segments.unlink()
    elif how == "segments_garbled":
        segments.write_bytes(b"PAR1 this is not a parquet file")
    elif how == "rows_lost":  # e.g. a run killed between the two catalog writes
        table = pq.read_table(segments)
        pq.write_table(table.slice(0, table.num_rows - 1), segments)
    elif how == "shard_deleted":
        sorted((out / "shards").rglob("*.tar"))[0].unlink()


@pytest.mark.parametrize(
    ("how", "redone"),
    [("segments_deleted", 3), ("segments_garbled", 3), ("rows_lost", 1), ("shard_deleted", 1)],
)
def test_a_rerun_redoes_only_the_damaged_recordings(
    audio_factory: AudioFactory, dask_scheduler: str, tmp_path: Path, how: str, redone: int
):
    for day in (1, 2, 3):
        audio_factory.write(f"S/2024010{day}_000000.wav", noise(2.0, 16000, seed=day), 16000)
    config = short_config()
    reference, out = tmp_path / "reference", tmp_path / "out"
    _ingest(audio_factory.root, reference, config, dask_scheduler)
    _ingest(audio_factory.root, out, config, dask_scheduler)
    _damage(out, how)

    summary = _ingest(audio_factory.root, out, config, dask_scheduler)
    assert (summary.n_processed, summary.n_skipped) == (redone, 3 - redone)
    for name, key in (("recordings", "recording_id"), ("segments", "key")):
        # a redone recording's rows come after the others', as a changed file's do
        assert sorted(catalog_rows(out, name), key=lambda row: row[key]) == catalog_rows(
            reference, name
        )
    repaired, expected = read_shards(out), read_shards(reference)
    assert sorted(repaired) == sorted(expected)
    for key, (samples, meta) in expected.items():
        np.testing.assert_array_equal(repaired[key][0], samples)
        assert repaired[key][1] == meta
    kept_aside = list((out / "catalog").glob("segments.parquet.damaged-*"))
    assert len(kept_aside) == (how == "segments_garbled")
    # repaired for good: the next run skips everything
    assert _ingest(audio_factory.root, out, config, dask_scheduler).n_processed == 0

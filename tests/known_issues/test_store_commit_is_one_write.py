"""Regression: a feature store's commit wrote `zarr.json` once per attribute.

`FeatureStore.append` committed with `group.attrs.update({n_frames, n_segments, shards})`;
zarr's `Attributes` is a MutableMapping, so that is three writes of the group's
`zarr.json`. An encode killed between them (found by the SIGKILL test of
tests/training/test_encode_dask.py) left `n_segments` counting a shard that `shards`
did not list, and the resumed run appended that shard a second time.
"""

import numpy as np
import zarr.storage._local as local_store

from analysis.store import open_store
from tests.analysis.synthetic import append, blob_centres, make_batch, write_store
from tests.analysis.test_store import START


def test_a_commit_killed_after_its_first_metadata_write_is_all_or_nothing(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    centres = blob_centres(3, 6)
    first, second = (make_batch(centres, 4, 7, rng, START, prefix=p) for p in ("b0", "b1"))
    url = str(tmp_path / "features.zarr")
    store = write_store(url, [first], frames_per_chunk=16, segments_per_chunk=4)
    group_metadata = tmp_path / "features.zarr" / "zarr.json"
    writes = []
    original = local_store._put

    def dies_at_a_second_write(path, value, exclusive=False):
        if path == group_metadata:
            writes.append(path)
            if len(writes) > 1:
                # Killed between two writes of one commit (an OSError rather than a
                # KeyboardInterrupt, which zarr's event loop thread does not pass on).
                raise OSError("killed between two writes of one commit")
        return original(path, value, exclusive)

    # zarr's LocalStore writes every object through this function (temporary file, rename).
    monkeypatch.setattr(local_store, "_put", dies_at_a_second_write)
    append(store, second)
    monkeypatch.undo()
    assert len(writes) == 1
    reopened = open_store(url)
    assert (reopened.n_segments, reopened.shards) == (8, ["b0-0000.tar", "b1-0000.tar"])

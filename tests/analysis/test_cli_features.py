"""`sonotype features verify`, and every reader refusing a store that lost a chunk."""

import datetime as dt
import os

import numpy as np
import pytest

from sonotype.cli.main import main
from sonotype.contracts import EMBEDDINGS
from tests.analysis.synthetic import blob_centres, make_batch, write_store

pytestmark = pytest.mark.faults

START = dt.datetime(2024, 3, 15, 5, 0, tzinfo=dt.UTC)


def test_a_lost_chunk_is_found_and_no_reader_uses_it(tmp_path, capsys):
    out = tmp_path / "out"
    url = str(out / "features.zarr")
    rng = np.random.default_rng(2)
    batches = [make_batch(blob_centres(2, 4), 10, 20, rng, START, prefix=p) for p in ("a", "b")]
    write_store(url, batches, frames_per_chunk=100)
    assert main(["-q", "features", "verify", str(out)]) == 0

    os.remove(os.path.join(url, EMBEDDINGS, "c", "2", "0"))  # frames 200-299: shard b
    assert main(["-q", "features", "verify", str(out)]) == 1
    err = capsys.readouterr().err
    assert "missing chunk embeddings/c/2/0 (frames 200-299)" in err
    assert "damaged shards (1): b-0000.tar" in err

    args = ["-q", "cluster", "--features", url, "--k", "2", "--workers", "1"]
    assert main(args) == 2
    assert "1 chunk(s) of committed rows missing: embeddings/c/2/0" in capsys.readouterr().err
    assert not (out / "clusters" / "default").exists()

    assert main(["-q", "report", str(out)]) == 2
    assert "embeddings/c/2/0" in capsys.readouterr().err
    assert not (out / "report" / "index.html").exists()

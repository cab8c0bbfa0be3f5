"""`sonotype cluster` in-process: fit, update with the saved settings, errors as exit code 2."""

import datetime as dt
import errno

import numpy as np
import pytest

from analysis import load_clustering
from analysis.store import open_store
from sonotype.cli.main import main
from sonotype.output_lock import output_lock
from tests.analysis.synthetic import append, blob_centres, make_batch, write_store

START = dt.datetime(2024, 3, 15, 5, 0, tzinfo=dt.UTC)


def test_cluster_then_update_from_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(5)
    centres = blob_centres(3, 4)
    url = str(tmp_path / "out" / "features.zarr")
    write_store(url, [make_batch(centres, 40, 20, rng, START)], frames_per_chunk=100)
    settings = ["normalise=none", "k_selection=[2, 3]", "reservoir_size=300", "block_rows=200"]
    overrides = [part for setting in settings for part in ("--set", setting)]
    assert main(["-q", "cluster", "--features", url, "--k", "3", "--workers", "1", *overrides]) == 0

    append(open_store(url, mode="r+"), make_batch(centres, 10, 20, rng, START, prefix="y2"))
    # --update takes k, level and normalise from the saved config.yaml
    assert main(["-q", "cluster", "--features", url, "--update", "--workers", "1"]) == 0
    clustering = load_clustering(str(tmp_path / "out" / "clusters" / "default"))
    assert (clustering.version, clustering.k, clustering.model["normalise"]) == (2, 3, "none")
    assert clustering.n_rows == 1000

    assert main(["-q", "cluster", "--features", url, "--update", "--k", "4"]) == 2
    assert "k=4 (saved 3)" in capsys.readouterr().err
    assert main(["-q", "cluster", "--features", str(tmp_path / "none.zarr"), "--k", "3"]) == 2
    assert "no feature store" in capsys.readouterr().err


@pytest.mark.faults
def test_a_clustering_being_written_is_refused_and_another_name_is_not(tmp_path, capsys):
    rng = np.random.default_rng(6)
    url = str(tmp_path / "out" / "features.zarr")
    write_store(url, [make_batch(blob_centres(2, 4), 20, 20, rng, START)], frames_per_chunk=100)
    args = ["-q", "cluster", "--features", url, "--k", "2", "--workers", "1"]
    with output_lock(tmp_path / "out" / "clusters", "cluster", "default"):
        assert main(args) == 2
        assert "is being written by sonotype cluster" in capsys.readouterr().err
        assert not (tmp_path / "out" / "clusters" / "default").exists()
        assert main([*args, "--name", "other"]) == 0
    assert main(args) == 0
    assert load_clustering(str(tmp_path / "out" / "clusters" / "default")).k == 2


@pytest.mark.faults
def test_a_full_disk_ends_the_command_with_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(7)
    url = str(tmp_path / "out" / "features.zarr")
    write_store(url, [make_batch(blob_centres(2, 4), 20, 20, rng, START)], frames_per_chunk=100)

    def full(url: str, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", url)

    monkeypatch.setattr("analysis.clusters_io.write_text_atomic", full)
    assert main(["-q", "cluster", "--features", url, "--k", "2", "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "No space left on device. The run stopped" in err[0]
    assert "clusters/default" in err[0]

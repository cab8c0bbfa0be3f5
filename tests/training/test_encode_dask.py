"""encode_features on Dask: the same store for any number of workers, bounded work in flight,
and a real SIGKILL at a random point followed by a re-run gives the uninterrupted store."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from dask.distributed import LocalCluster

import sonotype.dask_cluster
import training.encode
from analysis.store import open_store
from sonotype.config.encode import EncodeConfig
from sonotype.contracts import OutputLayout
from sonotype.errors import SonotypeError
from tests.training.encode_helpers import save_tiny_tokenizer, snapshot, write_out
from training import encode_features

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer") / "tokenizer.pt")


def test_one_worker_two_workers_and_this_process_make_the_same_store(
    checkpoint, tmp_path, monkeypatch
):
    sizes, tails = (3, 1, 4, 2, 2, 3), {2: 0.37, 5: 0.5, 9: 0.8}
    # One shard in flight per worker: shards finish out of order and wait for their turn.
    config = EncodeConfig(batch_size=2, shards_in_flight_per_worker=1)
    here = write_out(tmp_path / "here", sizes, durations=tails)
    encode_features(checkpoint, here.out, config=config, workers=0)

    seen_in_flight = []
    original = training.encode.encode_on_dask

    def watched(client, jobs, settings, plugin, window, on_done):
        for result in original(client, jobs, settings, plugin, window, on_done):
            known = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            seen_in_flight.append((known, window))
            yield result

    monkeypatch.setattr(training.encode, "encode_on_dask", watched)
    one = write_out(tmp_path / "one", sizes, durations=tails)
    summary = encode_features(checkpoint, one.out, config=config, workers=1)
    assert (summary.workers, summary.n_shards_encoded) == (1, 6)

    two = write_out(tmp_path / "two", sizes, durations=tails)
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        summary = encode_features(
            checkpoint, two.out, config=config, scheduler=cluster.scheduler_address
        )
    assert summary.workers == 2

    expected = snapshot(OutputLayout(here.out).features)
    snapshot(OutputLayout(one.out).features).assert_equal(expected)
    snapshot(OutputLayout(two.out).features).assert_equal(expected)
    # Never more shards on the cluster than the window (1 per worker) allows.
    assert len(seen_in_flight) == 12
    assert all(known <= window for known, window in seen_in_flight)
    assert {window for _, window in seen_in_flight} == {1, 2}


def test_an_unreachable_scheduler_is_a_clear_error_and_commits_nothing(
    checkpoint, tmp_path, monkeypatch
):
    fake = write_out(tmp_path / "out", (1,))
    monkeypatch.setattr(sonotype.dask_cluster, "_CONNECT_TIMEOUT_S", 1)
    with pytest.raises(SonotypeError, match=r"cannot reach the Dask scheduler at tcp://127"):
        encode_features(checkpoint, fake.out, scheduler="tcp://127.0.0.1:9")
    assert open_store(OutputLayout(fake.out).features).n_frames == 0


def _committed_segments(url: str) -> int:
    try:
        return open_store(url).n_segments
    except (SonotypeError, ValueError, OSError):  # not created yet, or caught mid-rename
        return 0


def _kill_during(command: list[str], url: str, delay_s: float) -> int:
    """Run `command`, SIGKILL it `delay_s` after its first commit, check its workers go.

    Returns:
        The exit code (negative: killed by the signal; 0: it finished first).
    """
    env = dict(os.environ, SONOTYPE_PROGRESS="0")
    process = subprocess.Popen(
        command, cwd=REPO, env=env, start_new_session=True, stderr=subprocess.DEVNULL
    )
    before = _committed_segments(url)
    try:
        deadline = time.monotonic() + 120
        while _committed_segments(url) == before and process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError("the encode never committed a shard")
            time.sleep(0.02)
        time.sleep(delay_s)
        try:
            children = psutil.Process(process.pid).children(recursive=True)
        except psutil.NoSuchProcess:  # it finished first (and was reaped by poll)
            children = []
        process.send_signal(signal.SIGKILL)  # a no-op on a process already reaped
        process.wait()
        # Dask's worker processes exit when their parent's pipe closes.
        _, alive = psutil.wait_procs(children, timeout=30)
        for leftover in alive:  # only processes this test started
            leftover.kill()
        assert alive == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode


def test_a_run_killed_at_a_random_point_resumes_to_the_uninterrupted_store(checkpoint, tmp_path):
    sizes, tails = (3,) * 16, {i: 2.5 for i in range(0, 48, 7)}
    whole = write_out(tmp_path / "whole", sizes, duration_s=4.0, durations=tails)
    duration_s = encode_features(checkpoint, whole.out, workers=0).encode_s
    fake = write_out(tmp_path / "out", sizes, duration_s=4.0, durations=tails)
    url = OutputLayout(fake.out).features
    command = [
        sys.executable, "-m", "sonotype", "encode", "--checkpoint", str(checkpoint),
        "--shards", fake.out, "--workers", "1",
    ]  # fmt: skip
    rng = random.Random(20261125)
    killed = []
    for _ in range(2):
        # Somewhere in the first half of the work left, as fast as this process did it.
        left = 1 - len(open_store(url).shards) / len(sizes) if killed else 1
        killed.append(_kill_during(command, url, rng.uniform(0.0, duration_s * left / 2)))
        store = open_store(url)
        n = len(store.shards)
        # Whole shards only, in order, each once, and nothing past them is read.
        assert store.shards == fake.shards[:n]
        assert store.read_segments().column("key").to_pylist() == [
            key for shard in fake.shards[:n] for key in fake.keys[shard]
        ]
    assert killed[0] == -signal.SIGKILL  # the first run was really cut short
    finished = subprocess.run(command, cwd=REPO, env=dict(os.environ, SONOTYPE_PROGRESS="0"))
    assert finished.returncode == 0
    snapshot(url).assert_equal(snapshot(OutputLayout(whole.out).features))

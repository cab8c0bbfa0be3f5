"""A real `sonotype ingest` process killed with SIGKILL, then run again, ends exactly like a run
that was never interrupted: the same segment keys, catalogs and audio samples."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ingest
from ingest import work
from sonotype.config.ingest import IngestConfig
from sonotype.config.load import load_config
from tests.audio_factory import AudioFactory, noise
from tests.ingest.helpers import catalog_rows, read_shards

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
# 6 files of 4 s cut into 1 s tasks: 24 tasks, slowed by small blocks so that a kill
# lands while the run is still busy.
OVERRIDES = [
    "segment.length_s=0.5",
    "job.max_task_s=1.0",
    "job.block_s=0.05",
    "resample.quality=VHQ",
]
_WAIT_S = 120


def _kill_after(
    out: Path, n_tasks: int, log: Path, inputs: Path, how: signal.Signals = signal.SIGKILL
) -> int:
    """Start `sonotype ingest` and stop it once `n_tasks` are done: SIGKILL to its whole
    process group, or another signal to the command alone (as a batch scheduler sends
    SIGTERM). Returns its exit code."""
    sets = [argument for override in OVERRIDES for argument in ("--set", override)]
    command = [
        sys.executable,
        "-m",
        "sonotype",
        "ingest",
        str(inputs),
        "--out",
        str(out),
        "--workers",
        "2",
        *sets,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SONOTYPE_PROGRESS": "0"}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + _WAIT_S
            while len(work.finished_tasks(str(out))) < n_tasks:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"ingest ended before {n_tasks} tasks: {log.read_text()}")
                time.sleep(0.01)
        finally:
            if how == signal.SIGKILL:
                # The group: the CLI, its Dask scheduler and its workers, all at once.
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.send_signal(how)
            code = process.wait(timeout=_WAIT_S)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # anything the command left behind
    return code


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The input folder, written once for both kill points."""
    factory = AudioFactory(tmp_path_factory.mktemp("kill-input"))
    for day in range(1, 7):
        factory.write(f"S/2024010{day}_000000.wav", noise(4.0, 44100, seed=day), 44100)
    return factory.root


@pytest.fixture(scope="module")
def uninterrupted(
    recordings: Path, dask_scheduler: str, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The output of a run that nothing interrupted."""
    out = tmp_path_factory.mktemp("uninterrupted")
    config = load_config(IngestConfig, None, OVERRIDES)
    ingest.run_ingest([str(recordings)], str(out), config, scheduler=dask_scheduler)
    return out


@pytest.mark.parametrize("n_tasks", [1, 12])
def test_sigkill_then_rerun_equals_an_uninterrupted_run(
    recordings: Path, uninterrupted: Path, dask_scheduler: str, tmp_path: Path, n_tasks: int
):
    config = load_config(IngestConfig, None, OVERRIDES)
    out = tmp_path / "killed"
    _kill_after(out, n_tasks, tmp_path / "killed.log", recordings)
    assert not (out / "catalog" / "segments.parquet").exists(), "the kill came after the run"
    summary = ingest.run_ingest([str(recordings)], str(out), config, scheduler=dask_scheduler)
    assert summary.n_ok == 6

    expected = catalog_rows(uninterrupted, "segments")
    assert len(expected) == 6 * 8
    assert catalog_rows(out, "segments") == expected
    assert catalog_rows(out, "recordings") == catalog_rows(uninterrupted, "recordings")
    resumed, reference = read_shards(out), read_shards(uninterrupted)
    assert sorted(resumed) == sorted(reference) == sorted(r["key"] for r in expected)
    for key, (samples, _) in reference.items():
        np.testing.assert_array_equal(resumed[key][0], samples)
    assert list(out.rglob("*.tmp-*")) == []


def test_sigterm_stops_with_a_message_and_a_rerun_completes(
    recordings: Path, uninterrupted: Path, dask_scheduler: str, tmp_path: Path
):
    # Issue 16, failure 6: ingest exited silently on SIGTERM.
    out, log = tmp_path / "terminated", tmp_path / "terminated.log"
    assert _kill_after(out, 1, log, recordings, signal.SIGTERM) == 143
    assert "sonotype ingest: terminated; run it again to resume" in log.read_text()
    assert not (out / ".sonotype-ingest.lock").exists()
    config = load_config(IngestConfig, None, OVERRIDES)
    ingest.run_ingest([str(recordings)], str(out), config, scheduler=dask_scheduler)
    assert catalog_rows(out, "segments") == catalog_rows(uninterrupted, "segments")

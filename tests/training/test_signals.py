"""SIGTERM: a real `sonotype train` process checkpoints after its current step and exits 0."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import training
from sonotype.contracts import RunLayout
from tests.training.trainer_config import FAST, tiny_train_config
from training.state import list_checkpoints, read_training_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _train_steps(metrics: Path) -> int:
    if not metrics.exists():
        return 0
    lines = metrics.read_text().splitlines()
    return sum(json.loads(line)["split"] == "train" for line in lines if line.strip())


def test_sigterm_checkpoints_and_exits_cleanly_then_resume_goes_on(soundscape_out, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [
        *FAST,
        "optim.max_steps=500",
        "checkpoint.every_steps=1000",
        "validation.every_steps=0",
    ]
    command = [
        sys.executable,
        "-m",
        "sonotype",
        "train",
        "--shards",
        soundscape_out,
        "--run",
        str(run_dir),
    ]
    for override in overrides:
        command += ["--set", override]
    env = {**os.environ, "SONOTYPE_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        metrics = Path(RunLayout(str(run_dir)).metrics)
        deadline = time.monotonic() + 120
        while _train_steps(metrics) < 2 and process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError("the training process logged no steps in 120 s")
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "stopping after step" in stderr
    assert "SIGTERM" in stderr

    checkpoints = list_checkpoints(RunLayout(str(run_dir)))
    assert len(checkpoints) == 1
    step, path = checkpoints[0]
    assert 2 <= step < 500
    assert step == _train_steps(metrics)  # the step in progress was finished, then saved
    assert read_training_checkpoint(path)["step"] == step

    # The checkpoint resumes (here to one more step).
    config = tiny_train_config("optim.max_steps=500", "validation.every_steps=0")
    result = training.train(
        config, shards=soundscape_out, run_dir=str(run_dir), resume=True, until_step=step + 1
    )
    assert result.step == step + 1

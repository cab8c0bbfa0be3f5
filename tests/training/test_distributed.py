"""DDP: two CPU processes (gloo) train in lock step and end with identical weights."""

import socket
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.multiprocessing as mp

import training
from sonotype.contracts import RunLayout
from tests.training.trainer_config import tiny_train_config
from training.checkpoint import read_checkpoint_file
from training.metrics_log import read_metrics
from training.state import weights_digest

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_main(rank: int, out: str, run_dir: str, port: int, results: str) -> None:
    """One torchrun-like rank: the environment torchrun would set, then `training.train`."""
    import os

    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(WORLD_SIZE),
        }
    )
    torch.set_num_threads(1)
    config = tiny_train_config(
        "optim.accumulation_steps=2", "codebook.respawn_every_steps=1", "optim.max_steps=3"
    )
    result = training.train(config, shards=out, run_dir=run_dir)
    Path(results, f"rank{rank}.txt").write_text(f"{result.weights_digest} {result.step}")


def test_two_gloo_ranks_finish_with_identical_weights(soundscape_out, tmp_path):
    run_dir = tmp_path / "run"
    mp.spawn(
        _rank_main,
        args=(soundscape_out, str(run_dir), _free_port(), str(tmp_path)),
        nprocs=WORLD_SIZE,
        join=True,
    )
    digests = [(tmp_path / f"rank{rank}.txt").read_text().split() for rank in range(2)]
    assert digests[0] == digests[1]
    assert digests[0][1] == "3"

    # The checkpoint holds those weights and one reader position and RNG state per rank.
    layout = RunLayout(str(run_dir))
    checkpoint = read_checkpoint_file(layout.checkpoint(3))
    assert len(checkpoint["data"]) == len(checkpoint["rng"]) == WORLD_SIZE
    assert [position["identity"]["rank"] for position in checkpoint["data"]] == [0, 1]
    saved = training.load_models(layout.checkpoint(3))
    assert weights_digest(SimpleNamespace(**vars(saved))) == digests[0][0]
    # Only rank 0 wrote metrics: one record per step, no duplicates.
    records = read_metrics(layout.metrics)
    assert [r["step"] for r in records if r["split"] == "train"] == [1, 2, 3]

"""Training state for exact resume: models, optimizers, scaler, step, RNG states, reader positions.

A training checkpoint is a sonotype tokenizer checkpoint (`training.checkpoint`: model
config, generator, discriminators) with more top-level keys:

    "train_state": 1, "step", "elapsed_s", "train_config",
    "optimizers": {"generator": ..., "discriminator": ...}, "scaler",
    "rng": [per rank: torch, cuda, numpy, python states],
    "data": [per rank: the training reader's position]

so `load_models` / `load_tokenizer` read it as a tokenizer too. Only tensors and plain
containers are stored (numpy's and Python's RNG states are converted), so it loads with
`torch.load(weights_only=True)`. The learning-rate schedule is a function of the step
(`training.schedule`) and has no state of its own. Files are
`RUN_DIR/checkpoints/step-NNNNNNNN.pt`, written atomically; the last `keep_last` are kept.
"""

import hashlib
import logging
import os
import random
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim import Optimizer

from sonotype.config.train import TrainConfig
from sonotype.contracts import RunLayout
from sonotype.errors import CheckpointMismatchError, ConfigError, OutputConflictError
from sonotype.fsio import TEMP_MARKER
from training.checkpoint import (
    load_state_checked,
    read_checkpoint_file,
    tokenizer_payload,
    unwrap,
    write_checkpoint_file,
)
from training.distributed import all_gather_objects, world_size

logger = logging.getLogger(__name__)

VERSION = 1
"""The `train_state` value this code writes and reads."""

_CHECKPOINT_NAME = re.compile(r"^step-(\d{8})\.pt$")


@dataclass
class TrainState:
    """Everything that changes during training.

    Attributes:
        config: the run's config (its `model` is the architecture saved).
        generator: the generator (possibly DDP-wrapped; saved unwrapped).
        discriminators: the discriminators (possibly DDP-wrapped).
        generator_optimizer: AdamW over the generator's parameters.
        discriminator_optimizer: AdamW over every discriminator's parameters.
        scaler: the GradScaler (disabled unless fp16).
        step: optimizer steps taken.
        elapsed_s: training seconds before this process started (earlier runs).
    """

    config: TrainConfig
    generator: nn.Module
    discriminators: nn.Module
    generator_optimizer: Optimizer
    discriminator_optimizer: Optimizer
    scaler: torch.amp.GradScaler
    step: int = 0
    elapsed_s: float = 0.0

    def state_dict(self, data_position: dict[str, Any], elapsed_s: float) -> dict[str, Any]:
        """The checkpoint payload; a collective call (every rank's RNG and reader position).

        Args:
            data_position: this rank's training reader position (`ShardLoader.state_dict`).
            elapsed_s: training seconds so far, this run and earlier ones.

        Returns:
            The payload; only rank 0 needs to write it.
        """
        payload = tokenizer_payload(
            self.config.model,
            self.generator,
            self.discriminators,
            extra={"step": self.step},
        )
        payload.update(
            {
                "train_state": VERSION,
                "step": self.step,
                "elapsed_s": elapsed_s,
                "train_config": self.config.model_dump(mode="json"),
                "optimizers": {
                    "generator": self.generator_optimizer.state_dict(),
                    "discriminator": self.discriminator_optimizer.state_dict(),
                },
                "scaler": self.scaler.state_dict(),
                "rng": all_gather_objects(capture_rng()),
                "data": all_gather_objects(data_position),
            }
        )
        return payload

    def load_state_dict(self, payload: dict[str, Any], rank: int, source: str) -> dict[str, Any]:
        """Restore models, optimizers, scaler, step and this rank's RNG states.

        Args:
            payload: a training checkpoint (`read_training_checkpoint`).
            rank: this process's rank (its RNG state and reader position are picked).
            source: the file, for messages.

        Returns:
            This rank's reader position, for `ShardLoader.load_state_dict`.

        Raises:
            CheckpointMismatchError: the weights do not fit, or the checkpoint was written
                by a different number of ranks.
        """
        saved_ranks = len(payload["data"])
        if saved_ranks != world_size():
            raise CheckpointMismatchError(
                f"{source}: written by a run of {saved_ranks} ranks; resume with the same "
                "number of processes (the readers' positions are per rank)"
            )
        load_state_checked(unwrap(self.generator), payload["generator"], source, "generator")
        load_state_checked(
            unwrap(self.discriminators), payload["discriminators"], source, "discriminator"
        )
        self.generator_optimizer.load_state_dict(payload["optimizers"]["generator"])
        self.discriminator_optimizer.load_state_dict(payload["optimizers"]["discriminator"])
        self.scaler.load_state_dict(payload["scaler"])
        self.step = int(payload["step"])
        self.elapsed_s = float(payload["elapsed_s"])
        restore_rng(payload["rng"][rank])
        return payload["data"][rank]


def weights_digest(state: Any) -> str:
    """SHA-256 over every weight and buffer of `state.generator` and `state.discriminators`."""
    digest = hashlib.sha256()
    for module in (unwrap(state.generator), unwrap(state.discriminators)):
        for key, tensor in module.state_dict().items():
            digest.update(key.encode("utf-8"))
            digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def capture_rng() -> dict[str, Any]:
    """This process's RNG states as tensors and plain data (torch, CUDA, numpy, Python)."""
    keys, position, has_gauss, gauss = np.random.get_state()[1:]
    version, python_state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "state": list(python_state), "gauss": python_gauss},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Set this process's RNG states from `capture_rng`'s output."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy_state["keys"].numpy().astype(np.uint32),
            numpy_state["position"],
            numpy_state["has_gauss"],
            numpy_state["gauss"],
        )
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["state"]), python_state["gauss"]))


def read_training_checkpoint(path: str) -> dict[str, Any]:
    """Read a training checkpoint (weights only).

    Raises:
        CheckpointMismatchError: unreadable, or a tokenizer checkpoint without training state.
    """
    payload = read_checkpoint_file(path)
    if not isinstance(payload, dict) or payload.get("train_state") != VERSION:
        raise CheckpointMismatchError(
            f"{path}: not a training checkpoint of this version (train_state {VERSION}); "
            "to start from model weights only, use --init-from"
        )
    return payload


def list_checkpoints(layout: RunLayout) -> list[tuple[int, str]]:
    """(step, path) of the run's finished checkpoints, oldest first."""
    if not os.path.isdir(layout.checkpoints_dir):
        return []
    found = []
    for name in os.listdir(layout.checkpoints_dir):
        match = _CHECKPOINT_NAME.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(layout.checkpoints_dir, name)))
    return sorted(found)


def checkpoints_to_resume(
    layout: RunLayout, resume: bool, init_from: bool
) -> list[tuple[int, str]]:
    """The run directory's checkpoints, checked against what the run was asked to do.

    Raises:
        ConfigError: both resume and init_from.
        CheckpointMismatchError: resume without a checkpoint.
        OutputConflictError: checkpoints exist and resume is False.
    """
    checkpoints = list_checkpoints(layout)
    if resume and init_from:
        raise ConfigError("--resume continues a run and --init-from starts one; give only one")
    if resume and not checkpoints:
        raise CheckpointMismatchError(f"{layout.checkpoints_dir}: no checkpoint to resume from")
    if checkpoints and not resume:
        raise OutputConflictError(
            f"{layout.root} already holds checkpoints (last: step {checkpoints[-1][0]}); "
            "add --resume to continue it, or choose a new run directory"
        )
    return checkpoints


def write_checkpoint(payload: dict[str, Any], layout: RunLayout, keep_last: int) -> str:
    """Write a checkpoint atomically, then remove all but the last `keep_last` (and leftovers
    of writes that were killed). Call on rank 0 only.

    Returns:
        The path written.
    """
    path = layout.checkpoint(payload["step"])
    write_checkpoint_file(payload, path)
    for _, old in list_checkpoints(layout)[:-keep_last]:
        os.remove(old)
    for name in os.listdir(layout.checkpoints_dir):
        if TEMP_MARKER in name:
            os.remove(os.path.join(layout.checkpoints_dir, name))
    logger.info("checkpoint %s", path)
    return path

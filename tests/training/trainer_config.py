"""Small training configs for the trainer tests: the tiny model on half-second crops."""

from typing import Any

from sonotype.config.load import CONFIGS_DIR, apply_overrides, read_yaml, validate_config
from sonotype.config.train import TrainConfig

FAST = [
    "data.crop_samples=12000",  # 0.5 s, 20 frames
    "data.batch_size=2",
    "data.crops_per_segment=2",
    "data.shuffle_buffer=8",
    "codebook.init_batches=4",
    "codebook.reservoir_size=1024",
    "codebook.kmeans_iters=5",
    "validation.every_steps=2",
    "validation.max_batches=2",
    "logging.every_steps=1",
    "logging.tensorboard=false",
    "checkpoint.every_steps=2",
    "losses.mel_only_warmup_steps=1",
    "optim.max_steps=4",
]
"""Overrides of configs/train/tiny.yaml that keep a step well under a second on one core."""


def tiny_train_config(*overrides: str, fast: bool = True) -> TrainConfig:
    """configs/train/tiny.yaml, with `FAST` (unless `fast` is False), then `overrides`."""
    data: dict[str, Any] = TrainConfig.expand_presets(
        read_yaml(CONFIGS_DIR / "train" / "tiny.yaml")
    )
    data = apply_overrides(data, [*(FAST if fast else []), *overrides])
    return validate_config(TrainConfig, data, "tiny.yaml (test)")

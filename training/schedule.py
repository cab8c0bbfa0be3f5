"""The learning-rate schedule: linear warm-up, then cosine decay to `min_lr_ratio` · lr.

A pure function of the step (nanoGPT's `get_lr`), set on every optimizer before each
step: nothing to save for resume. After warm-up it is the reference's curve
(`transformers.get_cosine_schedule_with_warmup`) when `min_lr_ratio` is 0; warm-up
starts at peak / (warmup_steps + 1) rather than 0, so that no step is taken at lr 0.
"""

import math

from torch.optim import Optimizer


def learning_rate(
    step: int, peak: float, warmup_steps: int, max_steps: int, min_lr_ratio: float
) -> float:
    """Learning rate for optimizer step `step` (0-based).

    Args:
        step: the step about to be taken.
        peak: the learning rate after warm-up.
        warmup_steps: steps of linear warm-up from 0.
        max_steps: the step at which the cosine reaches its floor.
        min_lr_ratio: the floor, as a fraction of `peak`.

    Returns:
        The learning rate.
    """
    if step < warmup_steps:
        return peak * (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, max_steps - warmup_steps))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return peak * (min_lr_ratio + (1.0 - min_lr_ratio) * cosine)


def set_learning_rate(optimizer: Optimizer, lr: float) -> None:
    """Set `lr` on every parameter group of `optimizer`."""
    for group in optimizer.param_groups:
        group["lr"] = lr

"""Ranks, world size and collectives, with single-process fallbacks (after encodec's `distrib.py`).

Under `torchrun` the environment names this process (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`,
`MASTER_ADDR`, `MASTER_PORT`); `init_distributed` joins the process group (NCCL on GPUs,
gloo on CPUs). Every helper here works unchanged in a single process, where the
collectives are no-ops, so the training loop has one code path.
"""

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from training.checkpoint import unwrap

logger = logging.getLogger(__name__)

__all__ = [
    "all_gather_objects",
    "all_gather_rows",
    "all_reduce_max",
    "all_reduce_sum",
    "any_rank",
    "barrier",
    "broadcast",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "local_rank",
    "mean_over_ranks",
    "no_sync",
    "quiet_unless_main",
    "rank",
    "shutdown_distributed",
    "unwrap",
    "world_size",
    "wrap_ddp",
]


def is_distributed() -> bool:
    """Whether this process belongs to an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def local_rank() -> int:
    """This process's rank on its machine (`LOCAL_RANK` from torchrun, else 0)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Whether this process does the run's side effects (logs, checkpoints): rank 0."""
    return rank() == 0


def init_distributed(device: torch.device) -> bool:
    """Join the process group torchrun describes, if any and not already joined.

    Args:
        device: this rank's device; CUDA ranks use NCCL, CPU ranks gloo.

    Returns:
        Whether this call created the process group (the caller then shuts it down).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
    logger.info("joined process group: rank %d of %d (%s)", rank(), world_size(), backend)
    return True


def shutdown_distributed() -> None:
    """Leave the process group (after the last collective)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(module: nn.Module, device: torch.device) -> nn.Module:
    """`module` wrapped in DistributedDataParallel when distributed, else `module` itself.

    Buffers are synced from rank 0 once, when wrapping, but not before every forward:
    the only buffers that change in training are the codebook's, and the trainer
    updates them identically on every rank from all-reduced statistics.
    """
    if not is_distributed():
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, forward_sync_buffers=False)


@contextlib.contextmanager
def no_sync(modules: list[nn.Module], enabled: bool) -> Iterator[None]:
    """Skip DDP's gradient all-reduce for the backward passes inside (gradient accumulation).

    Args:
        modules: the (possibly DDP-wrapped) modules whose backward passes run inside.
        enabled: skip the sync (every micro-batch but the last of an optimizer step).
    """
    with contextlib.ExitStack() as stack:
        if enabled:
            for module in modules:
                if isinstance(module, DistributedDataParallel):
                    stack.enter_context(module.no_sync())
        yield


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over ranks in place (a no-op in one process); returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Maximum of `tensor` over ranks in place (a no-op in one process); returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether `flag` is set on any rank (`flag` itself in one process, without a sync)."""
    if not is_distributed():
        return flag
    return bool(all_reduce_max(torch.tensor([float(flag)], device=device)))


def broadcast(tensor: torch.Tensor, source: int = 0) -> torch.Tensor:
    """Overwrite `tensor` with rank `source`'s, in place (a no-op in one process)."""
    if is_distributed():
        dist.broadcast(tensor, src=source)
    return tensor


def all_gather_objects(value: Any) -> list[Any]:
    """Every rank's `value` (picklable plain data), in rank order; `[value]` in one process."""
    if not is_distributed():
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def all_gather_rows(rows: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's `[n, D]` rows (same n on each rank) in rank order."""
    if not is_distributed():
        return rows
    parts = [torch.empty_like(rows) for _ in range(world_size())]
    dist.all_gather(parts, rows.contiguous())
    return torch.cat(parts)


def mean_over_ranks(values: dict[str, torch.Tensor], device: torch.device) -> dict[str, float]:
    """Scalars averaged over ranks (one all-reduce on `device`), as floats: a sync point.

    Every rank must pass the same keys.
    """
    keys = sorted(values)
    if not keys:
        return {}
    stacked = torch.stack([values[key].detach().float().reshape(()).to(device) for key in keys])
    stacked = all_reduce_sum(stacked) / world_size()
    return dict(zip(keys, stacked.tolist(), strict=True))


@contextlib.contextmanager
def quiet_unless_main(
    packages: tuple[str, ...] = ("sonotype", "shards", "training"),
) -> Iterator[None]:
    """Only warnings and errors from these packages' loggers on ranks other than 0, inside."""
    if is_main_process():
        yield
        return
    loggers = [logging.getLogger(name) for name in packages]
    levels = [each.level for each in loggers]
    for each in loggers:
        each.setLevel(max(logging.WARNING, each.getEffectiveLevel()))
    try:
        yield
    finally:
        for each, level in zip(loggers, levels, strict=True):
            each.setLevel(level)


def barrier() -> None:
    """Wait for every rank (a no-op in one process)."""
    if is_distributed():
        dist.barrier()

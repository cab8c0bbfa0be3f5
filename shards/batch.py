"""A batch of crops as the training loop sees it, and how decoded crops become one."""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from shards.stream import Crop


@dataclass
class Batch:
    """A batch of crops (or whole segments).

    Attributes:
        wav: float32 `[B, T]`; rows shorter than T are zero-padded at the end.
        lengths: int64 `[B]`, real samples of each row.
        offsets: int64 `[B]`, first sample of each row within its segment.
        keys: the segment key of each row.
        metadata: the segment row (catalog columns) of each row.
    """

    wav: torch.Tensor
    lengths: torch.Tensor
    offsets: torch.Tensor
    keys: list[str]
    metadata: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.keys)

    def pin_memory(self) -> "Batch":
        """A copy in pinned memory (called by the DataLoader when `pin_memory` is set)."""
        return replace(self, wav=self.wav.pin_memory())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        """The batch with its tensors on `device`."""
        return replace(
            self,
            wav=self.wav.to(device, non_blocking=non_blocking),
            lengths=self.lengths.to(device, non_blocking=non_blocking),
            offsets=self.offsets.to(device, non_blocking=non_blocking),
        )


@dataclass
class Delivery:
    """What a worker sends: a batch (None when only skips are left to report), the
    logical worker, its cursor after the batch, and the skips since its previous one."""

    batch: Batch | None
    worker: int
    cursor: int
    skipped: dict[str, int] = field(default_factory=dict)

    def pin_memory(self) -> "Delivery":
        return self if self.batch is None else replace(self, batch=self.batch.pin_memory())


def collate(crops: Sequence[Crop]) -> Batch:
    """Stack crops into a batch, zero-padding to the longest."""
    width = max(len(crop.wav) for crop in crops)
    wav = np.zeros((len(crops), width), np.float32)
    for row, crop in enumerate(crops):
        wav[row, : len(crop.wav)] = crop.wav
    return Batch(
        wav=torch.from_numpy(wav),
        lengths=torch.tensor([crop.length for crop in crops], dtype=torch.int64),
        offsets=torch.tensor([crop.offset for crop in crops], dtype=torch.int64),
        keys=[crop.key for crop in crops],
        metadata=[crop.metadata for crop in crops],
    )

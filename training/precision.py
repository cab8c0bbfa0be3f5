"""Device and numeric precision: where to train, which autocast dtype, whether to scale gradients.

`auto` precision is bf16 on a GPU that supports it and fp16 (with a GradScaler) on one
that does not. On a CPU it is fp32: CPU autocast to bf16 works (choose `bf16`
explicitly) but is slower than fp32 on most CPUs without AMX, and a CPU run is a test or
a demo, where exactness matters more than memory. Every path goes through
`torch.autocast(device_type=device.type)` and `torch.amp.GradScaler(device.type)`, so
the same code runs on any device.
"""

import contextlib
import logging

import torch

from sonotype.errors import ConfigError
from training.distributed import local_rank

logger = logging.getLogger(__name__)

_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(spec: str) -> torch.device:
    """The device of `TrainConfig.device`: `auto` is this rank's GPU when there is one.

    Raises:
        ConfigError: a CUDA device is asked for and none is available.
    """
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {spec!r} asked for, but torch sees no CUDA device")
    device = torch.device(spec)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank())
    return device


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `TrainConfig.precision` on `device` (None: fp32, no autocast).

    Raises:
        ConfigError: bf16 on a GPU without bf16 support.
    """
    if name == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("precision: bf16 asked for, but this GPU does not support it; use fp16")
    return _DTYPES[name]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """A context running eligible ops in `dtype` (a no-op for fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def make_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A GradScaler, enabled for fp16 only (bf16 has fp32's range and needs none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def precision_name(dtype: torch.dtype | None) -> str:
    """fp32, bf16 or fp16."""
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]

"""Checkpoint files: the one place that reads them (`weights_only=True`), and sonotype's format.

sonotype's tokenizer checkpoint is self-describing: a plain dict

    {"format": "sonotype-tokenizer", "version": 1,
     "model_config": ModelConfig as plain data,
     "generator": state dict, "discriminators": state dict or None,
     "extra": dict of plain data (e.g. the training step)}

Only tensors and plain containers are stored, so `torch.load(weights_only=True)`
reads it without unpickling code. A training checkpoint may add top-level keys of its
own (optimizer states, ...); readers of the tokenizer ignore them. Writes are atomic
(`sonotype.fsio.atomic_open`); paths may be fsspec URLs.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sonotype.config.model import ModelConfig
from sonotype.errors import CheckpointMismatchError
from sonotype.fsio import atomic_open, is_local, url_to_fs

logger = logging.getLogger(__name__)

FORMAT = "sonotype-tokenizer"
"""The `format` value of sonotype's tokenizer checkpoints."""
VERSION = 1
"""The newest `version` this code writes and reads."""

_MAX_LISTED = 8
"""Keys named in a mismatch message before the rest are counted."""


@dataclass(frozen=True)
class TokenizerCheckpoint:
    """A parsed sonotype tokenizer checkpoint."""

    config: ModelConfig
    generator: dict[str, torch.Tensor]
    discriminators: dict[str, torch.Tensor] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def read_checkpoint_file(path: str | Path) -> Any:
    """Read a checkpoint file with `torch.load(weights_only=True)` onto the CPU.

    Args:
        path: a local path or fsspec URL.

    Returns:
        Whatever the file holds (tensors and plain containers only).

    Raises:
        CheckpointMismatchError: the file is missing or is not a weights-only checkpoint.
    """
    fs, fs_path = url_to_fs(path)
    try:
        if is_local(path):
            # Memory-mapped: a Lightning .ckpt's optimizer states and discriminators are
            # only paged in if something reads them.
            return torch.load(fs_path, map_location="cpu", weights_only=True, mmap=True)
        with fs.open(fs_path, "rb") as handle:
            return torch.load(handle, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise CheckpointMismatchError(f"{path}: checkpoint file not found") from error
    except Exception as error:  # torch raises several types for foreign or unsafe files
        raise CheckpointMismatchError(
            f"{path}: not a readable weights-only PyTorch checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'})"
        ) from error


def write_checkpoint_file(payload: Any, path: str | Path) -> None:
    """Write a checkpoint (tensors and plain containers) atomically."""
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside DDP (`.module`) and `torch.compile` (`._orig_mod`) wrappers.

    Checkpoints are written from the unwrapped model so their keys never carry a wrapper's
    `module.` or `_orig_mod.` prefix.
    """
    while True:
        if isinstance(module, DistributedDataParallel):
            module = module.module
        elif isinstance(getattr(module, "_orig_mod", None), nn.Module):
            module = module._orig_mod
        else:
            return module


def tokenizer_payload(
    config: ModelConfig,
    generator: nn.Module,
    discriminators: nn.Module | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict of a sonotype tokenizer checkpoint (tensors copied to the CPU).

    Args:
        config: the architecture.
        generator: its generator (DDP / torch.compile wrappers are removed here).
        discriminators: its discriminators, or None for an inference export.
        extra: plain data to keep alongside (step, metrics, provenance).
    """
    return {
        "format": FORMAT,
        "version": VERSION,
        "model_config": config.model_dump(mode="json"),
        "generator": _cpu_state(generator),
        "discriminators": None if discriminators is None else _cpu_state(discriminators),
        "extra": dict(extra or {}),
    }


def save_tokenizer(
    path: str | Path,
    config: ModelConfig,
    generator: nn.Module,
    discriminators: nn.Module | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a sonotype tokenizer checkpoint atomically (see the module docstring)."""
    write_checkpoint_file(tokenizer_payload(config, generator, discriminators, extra), path)
    logger.info("wrote tokenizer checkpoint %s", path)


def is_tokenizer_checkpoint(payload: Any) -> bool:
    """Whether `payload` claims to be a sonotype tokenizer checkpoint."""
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def is_lightning_checkpoint(payload: Any) -> bool:
    """Whether `payload` looks like a published WavTokenizer Lightning `.ckpt`."""
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        return False
    return any(str(key).startswith("feature_extractor.") for key in payload["state_dict"])


def parse_tokenizer_checkpoint(payload: Any, source: str) -> TokenizerCheckpoint:
    """Check and unpack a sonotype tokenizer checkpoint.

    Args:
        payload: what `read_checkpoint_file` returned.
        source: the file, for messages.

    Raises:
        CheckpointMismatchError: wrong format or version, missing parts, or a model
            config that does not validate.
    """
    if not is_tokenizer_checkpoint(payload):
        found = sorted(map(str, payload))[:_MAX_LISTED] if isinstance(payload, dict) else None
        raise CheckpointMismatchError(
            f"{source}: expected a {FORMAT!r} checkpoint (a dict with format={FORMAT!r}) or a "
            f"published WavTokenizer .ckpt (with a state_dict of feature_extractor.* keys); "
            f"found {type(payload).__name__}" + (f" with keys {found}" if found else "")
        )
    version = payload.get("version")
    if version != VERSION:
        raise CheckpointMismatchError(
            f"{source}: {FORMAT} version {version!r} is not supported; this code reads "
            f"version {VERSION}"
        )
    missing = [key for key in ("model_config", "generator") if key not in payload]
    if missing:
        raise CheckpointMismatchError(f"{source}: {FORMAT} checkpoint lacks {missing}")
    try:
        config = ModelConfig.model_validate(payload["model_config"])
    except ValidationError as error:
        raise CheckpointMismatchError(
            f"{source}: its model_config does not validate: {error}"
        ) from None
    return TokenizerCheckpoint(
        config=config,
        generator=payload["generator"],
        discriminators=payload.get("discriminators"),
        extra=dict(payload.get("extra") or {}),
    )


def load_state_checked(
    module: nn.Module, state: dict[str, torch.Tensor], source: str, what: str
) -> None:
    """`module.load_state_dict(state)`, with every missing, unexpected or misshapen key named.

    Args:
        module: the receiving module.
        state: its state dict (keys in the module's own naming).
        source: the file, for messages.
        what: which part (e.g. "generator"), for messages.

    Raises:
        CheckpointMismatchError: the keys or shapes differ from the module's.
    """
    expected = module.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshapen = [
        f"{key} {tuple(state[key].shape)} (model: {tuple(expected[key].shape)})"
        for key in expected
        if key in state and tuple(state[key].shape) != tuple(expected[key].shape)
    ]
    problems = []
    for label, keys in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", misshapen),
    ):
        if keys:
            problems.append(f"{len(keys)} {label}: {_listing(keys)}")
    if problems:
        raise CheckpointMismatchError(
            f"{source}: the {what} weights do not fit the model: " + "; ".join(problems)
        )
    module.load_state_dict(state)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f" and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else "")


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu() for key, value in unwrap(module).state_dict().items()}

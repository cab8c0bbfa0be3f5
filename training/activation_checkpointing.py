"""Activation checkpointing: keep only block inputs in the forward pass, recompute in the backward.

The blocks are those holding most of the activation memory at training crop lengths:
the encoder's stages (full or near-full time resolution), the backbone's prenet and
ConvNeXt blocks, and every sub-discriminator. Each block's `forward` is replaced on the
instance by one that runs it under `torch.utils.checkpoint` (non-reentrant, which works
with DDP, autocast and frozen parameters, and replays the RNG state so dropout draws the
same masks); module names and state dicts are untouched.
"""

from collections.abc import Iterable

from torch import nn
from torch.utils.checkpoint import checkpoint

from training.model import Discriminators, Generator


def enable_activation_checkpointing(
    generator: Generator, discriminators: Discriminators | None = None
) -> int:
    """Recompute the activations of the big blocks in the backward pass.

    Args:
        generator: the (unwrapped) generator.
        discriminators: the (unwrapped) discriminators, or None.

    Returns:
        The number of blocks now checkpointed.
    """
    blocks: list[nn.Module] = [
        *generator.encoder.stages,
        *generator.backbone.prenet,
        *generator.backbone.blocks,
    ]
    if discriminators is not None:
        for discriminator in discriminators.values():
            blocks.extend(_sub_discriminators(discriminator))
    for block in blocks:
        _checkpoint_forward(block)
    return len(blocks)


def _sub_discriminators(discriminator: nn.Module) -> Iterable[nn.Module]:
    subs = getattr(discriminator, "discriminators", None)
    return list(subs) if isinstance(subs, nn.ModuleList) else [discriminator]


def _checkpoint_forward(module: nn.Module) -> None:
    if getattr(module, "_is_checkpointed", False):
        return
    inner = module.forward

    def forward(*args, **kwargs):
        return checkpoint(inner, *args, use_reentrant=False, **kwargs)

    module.forward = forward
    module._is_checkpointed = True

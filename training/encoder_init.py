"""Data-dependent initialisation of the encoder's weight-normalised convolutions.

At PyTorch's default initialisation the SEANet encoder's output is almost a constant:
each conv shrinks the signal while its bias does not, so after eighteen of them the
latents of real recordings vary by about 0.001 per dimension around an offset of norm
0.5 (measured on the example corpus). k-means then seeds the codebook inside that
tiny ball, the first optimizer steps move the offset further than the ball is wide,
and every frame lands on one code: the collapse every short run showed.

Salimans and Kingma (2016, "Weight normalization", §3) give the remedy for weight-
normalised layers: on a batch of real data, set each layer's gain and bias so that
its outputs have zero mean and unit variance per channel, layer after layer in
forward order. Here the last conv is scaled to `latent_std` instead of 1, so the
commitment loss keeps the size the recipe's weights were chosen for.
"""

import logging

import torch
from torch import nn

from sonotype.config.train import EncoderInitConfig
from training.distributed import broadcast
from training.model.encoder import PaddedConv1d, SEANetEncoder

logger = logging.getLogger(__name__)

_EPS = 1e-6


def initialize_encoder(
    encoder: SEANetEncoder, crops: list[torch.Tensor], config: EncoderInitConfig
) -> None:
    """Normalise the encoder on the first `config.batches` batches of crops, the same on every
    rank (rank 0's result is broadcast: ranks see different crops).

    Args:
        encoder: a freshly built encoder.
        crops: batches of crops `[B, T]` from the codebook reader.
        config: the run's `encoder_init` settings.
    """
    initialize_from_data(encoder, torch.cat(crops[: config.batches]), config.latent_std)
    with torch.no_grad():
        for parameter in encoder.parameters():
            broadcast(parameter.data)


@torch.no_grad()
def initialize_from_data(encoder: SEANetEncoder, wav: torch.Tensor, latent_std: float) -> None:
    """Normalise every conv of `encoder` on `wav`, in forward order.

    Each conv's per-channel gain `g` and bias are set so that its output on `wav` has
    zero mean and standard deviation 1 per channel (the last conv: `latent_std`). A
    channel that does not vary on `wav` (a constant input) keeps its gain.

    Args:
        encoder: a freshly built encoder (its convs weight-normalised).
        wav: `[B, T]` real audio, as training sees it.
        latent_std: the per-dimension standard deviation of the latents afterwards.
    """
    convs = [module for module in encoder.modules() if isinstance(module, PaddedConv1d)]
    for conv in convs:
        target = latent_std if conv is encoder.output_conv else 1.0
        mean, std = _channel_moments(encoder, conv, wav)
        _rescale(conv.conv, mean, std, target)
    latents = encoder(wav)
    logger.info(
        "encoder initialised from data: latents vary by %.3g per dimension around an offset "
        "of norm %.3g",
        float(latents.std(dim=(0, 2)).mean()),
        float(latents.mean(dim=(0, 2)).norm()),
    )


def _channel_moments(
    encoder: SEANetEncoder, conv: PaddedConv1d, wav: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of `conv`'s output `[B, C, L]` on `wav`."""
    captured: list[torch.Tensor] = []
    hook = conv.register_forward_hook(lambda module, inputs, output: captured.append(output))
    try:
        encoder(wav)
    finally:
        hook.remove()
    output = captured[0]
    return output.mean(dim=(0, 2)), output.std(dim=(0, 2))


def _rescale(conv: nn.Conv1d, mean: torch.Tensor, std: torch.Tensor, target: float) -> None:
    """y ← target · (y − mean) / std, through the weight norm's gain and the bias."""
    varies = std > _EPS
    scale = torch.where(varies, target / std.clamp(min=_EPS), torch.ones_like(std))
    gain = conv.parametrizations.weight.original0  # [C_out, 1, 1]
    gain.mul_(scale.view(-1, 1, 1))
    if conv.bias is not None:
        conv.bias.sub_(mean).mul_(scale)

"""Builders: a `ModelConfig` → the generator and the discriminators.

The config names discriminators (`mpd`, `mrd`, `dac`); a plain dict maps each name to
its builder. Modules receive plain arguments unpacked here, never config objects.
"""

from collections.abc import Callable

from torch import nn

from sonotype.config.model import (
    DacDiscriminatorConfig,
    ModelConfig,
    PeriodDiscriminatorConfig,
    ResolutionDiscriminatorConfig,
)
from training.model.backbone import VocosBackbone
from training.model.discriminators import Discriminators
from training.model.discriminators.dac import DacDiscriminator
from training.model.discriminators.mpd import MultiPeriodDiscriminator
from training.model.discriminators.mrd import MultiResolutionDiscriminator
from training.model.encoder import SEANetEncoder
from training.model.generator import Generator
from training.model.head import ISTFTHead
from training.model.quantizer import VectorQuantizer


def build_generator(config: ModelConfig) -> Generator:
    """Encoder, quantizer, backbone and head of `config`, freshly initialised.

    Args:
        config: the model config (hop = product of strides = head hop, checked by it).

    Returns:
        The generator, in training mode, on the CPU.
    """
    encoder_config = config.encoder
    encoder = SEANetEncoder(
        n_filters=encoder_config.n_filters,
        strides=list(encoder_config.strides),
        dimension=encoder_config.dimension,
        kernel_size=encoder_config.kernel_size,
        last_kernel_size=encoder_config.last_kernel_size,
        residual_kernel_size=encoder_config.residual_kernel_size,
        compress=encoder_config.compress,
        n_lstm_layers=encoder_config.n_lstm_layers,
    )
    quantizer = VectorQuantizer(
        codebook_size=config.quantizer.codebook_size,
        dim=encoder_config.dimension,
        decay=config.quantizer.decay,
        eps=config.quantizer.eps,
        threshold_ema_dead_code=config.quantizer.threshold_ema_dead_code,
        cosine=config.quantizer.cosine,
    )
    backbone_config = config.backbone
    backbone = VocosBackbone(
        input_dim=encoder_config.dimension,
        dim=backbone_config.dim,
        intermediate_dim=backbone_config.intermediate_dim,
        n_layers=backbone_config.n_layers,
        n_conditions=backbone_config.n_conditions,
        layer_scale_init=backbone_config.layer_scale_init,
        n_groups=backbone_config.n_groups,
        dropout=backbone_config.dropout,
    )
    head = ISTFTHead(backbone_config.dim, config.head.n_fft, config.head.hop_length)
    return Generator(encoder, quantizer, backbone, head, config.sample_rate)


def _build_mpd(config: PeriodDiscriminatorConfig) -> nn.Module:
    return MultiPeriodDiscriminator(
        periods=list(config.periods),
        channels=list(config.channels),
        kernel_size=config.kernel_size,
        stride=config.stride,
        n_embeddings=config.n_embeddings,
    )


def _build_mrd(config: ResolutionDiscriminatorConfig) -> nn.Module:
    return MultiResolutionDiscriminator(
        resolutions=[tuple(r) for r in config.resolutions],
        channels=config.channels,
        n_embeddings=config.n_embeddings,
    )


def _build_dac(config: DacDiscriminatorConfig) -> nn.Module:
    return DacDiscriminator(
        periods=list(config.periods),
        period_channels=list(config.period_channels),
        fft_sizes=list(config.fft_sizes),
        bands=[tuple(b) for b in config.bands],
        band_channels=config.band_channels,
    )


DISCRIMINATOR_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mpd": _build_mpd,
    "mrd": _build_mrd,
    "dac": _build_dac,
}
"""Name in `ModelConfig.discriminators` → builder taking that section."""


def build_discriminators(config: ModelConfig) -> Discriminators:
    """The discriminators `config` enables (a section set to null is left out).

    Args:
        config: the model config.

    Returns:
        `Discriminators` keyed `mpd`, `mrd`, `dac` (those enabled), freshly initialised.
    """
    modules = {}
    for name, builder in DISCRIMINATOR_BUILDERS.items():
        section = getattr(config.discriminators, name)
        if section is not None:
            modules[name] = builder(section)
    return Discriminators(modules)

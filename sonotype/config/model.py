"""Config of the WavTokenizer model: encoder, quantizer, backbone, ISTFT head, discriminators.

Published sizes are presets in `configs/model/` (`wavtokenizer-40`, `wavtokenizer-75`),
plus `tiny` for tests and the demo. Every default below is the published value
(Ji et al. 2024, reference code `jishengpeng/WavTokenizer`), so a preset only spells
out what differs. The cross-field rule that matters: the encoder's hop (the product
of its strides) is the number of samples per token, and the ISTFT head must use the
same hop so that one token decodes to exactly one hop of audio.
"""

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from sonotype.config.base import StrictModel


class EncoderConfig(StrictModel):
    """The EnCodec SEANet encoder (non-causal, reflect padding, weight-norm convs, ELU)."""

    n_filters: int = Field(default=32, gt=0, description="channels after the first conv")
    strides: list[int] = Field(
        default=[4, 5, 5, 6],
        min_length=1,
        description="downsampling strides in the order they are applied (input side first)",
    )
    dimension: int = Field(default=512, gt=0, description="latent size D of each frame")
    kernel_size: int = Field(default=7, gt=0, description="kernel of the first conv")
    last_kernel_size: int = Field(default=7, gt=0, description="kernel of the last conv")
    residual_kernel_size: int = Field(default=3, gt=0)
    compress: int = Field(
        default=2, gt=0, description="residual branch width = channels / compress"
    )
    n_lstm_layers: int = Field(
        default=2, ge=0, description="LSTM layers (with skip) before the last conv"
    )

    @field_validator("strides")
    @classmethod
    def _positive_strides(cls, values: list[int]) -> list[int]:
        if any(value < 1 for value in values):
            raise ValueError(f"strides of at least 1, got {values}")
        return values

    @property
    def hop_length(self) -> int:
        """Samples per frame: the product of the strides."""
        return math.prod(self.strides)


class QuantizerConfig(StrictModel):
    """One EMA-updated codebook of `codebook_size` vectors of the encoder's dimension."""

    codebook_size: int = Field(default=4096, ge=2, description="K, number of tokens")
    decay: float = Field(default=0.99, gt=0, lt=1, description="EMA decay of the codebook")
    eps: float = Field(default=1e-5, gt=0, description="Laplace smoothing of cluster sizes")
    threshold_ema_dead_code: float = Field(
        default=2.0, ge=0, description="codes whose EMA cluster size falls below are dead"
    )
    kmeans_iters: int = Field(default=200, ge=0, description="k-means iterations of the init")
    cosine: bool = Field(
        default=False,
        description="quantize l2-normalised latents against l2-normalised codes (as DAC): "
        "latents cannot shrink toward the codes, which keeps a small codebook in use; the "
        "published models are not cosine",
    )


class BackboneConfig(StrictModel):
    """The Vocos decoder backbone: prenet with attention, then ConvNeXt blocks."""

    dim: int = Field(default=768, gt=0)
    intermediate_dim: int = Field(default=2304, gt=0)
    n_layers: int = Field(default=12, gt=0, description="ConvNeXt blocks")
    n_conditions: int | None = Field(
        default=4,
        gt=0,
        description="AdaLayerNorm rows (published: 4; row 0 at inference); null: plain LayerNorm",
    )
    layer_scale_init: float | None = Field(
        default=None, gt=0, description="ConvNeXt layer-scale init; null: 1 / n_layers"
    )
    n_groups: int = Field(default=32, gt=0, description="GroupNorm groups in the prenet")
    dropout: float = Field(default=0.1, ge=0, lt=1, description="dropout in prenet ResBlocks")

    @model_validator(mode="after")
    def _groups_divide_dim(self) -> "BackboneConfig":
        if self.dim % self.n_groups != 0:
            raise ValueError(f"dim ({self.dim}) divisible by n_groups ({self.n_groups})")
        return self


class HeadConfig(StrictModel):
    """The ISTFT head: one STFT frame per token, "same" padding, so F tokens give F·hop samples."""

    n_fft: int = Field(default=2400, gt=0)
    hop_length: int = Field(default=600, gt=0, description="must equal the encoder's hop")
    padding: Literal["same"] = "same"

    @model_validator(mode="after")
    def _same_padding_fits(self) -> "HeadConfig":
        if self.n_fft < 2 * self.hop_length or (self.n_fft - self.hop_length) % 2:
            raise ValueError(
                f"n_fft ({self.n_fft}) at least 2 × hop_length ({self.hop_length}) with an even "
                "difference, so that 'same' padding trims equal halves and every sample is covered"
            )
        return self


class PeriodDiscriminatorConfig(StrictModel):
    """HiFi-GAN multi-period discriminator as in Vocos (hinge loss in the reference)."""

    periods: list[int] = Field(default=[2, 3, 5, 7, 11], min_length=1)
    channels: list[int] = Field(default=[32, 128, 512, 1024, 1024], min_length=2)
    kernel_size: int = Field(default=5, gt=0)
    stride: int = Field(default=3, gt=0)
    n_embeddings: int | None = Field(
        default=None,
        gt=0,
        description="conditional embedding rows; the published checkpoints have none",
    )


class ResolutionDiscriminatorConfig(StrictModel):
    """UnivNet multi-resolution (magnitude spectrogram) discriminator as in Vocos."""

    resolutions: list[tuple[int, int, int]] = Field(
        default=[(1024, 256, 1024), (2048, 512, 2048), (512, 128, 512)],
        min_length=1,
        description="(n_fft, hop_length, win_length) of each sub-discriminator",
    )
    channels: int = Field(default=64, gt=0)
    n_embeddings: int | None = Field(default=None, gt=0)


class DacDiscriminatorConfig(StrictModel):
    """The DAC discriminator: periods plus multi-band complex-STFT sub-discriminators."""

    periods: list[int] = Field(default=[2, 3, 5, 7, 11])
    period_channels: list[int] = Field(default=[32, 128, 512, 1024, 1024], min_length=2)
    fft_sizes: list[int] = Field(default=[2048, 1024, 512])
    bands: list[tuple[float, float]] = Field(
        default=[(0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0)],
        min_length=1,
        description="frequency bands as fractions of the bins, low to high",
    )
    band_channels: int = Field(default=32, gt=0)

    @field_validator("bands")
    @classmethod
    def _ordered_bands(cls, values: list[tuple[float, float]]) -> list[tuple[float, float]]:
        for low, high in values:
            if not 0.0 <= low < high <= 1.0:
                raise ValueError(f"bands (low, high) with 0 <= low < high <= 1, got {values}")
        return values


class DiscriminatorsConfig(StrictModel):
    """Which discriminators exist (null removes one) and their sizes."""

    mpd: PeriodDiscriminatorConfig | None = PeriodDiscriminatorConfig()
    mrd: ResolutionDiscriminatorConfig | None = ResolutionDiscriminatorConfig()
    dac: DacDiscriminatorConfig | None = DacDiscriminatorConfig()


class ModelConfig(StrictModel):
    """The whole WavTokenizer: generator (encoder → VQ → backbone → head) and discriminators."""

    sample_rate: int = Field(default=24000, gt=0, description="Hz of the audio the model codes")
    encoder: EncoderConfig = EncoderConfig()
    quantizer: QuantizerConfig = QuantizerConfig()
    backbone: BackboneConfig = BackboneConfig()
    head: HeadConfig = HeadConfig()
    discriminators: DiscriminatorsConfig = DiscriminatorsConfig()

    @model_validator(mode="after")
    def _one_hop(self) -> "ModelConfig":
        if self.head.hop_length != self.encoder.hop_length:
            raise ValueError(
                f"head.hop_length ({self.head.hop_length}) equal to the product of "
                f"encoder.strides {self.encoder.strides} ({self.encoder.hop_length}): one token "
                "must decode to one hop of audio"
            )
        return self

    @property
    def hop_length(self) -> int:
        """Samples per token."""
        return self.encoder.hop_length

    @property
    def frame_rate(self) -> float:
        """Tokens per second."""
        return self.sample_rate / self.hop_length

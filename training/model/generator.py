"""The WavTokenizer generator: encoder → quantizer → backbone → ISTFT head."""

from typing import NamedTuple

import torch
from torch import nn

from training.model.backbone import Condition, VocosBackbone
from training.model.encoder import SEANetEncoder
from training.model.head import ISTFTHead
from training.model.quantizer import VectorQuantizer


class GeneratorOutput(NamedTuple):
    """What `Generator.forward` returns to the trainer."""

    audio: torch.Tensor
    """`[B, F · hop]` reconstructed waveform."""
    codes: torch.Tensor
    """`[B, F]` int64 tokens."""
    latents: torch.Tensor
    """`[B, D, F]` encoder output before quantization (for the codebook statistics)."""
    commitment_loss: torch.Tensor
    """Scalar MSE(latents, quantized.detach())."""


class Generator(nn.Module):
    """Waveform → tokens → waveform.

    Args:
        encoder: the SEANet encoder.
        quantizer: the codebook.
        backbone: the Vocos backbone.
        head: the ISTFT head.
        sample_rate: Hz of the audio the model codes.
    """

    def __init__(
        self,
        encoder: SEANetEncoder,
        quantizer: VectorQuantizer,
        backbone: VocosBackbone,
        head: ISTFTHead,
        sample_rate: int,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.quantizer = quantizer
        self.backbone = backbone
        self.head = head
        self.sample_rate = sample_rate
        self.hop_length = encoder.hop_length

    def forward(
        self, wav: torch.Tensor, condition: Condition = 0, quantize: bool = True
    ) -> GeneratorOutput:
        """Reconstruct a batch (training pass; gradients reach the encoder through the STE).

        Args:
            wav: `[B, T]`.
            condition: AdaLayerNorm row of the backbone.
            quantize: decode the codebook vectors (False: the latents themselves; codes
                and the commitment loss are computed either way).

        Returns:
            GeneratorOutput: audio `[B, F · hop]`, codes `[B, F]`, latents `[B, D, F]` and
            the commitment loss, F = ceil(T / hop).
        """
        latents = self.latents(wav)
        quantized, codes, commitment_loss = self.quantizer(latents)
        audio = self.synthesize(quantized if quantize else latents, condition)
        return GeneratorOutput(audio, codes, latents, commitment_loss)

    def encode(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens and pre-quantization latents.

        Args:
            wav: `[B, T]`.

        Returns:
            (codes `[B, F]` int64, latents `[B, D, F]`).
        """
        latents = self.latents(wav)
        return self.quantizer.encode(latents), latents

    def latents(self, wav: torch.Tensor) -> torch.Tensor:
        """The encoder's output as the quantizer sees it (`quantizer.prepare`): `[B, T]` →
        `[B, D, F]`. What is quantized, committed to, seeded from and stored."""
        return self.quantizer.prepare(self.encoder(wav))

    def decode(self, codes: torch.Tensor, condition: Condition = 0) -> torch.Tensor:
        """Tokens → waveform: `[B, F]` → `[B, F · hop]`."""
        return self.synthesize(self.quantizer.decode(codes), condition)

    def synthesize(self, quantized: torch.Tensor, condition: Condition = 0) -> torch.Tensor:
        """Quantized latents → waveform: `[B, D, F]` → `[B, F · hop]`."""
        return self.head(self.backbone(quantized, condition))

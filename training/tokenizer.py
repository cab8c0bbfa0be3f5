"""The inference tokenizer: `load_tokenizer(path)` → `Tokenizer` with encode / embed / decode.

    tok = load_tokenizer("runs/x/export/tokenizer.pt")                  # sonotype checkpoint
    tok = load_tokenizer("WavTokenizer_small_600_24k_4096.ckpt",
                         config="wavtokenizer_smalldata_frame40_....yaml")  # published
    tok = tok.to("cuda")
    codes = tok.encode(wav)                  # [B, T] float at tok.sample_rate → [B, F] int64
    embeddings = tok.embed(wav)              # [B, F, D] pre-quantization encoder output
    codes, embeddings = tok.encode_with_embeddings(wav)   # one encoder pass for both
    audio = tok.decode(codes)                # [B, F · hop]

F = ceil(T / hop). Inputs longer than `chunk_frames` frames are processed in chunks
(`training.chunked`): exactly for encoding, approximately (context and cross-fades)
for decoding, whose backbone normalises over the whole input.
"""

import logging
import math
from pathlib import Path

import torch

from sonotype.config.model import ModelConfig
from training.chunked import decode_chunked, encode_chunked
from training.load import load_models
from training.model import Generator

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_FRAMES = 1000
"""Frames processed at once by default (25 s at 40 tokens/s, 13.3 s at 75 tokens/s)."""


class Tokenizer:
    """A generator in inference mode, with waveform ↔ token conversions.

    Args:
        generator: the model.
        config: its architecture.
        chunk_frames: inputs of more frames are processed in chunks of this many.
    """

    def __init__(
        self, generator: Generator, config: ModelConfig, chunk_frames: int = DEFAULT_CHUNK_FRAMES
    ) -> None:
        self.generator = generator.eval()
        self.config = config
        self.chunk_frames = chunk_frames

    @property
    def sample_rate(self) -> int:
        """Hz of the audio the tokenizer expects and produces."""
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        """Samples per token."""
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        """Tokens per second."""
        return self.config.frame_rate

    @property
    def codebook_size(self) -> int:
        """K: codes are in [0, K)."""
        return self.config.quantizer.codebook_size

    @property
    def embedding_dim(self) -> int:
        """D: size of `embed`'s vectors (512 for the published models)."""
        return self.config.encoder.dimension

    @property
    def device(self) -> torch.device:
        """Where the model's weights are."""
        return self.generator.quantizer.embed.device

    def to(self, device: str | torch.device) -> "Tokenizer":
        """Move the model to `device` (in place); returns self."""
        self.generator.to(device)
        return self

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """Tokens of a batch of waveforms.

        Args:
            wav: float `[B, T]` at `sample_rate`, any T ≥ 1.

        Returns:
            int64 `[B, F]` on the model's device, F = ceil(T / hop).

        Raises:
            ValueError: `wav` is not a non-empty 2-D tensor.
        """
        return self.encode_with_embeddings(wav)[0]

    def embed(self, wav: torch.Tensor) -> torch.Tensor:
        """Pre-quantization encoder output: float `[B, T]` → `[B, F, D]`.

        Raises:
            ValueError: `wav` is not a non-empty 2-D tensor.
        """
        return self.encode_with_embeddings(wav)[1]

    @torch.inference_mode()
    def encode_with_embeddings(self, wav: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens and embeddings from one encoder pass.

        Args:
            wav: float `[B, T]` at `sample_rate`.

        Returns:
            (codes int64 `[B, F]`, embeddings `[B, F, D]`).

        Raises:
            ValueError: `wav` is not a non-empty 2-D tensor.
        """
        wav = self._waveform(wav)
        if math.ceil(wav.shape[-1] / self.hop_length) <= self.chunk_frames:
            codes, latents = self.generator.encode(wav)
        else:
            codes, latents = encode_chunked(self.generator, wav, self.chunk_frames)
        return codes, latents.transpose(1, 2)  # [B, F, D]

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Waveforms of tokens (AdaLayerNorm row 0, as the reference's inference).

        Args:
            codes: integer `[B, F]` in [0, K).

        Returns:
            float32 `[B, F · hop]` on the model's device.

        Raises:
            ValueError: `codes` is not a 2-D integer tensor of codes in range.
        """
        if codes.ndim != 2 or codes.dtype.is_floating_point or codes.is_complex():
            raise ValueError(
                f"codes must be an integer [B, F] tensor, got {codes.dtype} {tuple(codes.shape)}"
            )
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise ValueError(
                f"codes must lie in [0, {self.codebook_size}), got [{int(codes.min())}, "
                f"{int(codes.max())}]"
            )
        codes = codes.to(self.device, torch.int64)
        return decode_chunked(self.generator, codes, self.chunk_frames)

    def _waveform(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.ndim != 2 or wav.shape[-1] == 0 or not wav.dtype.is_floating_point:
            raise ValueError(
                f"wav must be a float [B, T] tensor with T >= 1, got {wav.dtype} {tuple(wav.shape)}"
            )
        return wav.to(self.device, torch.float32)


def load_tokenizer(
    path: str | Path,
    config: str | Path | ModelConfig | None = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
) -> Tokenizer:
    """Load a tokenizer from a sonotype checkpoint or a published WavTokenizer `.ckpt`.

    Args:
        path: the checkpoint (local path or fsspec URL).
        config: for a published `.ckpt`, its YAML (path) or a `ModelConfig`; a sonotype
            checkpoint describes itself, and a config given with it must be the same.
        chunk_frames: see `Tokenizer`.

    Returns:
        The tokenizer on the CPU, in eval mode.

    Raises:
        CheckpointMismatchError: unknown format, weights that do not fit, or a config that
            contradicts a sonotype checkpoint.
        ConfigError: a published checkpoint without a usable YAML.
    """
    models = load_models(path, config)
    model_config = models.config
    logger.info(
        "tokenizer %s: %d Hz, %.1f tokens/s, %d codes, %d-d embeddings",
        path,
        model_config.sample_rate,
        model_config.frame_rate,
        model_config.quantizer.codebook_size,
        model_config.encoder.dimension,
    )
    return Tokenizer(models.generator, model_config, chunk_frames)

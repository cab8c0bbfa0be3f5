"""Encode and decode audio of any length in chunks, so the networks never see more than a chunk.

Frames are cut into chunks of at most `chunk_frames` (sizes spread evenly, so no chunk
is much shorter than the others). Each chunk is computed from a window with context on
both sides, and only its own frames are kept.

Encoding is exact: the convolutions before the LSTM have a finite reach, so
`SEANetEncoder.context_frames()` frames of audio on each side make their output inside
the chunk identical to the whole-input output; the LSTM carries its state from chunk to
chunk instead of restarting; the last conv gets the LSTM outputs of its neighbours
(kept from the previous chunk on the left, computed ahead on the right). Chunked codes
and latents therefore equal whole-input ones everywhere, up to floating-point rounding
of convolutions run on inputs of other lengths. Memory: the encoder sees at most
`chunk_frames + 2 · context + right margin` frames of audio at once.

Decoding is approximate: the backbone's GroupNorms and attention use statistics of the
whole input, so a decoded chunk depends on the window it was decoded in. Windows get
`context_frames` of codes on each side (default 50, more than the backbone's
convolutional reach of ±47 frames plus the ISTFT's ±2 for the published sizes), and
neighbouring chunks are cross-faded linearly over `crossfade_frames` around each
boundary to hide the remaining differences. Memory: the decoder sees at most
`chunk_frames + 2 · context_frames` frames at once (its attention is quadratic in that).
Input and output tensors are held whole.
"""

import itertools
import math
from dataclasses import dataclass

import torch

from training.model.generator import Generator

DECODE_CONTEXT_FRAMES = 50
"""Frames of codes decoded on each side of a chunk and thrown away."""
CROSSFADE_FRAMES = 8
"""Frames around each chunk boundary over which decoded chunks are cross-faded."""


@dataclass(frozen=True)
class Chunk:
    """Frames [start, stop) of the whole input."""

    start: int
    stop: int


def plan_chunks(n_frames: int, chunk_frames: int) -> list[Chunk]:
    """Split `n_frames` frames into ceil(n_frames / chunk_frames) chunks of near-equal size.

    Raises:
        ValueError: `chunk_frames` is not positive.
    """
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be at least 1, got {chunk_frames}")
    n_chunks = max(1, math.ceil(n_frames / chunk_frames))
    bounds = [round(i * n_frames / n_chunks) for i in range(n_chunks + 1)]
    return [Chunk(start, stop) for start, stop in itertools.pairwise(bounds)]


def encode_chunked(
    generator: Generator, wav: torch.Tensor, chunk_frames: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes and latents of `wav`, computed chunk by chunk; equal to `generator.encode(wav)`.

    Args:
        generator: the model (eval mode; call under `torch.inference_mode()`).
        wav: `[B, T]`.
        chunk_frames: frames per chunk.

    Returns:
        (codes `[B, F]` int64, latents `[B, D, F]`), F = ceil(T / hop).

    Raises:
        ValueError: `chunk_frames` is not positive.
    """
    encoder, quantizer = generator.encoder, generator.quantizer
    hop = encoder.hop_length
    n_samples = wav.shape[-1]
    n_frames = math.ceil(n_samples / hop)
    context = encoder.context_frames()
    # The last conv reads this many LSTM outputs beyond each side of a chunk.
    margin_left, margin_right = encoder.output_conv.pad_left, encoder.output_conv.pad_right
    state = None
    tail = None  # up to margin_left LSTM outputs just left of the chunk
    codes, latents = [], []
    for chunk in plan_chunks(n_frames, chunk_frames):
        ahead = min(chunk.stop + margin_right, n_frames)
        first, last = max(chunk.start - context, 0), min(ahead + context, n_frames)
        features = encoder.convolve(wav[:, first * hop : min(last * hop, n_samples)])
        centre, state = encoder.recur(
            features[..., chunk.start - first : chunk.stop - first], state
        )
        pieces = [centre] if tail is None else [tail, centre]
        if ahead > chunk.stop:
            right, _ = encoder.recur(features[..., chunk.stop - first : ahead - first], state)
            pieces.append(right)
        projected = quantizer.prepare(encoder.project(torch.cat(pieces, dim=-1)))
        offset = 0 if tail is None else tail.shape[-1]
        chunk_latents = projected[..., offset : offset + centre.shape[-1]]  # [B, D, chunk]
        tail = torch.cat(pieces[:-1] if ahead > chunk.stop else pieces, dim=-1)
        tail = tail[..., max(tail.shape[-1] - margin_left, 0) :]
        latents.append(chunk_latents)
        codes.append(quantizer.encode(chunk_latents))
    return torch.cat(codes, dim=-1), torch.cat(latents, dim=-1)


def decode_chunked(
    generator: Generator,
    codes: torch.Tensor,
    chunk_frames: int,
    context_frames: int = DECODE_CONTEXT_FRAMES,
    crossfade_frames: int = CROSSFADE_FRAMES,
) -> torch.Tensor:
    """Waveform of `codes`, decoded chunk by chunk with context and cross-fades.

    Args:
        generator: the model (eval mode; call under `torch.inference_mode()`).
        codes: `[B, F]`.
        chunk_frames: frames kept per chunk.
        context_frames: frames decoded on each side of a chunk and dropped.
        crossfade_frames: frames around each boundary where neighbours are mixed; at most
            context_frames · 2 and chunk_frames / 2 (even).

    Returns:
        `[B, F · hop]`; equal to `generator.decode(codes)` when F ≤ chunk_frames.

    Raises:
        ValueError: the crossfade does not fit in the context or the chunks.
    """
    hop = generator.hop_length
    n_frames = codes.shape[-1]
    half = crossfade_frames // 2
    if half > context_frames or 2 * half > chunk_frames // 2:
        raise ValueError(
            f"crossfade_frames ({crossfade_frames}) must be at most 2 × context_frames "
            f"({context_frames}) and chunk_frames / 2 ({chunk_frames // 2})"
        )
    chunks = plan_chunks(n_frames, chunk_frames)
    if len(chunks) == 1:
        return generator.decode(codes)
    audio = codes.new_zeros(codes.shape[0], n_frames * hop, dtype=torch.float32)
    for chunk in chunks:
        first = max(chunk.start - context_frames, 0)
        last = min(chunk.stop + context_frames, n_frames)
        window = generator.decode(codes[:, first:last])  # [B, (last - first) · hop]
        keep_start = max(chunk.start - half, 0)
        keep_stop = min(chunk.stop + half, n_frames)
        piece = window[:, (keep_start - first) * hop : (keep_stop - first) * hop]
        weight = _crossfade_weight(chunk, keep_start, keep_stop, half, hop, n_frames, piece)
        audio[:, keep_start * hop : keep_stop * hop] += piece * weight
    return audio


def _crossfade_weight(
    chunk: Chunk,
    keep_start: int,
    keep_stop: int,
    half: int,
    hop: int,
    n_frames: int,
    like: torch.Tensor,
) -> torch.Tensor:
    """Per-sample weight `[keep_stop·hop − keep_start·hop]` of a chunk's kept samples.

    Around an inner boundary p the later chunk's weight rises linearly over
    [(p − half)·hop, (p + half)·hop) and the earlier chunk's is one minus it, so the
    weights of all chunks add up to one at every sample.
    """
    position = torch.arange(keep_start * hop, keep_stop * hop, device=like.device) + 0.5
    weight = torch.ones_like(position, dtype=like.dtype)
    if half == 0:
        return weight
    span = 2 * half * hop
    if chunk.start > 0:
        weight = weight * _ramp(position, (chunk.start - half) * hop, span)
    if chunk.stop < n_frames:
        weight = weight * (1 - _ramp(position, (chunk.stop - half) * hop, span))
    return weight


def _ramp(position: torch.Tensor, begin: int, span: int) -> torch.Tensor:
    """0 before `begin`, 1 after `begin + span`, linear in between (sample centres)."""
    return ((position - begin) / span).clamp(0.0, 1.0)

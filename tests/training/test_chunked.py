"""Chunked encoding equals whole-input encoding; chunked decoding stitches windows correctly."""

import itertools
import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from tests.training.conftest import assert_nearest_codes, record_lengths, seed_codebook
from training.chunked import decode_chunked, encode_chunked, plan_chunks
from training.model import build_generator


@pytest.mark.parametrize(
    ("n_frames", "chunk_frames"), [(1, 1), (10, 3), (100, 30), (61, 60), (7, 50)]
)
def test_chunks_cover_the_frames_evenly(n_frames, chunk_frames):
    chunks = plan_chunks(n_frames, chunk_frames)
    assert len(chunks) == math.ceil(n_frames / chunk_frames)
    assert chunks[0].start == 0
    assert chunks[-1].stop == n_frames
    assert all(a.stop == b.start for a, b in itertools.pairwise(chunks))
    sizes = [c.stop - c.start for c in chunks]
    assert max(sizes) <= chunk_frames
    assert max(sizes) - min(sizes) <= 1


def test_chunk_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        plan_chunks(10, 0)


@pytest.mark.parametrize("chunk_frames", [1, 2, 7, 40])
def test_chunked_encoding_equals_whole_input_encoding_everywhere(tiny_generator, chunk_frames):
    wav = 0.3 * torch.randn(2, 600 * 97 + 211)  # 98 frames, the last one partial
    with torch.inference_mode():
        codes, latents = tiny_generator.encode(wav)
        chunked_codes, chunked_latents = encode_chunked(tiny_generator, wav, chunk_frames)
    assert chunked_codes.shape == codes.shape == (2, 98)
    # Latents at every frame, chunk edges included, up to float rounding (windows of other
    # lengths and per-chunk distance products may round differently; nothing more).
    torch.testing.assert_close(chunked_latents, latents, rtol=0, atol=1e-6)
    assert (chunked_codes == codes).float().mean() >= 0.98
    assert_nearest_codes(chunked_codes, latents.transpose(1, 2), tiny_generator.quantizer.embed)


def test_the_encoder_never_sees_more_than_a_chunk_and_its_context(tiny_generator, monkeypatch):
    encoder = tiny_generator.encoder
    seen = record_lengths(monkeypatch, encoder, "convolve")
    hop, chunk_frames = encoder.hop_length, 10
    wav = 0.3 * torch.randn(1, hop * 200)
    with torch.inference_mode():
        codes, _ = encode_chunked(tiny_generator, wav, chunk_frames)
    bound = (chunk_frames + encoder.output_conv.pad_right + 2 * encoder.context_frames()) * hop
    assert codes.shape == (1, 200)
    assert len(seen) == 20
    assert max(seen) <= bound < wav.shape[-1] / 10


def _local_decoder(hop: int) -> SimpleNamespace:
    """A stand-in generator whose output at a frame depends on codes within ±1 frame."""

    def decode(codes: torch.Tensor) -> torch.Tensor:
        kernel = torch.tensor([[[1.0, 10.0, 100.0]]])
        smoothed = F.conv1d(codes.float().unsqueeze(1), kernel, padding=1)[:, 0]  # [B, F]
        ramp = torch.linspace(0.0, 1.0, hop)
        return (smoothed.unsqueeze(-1) * (1 + ramp)).flatten(1)  # [B, F · hop]

    return SimpleNamespace(hop_length=hop, decode=decode)


@pytest.mark.parametrize(("chunk_frames", "crossfade"), [(8, 4), (13, 2), (9, 0)])
def test_stitching_is_exact_for_a_decoder_with_local_reach(chunk_frames, crossfade):
    decoder = _local_decoder(hop=5)
    codes = torch.randint(0, 50, (2, 47))
    whole = decoder.decode(codes)
    # Context must cover the cross-fade half plus the decoder's reach of one frame.
    chunked = decode_chunked(
        decoder, codes, chunk_frames, context_frames=3, crossfade_frames=crossfade
    )
    assert chunked.shape == whole.shape == (2, 47 * 5)
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-3)


def test_crossfade_must_fit_in_context_and_chunks():
    decoder = _local_decoder(hop=5)
    codes = torch.zeros(1, 40, dtype=torch.int64)
    with pytest.raises(ValueError, match="crossfade_frames"):
        decode_chunked(decoder, codes, chunk_frames=8, context_frames=1, crossfade_frames=4)
    with pytest.raises(ValueError, match="crossfade_frames"):
        decode_chunked(decoder, codes, chunk_frames=6, context_frames=8, crossfade_frames=4)


def test_one_chunk_decodes_exactly_as_a_whole(tiny_generator):
    codes = torch.randint(0, 512, (2, 30))
    with torch.inference_mode():
        assert torch.equal(decode_chunked(tiny_generator, codes, 30), tiny_generator.decode(codes))


def test_the_decoder_never_sees_more_than_a_chunk_and_its_context(tiny_generator, monkeypatch):
    windows = record_lengths(monkeypatch, tiny_generator, "decode")
    codes = torch.randint(0, 512, (1, 300))
    with torch.inference_mode():
        audio = decode_chunked(tiny_generator, codes, 40, context_frames=10, crossfade_frames=8)
    assert audio.shape == (1, 300 * 600)
    assert torch.isfinite(audio).all()
    assert len(windows) == 8
    assert max(windows) <= 40 + 2 * 10


def test_chunked_encoding_of_a_cosine_codebook_gives_the_same_unit_latents(tiny_config):
    config = tiny_config.model_copy(
        update={"quantizer": tiny_config.quantizer.model_copy(update={"cosine": True})}
    )
    generator = build_generator(config).eval()
    seed_codebook(generator)
    wav = 0.3 * torch.randn(1, 600 * 30)
    with torch.inference_mode():
        codes, latents = generator.encode(wav)
        chunked_codes, chunked_latents = encode_chunked(generator, wav, 7)
    torch.testing.assert_close(latents.norm(dim=1), torch.ones(1, 30))
    torch.testing.assert_close(chunked_latents, latents, rtol=0, atol=1e-6)
    assert (chunked_codes == codes).float().mean() >= 0.95

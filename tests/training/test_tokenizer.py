"""The inference wrapper: shapes and ranges, automatic chunking, input checks."""

import math

import pytest
import torch

from tests.training.conftest import assert_nearest_codes, record_lengths
from training import Tokenizer


def tokenizer_embeddings(generator, wav: torch.Tensor) -> torch.Tensor:
    """Whole-input embeddings `[B, F, D]`."""
    with torch.inference_mode():
        return generator.encoder(wav).transpose(1, 2)


@pytest.fixture
def tokenizer(tiny_generator, tiny_config) -> Tokenizer:
    return Tokenizer(tiny_generator, tiny_config)


def test_properties_of_the_tiny_tokenizer(tokenizer):
    assert tokenizer.sample_rate == 24000
    assert tokenizer.hop_length == 600
    assert tokenizer.frame_rate == 40.0
    assert tokenizer.codebook_size == 512
    assert tokenizer.embedding_dim == 64
    assert tokenizer.to("cpu") is tokenizer
    assert tokenizer.device == torch.device("cpu")


@pytest.mark.parametrize("n_samples", [1, 599, 600, 601, 72000, 240000 + 1])
def test_shapes_follow_ceil_t_over_hop(tokenizer, n_samples):
    wav = 0.3 * torch.randn(2, n_samples)
    n_frames = math.ceil(n_samples / 600)
    codes, embeddings = tokenizer.encode_with_embeddings(wav)
    assert codes.dtype == torch.int64
    assert codes.shape == (2, n_frames)
    assert int(codes.min()) >= 0
    assert int(codes.max()) < 512
    assert embeddings.shape == (2, n_frames, 64)
    audio = tokenizer.decode(codes)
    assert audio.shape == (2, n_frames * 600)
    assert audio.dtype == torch.float32


def test_encode_and_embed_agree_with_the_joint_call(tokenizer):
    wav = 0.3 * torch.randn(1, 30000)
    codes, embeddings = tokenizer.encode_with_embeddings(wav)
    assert torch.equal(tokenizer.encode(wav), codes)
    assert torch.equal(tokenizer.embed(wav), embeddings)


def test_codes_are_the_nearest_codes_of_the_embeddings(tokenizer, tiny_generator):
    codes, embeddings = tokenizer.encode_with_embeddings(0.3 * torch.randn(2, 30000))
    assert_nearest_codes(codes, embeddings, tiny_generator.quantizer.embed)


def test_long_inputs_are_encoded_in_chunks_with_the_same_codes(
    tiny_generator, tiny_config, monkeypatch
):
    wav = 0.3 * torch.randn(1, 600 * 120 + 5)  # 121 frames
    whole = Tokenizer(tiny_generator, tiny_config, chunk_frames=1000).encode(wav)
    seen = record_lengths(monkeypatch, tiny_generator.encoder, "convolve")
    chunked = Tokenizer(tiny_generator, tiny_config, chunk_frames=16).encode(wav)
    assert len(seen) == 8  # ceil(121 / 16) chunks
    assert max(seen) < wav.shape[-1] / 4
    assert (chunked == whole).float().mean() >= 0.98
    embeddings = tokenizer_embeddings(tiny_generator, wav)
    assert_nearest_codes(chunked, embeddings, tiny_generator.quantizer.embed)


@pytest.mark.parametrize(
    "wav",
    [
        torch.zeros(100),
        torch.zeros(1, 0),
        torch.zeros(1, 2, 100),
        torch.zeros(1, 100, dtype=torch.int16),
    ],
)
def test_malformed_waveforms_are_refused(tokenizer, wav):
    with pytest.raises(ValueError, match=r"wav must be a float \[B, T\] tensor"):
        tokenizer.encode(wav)


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (torch.zeros(1, 5), "integer"),
        (torch.zeros(5, dtype=torch.int64), "integer"),
        (torch.tensor([[0, 512]]), r"in \[0, 512\)"),
        (torch.tensor([[-1, 3]]), r"in \[0, 512\)"),
    ],
)
def test_malformed_codes_are_refused(tokenizer, codes, message):
    with pytest.raises(ValueError, match=message):
        tokenizer.decode(codes)


def test_int16_codes_from_a_feature_store_decode(tokenizer):
    codes = torch.randint(0, 512, (1, 12)).to(torch.int16)  # the Zarr store keeps int16 tokens
    assert tokenizer.decode(codes).shape == (1, 12 * 600)

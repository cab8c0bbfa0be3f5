"""SEANet encoder: EnCodec's padding, frames = ceil(T / hop), weight norm, receptive field."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sonotype.config.model import ModelConfig
from tests.training.conftest import preset
from training.model.encoder import PaddedConv1d, SEANetEncoder, reflect_pad


def _encoder(config: ModelConfig) -> SEANetEncoder:
    e = config.encoder
    return SEANetEncoder(e.n_filters, e.strides, e.dimension, n_lstm_layers=e.n_lstm_layers)


@pytest.fixture(scope="module")
def published_encoders() -> dict[str, SEANetEncoder]:
    return {name: _encoder(preset(name)).eval() for name in ("wavtokenizer-40", "wavtokenizer-75")}


def test_reflect_pad_of_long_inputs_is_plain_reflection():
    x = torch.arange(10.0).view(1, 1, 10)
    assert torch.equal(reflect_pad(x, 3, 2), F.pad(x, (3, 2), mode="reflect"))


def test_reflect_pad_of_short_inputs_follows_encodec_pad1d():
    # pad1d: a length-2 input padded by 3 is first extended to [1, 2, 0, 0], reflected to
    # [0, 0, 2, 1, 2, 0, 0, 0, 2, 1], then the 2 extension samples' share is cut from the end.
    x = torch.tensor([[[1.0, 2.0]]])
    assert reflect_pad(x, 3, 3).flatten().tolist() == [0, 0, 2, 1, 2, 0, 0, 0]


@pytest.mark.parametrize(("kernel", "stride"), [(8, 4), (10, 5), (12, 6), (16, 8), (7, 1), (3, 1)])
@pytest.mark.parametrize("length", [1, 2, 5, 13, 64, 97])
def test_padded_conv_gives_ceil_of_length_over_stride(kernel, stride, length):
    conv = PaddedConv1d(2, 3, kernel, stride)
    assert conv(torch.randn(1, 2, length)).shape == (1, 3, math.ceil(length / stride))


def test_padding_is_larger_on_the_left_for_odd_totals():
    conv = PaddedConv1d(1, 1, 10, 5)  # EnCodec: padding_total 5 → 3 left, 2 right
    assert (conv.pad_left, conv.pad_right) == (3, 2)


def test_weight_norm_weight_is_g_times_v_over_its_norm():
    conv = PaddedConv1d(3, 4, 5)
    g = conv.conv.parametrizations.weight.original0
    v = conv.conv.parametrizations.weight.original1
    with torch.no_grad():
        g.copy_(torch.rand(4, 1, 1) + 0.5)
        v.copy_(torch.randn(4, 3, 5))
    norm = v.detach().flatten(1).norm(dim=1).view(4, 1, 1)
    torch.testing.assert_close(conv.conv.weight, g * v / norm, rtol=1e-6, atol=1e-7)


def test_weight_norm_matches_torch_legacy_weight_norm_with_the_same_g_and_v():
    ours = PaddedConv1d(3, 4, 5, stride=2)
    # The reference uses the deprecated old-style weight norm (weight_g / weight_v).
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*weight_norm.* is deprecated")
        legacy = torch.nn.utils.weight_norm(nn.Conv1d(3, 4, 5, 2))
    with torch.no_grad():
        legacy.weight_g.copy_(ours.conv.parametrizations.weight.original0)
        legacy.weight_v.copy_(ours.conv.parametrizations.weight.original1)
        legacy.bias.copy_(ours.conv.bias)
    x = torch.randn(2, 3, 40)
    padded = reflect_pad(x, ours.pad_left, ours.pad_right + (-40 % 2))
    assert legacy.weight_g.shape == (4, 1, 1)
    assert torch.equal(ours(x), legacy(padded))


@pytest.mark.parametrize("name", ["wavtokenizer-40", "wavtokenizer-75"])
def test_published_encoders_give_ceil_t_over_hop_frames_of_512(published_encoders, name):
    encoder = published_encoders[name]
    hop = encoder.hop_length
    with torch.no_grad():
        for n_samples in (1, hop - 1, hop, hop + 1, 3 * hop + 17):
            latents = encoder(torch.randn(1, n_samples))
            assert latents.shape == (1, 512, math.ceil(n_samples / hop))


def test_tiny_encoder_frames_and_latent_size(tiny_config):
    encoder = _encoder(tiny_config)
    with torch.no_grad():
        assert encoder(torch.randn(2, 72000)).shape == (2, 64, 120)
        assert encoder(torch.randn(2, 240000 + 1)).shape == (2, 64, 401)


def test_lstm_has_a_skip_connection():
    encoder = SEANetEncoder(4, [2, 2], 8, n_lstm_layers=1)
    with torch.no_grad():
        for parameter in encoder.lstm.parameters():
            parameter.zero_()
    x = torch.randn(2, 16, 5)
    # With zero weights the LSTM outputs 0 (o = sigmoid(0) · tanh(0)), leaving the skip.
    assert torch.equal(encoder.recur(x)[0], x)


def test_context_frames_bound_the_reach_of_the_convolutions(tiny_config):
    encoder = _encoder(tiny_config).eval()
    hop, context = encoder.hop_length, encoder.context_frames()
    wav = torch.randn(1, 40 * hop)
    frame = 20
    changed = wav.clone()
    # Change everything outside the frame's own samples and `context` frames either side.
    changed[:, : (frame - context) * hop] = torch.randn(1, (frame - context) * hop)
    changed[:, (frame + 1 + context) * hop :] = 0.0
    with torch.no_grad():
        before = encoder.convolve(wav)[..., frame]
        after = encoder.convolve(changed)[..., frame]
        assert torch.equal(before, after)
        # ...while a change inside the frame's own samples does move it.
        changed[:, frame * hop] += 1.0
        assert not torch.equal(before, encoder.convolve(changed)[..., frame])

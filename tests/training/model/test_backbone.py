"""Vocos backbone: AdaLayerNorm, the attention block, ConvNeXt layer scale, shapes."""

import torch
import torch.nn.functional as F

from training.model.backbone import AdaLayerNorm, AttentionBlock, ConvNeXtBlock, VocosBackbone


def test_ada_layer_norm_is_a_plain_layer_norm_then_the_conditions_row():
    norm = AdaLayerNorm(4, 6)
    with torch.no_grad():
        norm.scale.weight.copy_(torch.randn(4, 6))
        norm.shift.weight.copy_(torch.randn(4, 6))
    x = torch.randn(2, 5, 6)
    mean = x.mean(-1, keepdim=True)
    variance = x.var(-1, unbiased=False, keepdim=True)
    normalised = (x - mean) / torch.sqrt(variance + 1e-6)
    for row in (0, 2):
        expected = normalised * norm.scale.weight[row] + norm.shift.weight[row]
        torch.testing.assert_close(norm(x, row), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(norm(x, torch.tensor([row])), expected, rtol=1e-5, atol=1e-5)


def test_ada_layer_norm_starts_as_the_identity_affine():
    norm = AdaLayerNorm(4, 6)
    x = torch.randn(2, 5, 6)
    torch.testing.assert_close(norm(x, 3), F.layer_norm(x, (6,), eps=1e-6))


def test_attention_block_matches_the_reference_formulation():
    block = AttentionBlock(64, 32)
    x = torch.randn(2, 64, 9)
    # The reference (taming-transformers' AttnBlock in 1-D): w = softmax(qᵀk / √C) over keys,
    # h = v·wᵀ, output x + proj_out(h).
    h = block.norm(x)
    q, k, v = block.query(h), block.key(h), block.value(h)  # [B, C, F]
    weights = torch.softmax(torch.bmm(q.permute(0, 2, 1), k) * 64**-0.5, dim=2)
    expected = x + block.output(torch.bmm(v, weights.permute(0, 2, 1)))
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)


def test_convnext_layer_scale_starts_at_one_over_the_depth():
    backbone = VocosBackbone(8, 64, 96, n_layers=4)
    for block in backbone.blocks:
        assert torch.equal(block.layer_scale, torch.full((64,), 0.25))


def test_convnext_with_zero_layer_scale_is_the_identity():
    block = ConvNeXtBlock(32, 64, layer_scale_init=0.0, n_conditions=4)
    x = torch.randn(2, 32, 7)
    assert torch.equal(block(x, 1), x)


def test_backbone_maps_latents_to_hidden_frames():
    backbone = VocosBackbone(16, 64, 96, n_layers=2).eval()
    latents = torch.randn(3, 16, 11)
    hidden = backbone(latents)
    assert hidden.shape == (3, 11, 64)
    # The final LayerNorm (fresh: unit scale, zero shift) normalises every frame.
    torch.testing.assert_close(hidden.mean(-1), torch.zeros(3, 11), atol=1e-5, rtol=0)


def test_condition_rows_select_different_norms():
    backbone = VocosBackbone(16, 64, 96, n_layers=2).eval()
    with torch.no_grad():
        backbone.input_norm.scale.weight[1].mul_(3.0)
    latents = torch.randn(1, 16, 5)
    assert not torch.allclose(backbone(latents, 0), backbone(latents, 1))


def test_backbone_without_conditions_uses_plain_layer_norms():
    backbone = VocosBackbone(16, 64, 96, n_layers=1, n_conditions=None)
    assert isinstance(backbone.input_norm, torch.nn.LayerNorm)
    assert isinstance(backbone.blocks[0].norm, torch.nn.LayerNorm)
    assert backbone(torch.randn(1, 16, 4)).shape == (1, 4, 64)

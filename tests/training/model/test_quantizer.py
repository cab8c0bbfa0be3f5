"""Vector quantizer: nearest codes, a pure forward, the straight-through estimator, EMA hooks."""

import pytest
import torch
import torch.nn.functional as F

from training.model import quantizer as quantizer_module
from training.model.quantizer import VectorQuantizer


def _quantizer(codebook_size: int = 16, dim: int = 4, **kwargs) -> VectorQuantizer:
    vq = VectorQuantizer(codebook_size, dim, **kwargs)
    vq.initialize(torch.randn(codebook_size, dim), torch.ones(codebook_size))
    return vq


def _buffers(vq: VectorQuantizer) -> dict[str, torch.Tensor]:
    return {name: buffer.clone() for name, buffer in vq.named_buffers()}


def test_buffers_keep_the_reference_names_and_dtypes():
    vq = VectorQuantizer(8, 3)
    shapes = {name: (tuple(b.shape), b.dtype) for name, b in vq.named_buffers()}
    assert shapes == {
        "inited": ((1,), torch.float32),
        "cluster_size": ((8,), torch.float32),
        "embed": ((8, 3), torch.float32),
        "embed_avg": ((8, 3), torch.float32),
    }
    assert not vq.is_initialized


def test_codes_are_the_nearest_codebook_vectors():
    vq = _quantizer(64, 8)
    latents = torch.randn(3, 8, 50)
    flat = latents.transpose(1, 2).reshape(-1, 8)
    expected = torch.cdist(flat, vq.embed).argmin(dim=1).view(3, 50)
    codes = vq.encode(latents)
    assert codes.dtype == torch.int64
    assert torch.equal(codes, expected)


def test_distances_in_blocks_give_the_same_codes(monkeypatch):
    vq = _quantizer(64, 8)
    latents = torch.randn(2, 8, 37)
    whole = vq.encode(latents)
    monkeypatch.setattr(quantizer_module, "_DISTANCE_BUDGET", 64 * 5)  # 5 rows at a time
    assert torch.equal(vq.encode(latents), whole)


def test_forward_is_pure_even_in_training_mode():
    vq = _quantizer().train()
    before = _buffers(vq)
    vq(torch.randn(2, 4, 10))
    after = _buffers(vq)
    assert all(torch.equal(before[name], after[name]) for name in before)


def test_forward_returns_codebook_vectors_with_a_straight_through_gradient():
    vq = _quantizer()
    latents = torch.randn(2, 4, 10, requires_grad=True)
    quantized, codes, _ = vq(latents)
    assert torch.allclose(quantized, vq.decode(codes), atol=1e-6)
    weights = torch.randn_like(quantized)
    (quantized * weights).sum().backward()
    assert torch.equal(latents.grad, weights)  # the identity, backwards


def test_commitment_loss_pulls_only_the_encoder():
    vq = _quantizer()
    latents = torch.randn(2, 4, 10, requires_grad=True)
    _, codes, commitment = vq(latents)
    expected = F.mse_loss(latents.detach(), vq.decode(codes))
    torch.testing.assert_close(commitment, expected)
    commitment.backward()
    # d/dx mean((x − q)²) = 2 (x − q) / n
    grad = 2 * (latents.detach() - vq.decode(codes)) / latents.numel()
    torch.testing.assert_close(latents.grad, grad)


def test_decode_looks_codes_up():
    vq = _quantizer(5, 2)
    codes = torch.tensor([[4, 0, 2]])
    assert torch.equal(vq.decode(codes), vq.embed[[4, 0, 2]].t().unsqueeze(0))


def test_assignment_statistics_count_and_sum_per_code():
    vq = _quantizer(3, 2)
    latents = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]]])  # [1, D=2, F=4]
    codes = torch.tensor([[2, 0, 2, 2]])
    counts, sums = vq.assignment_statistics(latents, codes)
    assert counts.tolist() == [1.0, 0.0, 3.0]
    assert sums.tolist() == [[2.0, 20.0], [0.0, 0.0], [8.0, 80.0]]


def test_ema_update_follows_encodec_by_hand():
    vq = VectorQuantizer(2, 1, decay=0.5, eps=1e-5)
    vq.initialize(torch.tensor([[0.0], [10.0]]), torch.tensor([1.0, 1.0]))
    # Code 0 received 3 frames summing to 6, code 1 none.
    vq.ema_update(torch.tensor([3.0, 0.0]), torch.tensor([[6.0], [0.0]]))
    # cluster_size = 0.5·1 + 0.5·3 = 2 and 0.5; embed_avg = 0.5·0 + 0.5·6 = 3 and 0.5·10 = 5.
    assert vq.cluster_size.tolist() == [2.0, 0.5]
    assert vq.embed_avg.flatten().tolist() == [3.0, 5.0]
    total = 2.5
    smoothed = [(n + 1e-5) / (total + 2e-5) * total for n in (2.0, 0.5)]
    expected = [3.0 / smoothed[0], 5.0 / smoothed[1]]
    assert vq.embed.flatten().tolist() == pytest.approx(expected, rel=1e-6)


def test_dead_codes_are_those_below_the_threshold():
    vq = VectorQuantizer(4, 2, threshold_ema_dead_code=2.0)
    vq.initialize(torch.randn(4, 2), torch.tensor([0.0, 1.9, 2.0, 5.0]))
    assert vq.dead_codes().tolist() == [True, True, False, False]


def test_replaced_codes_survive_the_next_ema_update():
    vq = VectorQuantizer(4, 2, decay=0.9, eps=1e-9)
    vq.initialize(torch.zeros(4, 2), torch.tensor([0.0, 0.0, 50.0, 50.0]))
    dead = vq.dead_codes()
    fresh = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    vq.replace_codes(dead, fresh)
    assert torch.equal(vq.embed[dead], fresh)
    vq.ema_update(torch.zeros(4), torch.zeros(4, 2))  # a step where nothing picks them
    torch.testing.assert_close(vq.embed[dead], fresh, rtol=1e-6, atol=1e-6)


def test_hooks_refuse_wrong_shapes():
    vq = VectorQuantizer(4, 2)
    with pytest.raises(ValueError, match=r"expected centroids \(4, 2\)"):
        vq.initialize(torch.zeros(3, 2), torch.zeros(4))
    with pytest.raises(ValueError, match=r"expected vectors of shape \(1, 2\)"):
        vq.replace_codes(torch.tensor([True, False, False, False]), torch.zeros(2, 2))


def test_initialize_marks_the_codebook_ready():
    vq = VectorQuantizer(4, 2)
    vq.initialize(torch.ones(4, 2), torch.full((4,), 3.0))
    assert vq.is_initialized
    assert torch.equal(vq.embed_avg, 3.0 * vq.embed)
    assert vq.cluster_size.tolist() == [3.0] * 4


def test_an_update_that_agrees_with_the_initial_clusters_leaves_the_codebook_alone():
    vq = VectorQuantizer(4, 2, eps=0.0)
    centroids = torch.tensor([[0.0, 1.0], [2.0, 3.0], [-1.0, 5.0], [4.0, -2.0]])
    counts = torch.tensor([3.0, 1.0, 6.0, 2.0])
    vq.initialize(centroids, counts)
    vq.ema_update(counts, centroids * counts.unsqueeze(1))
    torch.testing.assert_close(vq.embed, centroids)


def test_a_cosine_codebook_stays_on_the_unit_sphere_and_picks_the_closest_direction():
    vq = _quantizer(cosine=True)
    unit = torch.ones(16)

    def norms(vectors: torch.Tensor) -> torch.Tensor:
        return vectors.norm(dim=1)

    torch.testing.assert_close(norms(vq.embed), unit)
    latents = vq.prepare(torch.randn(3, 4, 10) * 50)  # scale does not matter any more
    torch.testing.assert_close(latents.norm(dim=1), torch.ones(3, 10))
    codes = vq.encode(latents)
    similarity = torch.einsum("bdf,kd->bfk", latents, vq.embed)
    assert torch.equal(codes, similarity.argmax(dim=-1))

    counts, sums = vq.assignment_statistics(latents, codes)
    vq.ema_update(counts, sums)
    torch.testing.assert_close(norms(vq.embed), unit)
    vq.replace_codes(torch.arange(16) < 3, torch.randn(3, 4) * 7)
    torch.testing.assert_close(norms(vq.embed), unit)


def test_a_euclidean_codebook_leaves_latents_as_they_are():
    vq = _quantizer()
    latents = torch.randn(2, 4, 5) * 3
    assert torch.equal(vq.prepare(latents), latents)

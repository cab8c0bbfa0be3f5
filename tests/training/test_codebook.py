"""Codebook training: reservoir, chunked k-means, one EMA update per step, respawn that sticks."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import training.codebook as codebook_module
import training.loop
from tests.training.trainer_config import tiny_train_config
from training.codebook import (
    CodebookStatistics,
    LatentReservoir,
    initialize_codebook,
    kmeans,
    update_codebook,
    usage_statistics,
)
from training.model import VectorQuantizer


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any torch op returns while active."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for tensor in result if isinstance(result, tuple | list) else (result,):
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.numel())
        return result


def _blobs(n_per_blob: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    offsets = torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    points = torch.cat([centre + offsets.repeat(n_per_blob // 4, 1) for centre in centres])
    return points, centres


def test_kmeans_finds_four_blobs_and_their_sizes():
    points, centres = _blobs(48)
    found, counts = kmeans(points, k=4, iters=10, chunk_rows=7, seed=0)
    order = sorted(range(4), key=lambda i: tuple(found[i].tolist()))
    expected = sorted(range(4), key=lambda i: tuple(centres[i].tolist()))
    assert torch.allclose(found[order], centres[expected], atol=1e-6)
    assert counts.tolist() == [48.0] * 4


def test_chunked_kmeans_equals_one_block_kmeans():
    points = torch.randn(500, 8, generator=torch.Generator().manual_seed(1))
    one = kmeans(points, k=16, iters=8, chunk_rows=500, seed=3)
    chunked = kmeans(points, k=16, iters=8, chunk_rows=37, seed=3)
    assert torch.allclose(one[0], chunked[0], atol=1e-5)
    assert torch.equal(one[1], chunked[1])


def test_kmeans_never_builds_an_n_by_k_by_d_tensor(monkeypatch):
    n, k, dim, chunk = 4096, 256, 8, 64
    points = torch.randn(n, dim)
    blocks: list[tuple[int, ...]] = []
    nearest = codebook_module.nearest_codes

    def recording(block, centroids):
        blocks.append(tuple(block.shape))
        return nearest(block, centroids)

    monkeypatch.setattr(codebook_module, "nearest_codes", recording)
    with _LargestTensor() as tracker:
        kmeans(points, k=k, iters=3, chunk_rows=chunk, seed=0)
    assert max(rows for rows, _ in blocks) == chunk
    # The largest tensor is the size of the points themselves ([N, D]; the [chunk, K]
    # distance blocks are smaller here), far below N·K, let alone N·K·D.
    assert tracker.largest <= max(chunk * k, n * dim)
    assert tracker.largest < n * k // 10


def test_kmeans_with_fewer_points_than_codes_still_fills_the_codebook():
    points = torch.randn(5, 3)
    centroids, counts = kmeans(points, k=8, iters=3, chunk_rows=4, seed=0)
    assert centroids.shape == (8, 3)
    assert counts.sum() == 5


def test_reservoir_keeps_a_uniform_sample_of_the_stream():
    reservoir = LatentReservoir(capacity=100, dim=1, seed=0)
    for start in range(0, 1000, 50):
        frames = torch.arange(start, start + 50, dtype=torch.float32)
        reservoir.add(frames.view(1, 1, 50))  # [B, D, F]
    kept = reservoir.rows.flatten()
    assert reservoir.n_seen == 1000
    assert kept.shape == (100,)
    assert len(set(kept.tolist())) == 100  # no frame twice
    # A uniform sample of 0..999: about half of it below 500 (binomial sd 5).
    assert 30 <= int((kept < 500).sum()) <= 70


def test_initialization_sets_consistent_ema_state():
    quantizer = VectorQuantizer(codebook_size=4, dim=2)
    reservoir = LatentReservoir(capacity=200, dim=2, seed=0)
    points, _ = _blobs(48)
    reservoir.add(points.t().unsqueeze(0))  # [1, D, N]
    initialize_codebook(quantizer, reservoir, iters=10, chunk_rows=64, frames_per_step=20, seed=0)
    assert quantizer.is_initialized
    # 48 of 192 frames per code, in units of 20 frames per step: 5 per code and step.
    assert quantizer.cluster_size.tolist() == [5.0] * 4
    # A step that assigns exactly the same share keeps the codebook where it is.
    codes = quantizer.encode(points.t().unsqueeze(0))
    counts, sums = quantizer.assignment_statistics(points.t().unsqueeze(0), codes)
    before = quantizer.embed.clone()
    quantizer.ema_update(counts * 20 / 192, sums * 20 / 192)
    assert torch.allclose(quantizer.embed, before, atol=1e-4)


def test_dead_codes_are_respawned_and_the_new_codes_survive_and_get_used():
    torch.manual_seed(0)
    quantizer = VectorQuantizer(codebook_size=8, dim=2, threshold_ema_dead_code=0.5)
    # Codes 0-3 sit on the data; codes 4-7 far away where no frame ever goes.
    centroids = torch.cat([torch.randn(4, 2), torch.full((4, 2), 100.0)])
    quantizer.initialize(centroids, torch.tensor([5.0] * 4 + [0.1] * 4))
    latents = torch.randn(1, 2, 64)  # [B, D, F]

    statistics = CodebookStatistics.empty(quantizer, n_candidates=32, seed=0)
    statistics.add(quantizer, latents, quantizer.encode(latents))
    stats = update_codebook(quantizer, statistics, respawn=True, seed=1)
    assert stats["codebook/dead"] == 4
    assert stats["codebook/respawned"] == 4
    new_codes = quantizer.embed[4:].clone()
    assert (new_codes.abs() < 10).all()  # drawn from recent frames
    assert not quantizer.dead_codes().any()

    # The next EMA update (an ordinary step) keeps them where they were put...
    statistics = CodebookStatistics.empty(quantizer, n_candidates=32, seed=0)
    statistics.add(quantizer, latents, quantizer.encode(latents))
    update_codebook(quantizer, statistics, respawn=False, seed=2)
    moved = (quantizer.embed[4:] - new_codes).norm(dim=1)
    assert (moved < 1.0).all()
    # ...and frames now use them.
    assert (quantizer.encode(latents) >= 4).any()


def test_usage_and_perplexity():
    stats = usage_statistics(torch.tensor([5.0, 5.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0]))
    assert float(stats["codebook/usage"]) == 0.5
    assert float(stats["codebook/perplexity"]) == pytest.approx(4.0)


def test_the_ema_update_runs_once_per_optimizer_step(soundscape_out, tmp_path, monkeypatch):
    calls = []
    original = VectorQuantizer.ema_update

    def counting(self, counts, sums):
        calls.append(float(counts.sum()))
        return original(self, counts, sums)

    monkeypatch.setattr(VectorQuantizer, "ema_update", counting)
    config = tiny_train_config("optim.accumulation_steps=3", "optim.max_steps=3")
    training.loop.train(config, shards=soundscape_out, run_dir=str(tmp_path / "run"))
    # One update per step, holding every frame of its 3 micro-batches of 2 crops x 20 frames.
    assert calls == [3 * 2 * 20.0] * 3

"""The 2-D projection keeps well-separated sonotypes apart, with PCA and with t-SNE."""

import numpy as np
import pytest

from analysis.report.embedding_map import project
from tests.analysis.synthetic import blob_centres


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_projection_keeps_blobs_apart(method: str):
    rng = np.random.default_rng(0)
    centres = blob_centres(3, 8)
    labels = np.repeat(np.arange(3), 30)
    rows = (centres[labels] + rng.normal(0, 0.3, (90, 8))).astype(np.float32)
    points, description = project(rows, method, random_state=0)
    assert points.shape == (90, 2)
    assert description.startswith("PCA" if method == "pca" else "t-SNE")
    medians = np.array([np.median(points[labels == j], axis=0) for j in range(3)])
    spread = max(np.abs(points[labels == j] - medians[j]).max() for j in range(3))
    gaps = [np.linalg.norm(medians[a] - medians[b]) for a in range(3) for b in range(a + 1, 3)]
    assert min(gaps) > spread


def test_tsne_perplexity_fits_small_samples():
    rows = np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32)
    points, description = project(rows, "tsne", random_state=0)
    assert points.shape == (10, 2)
    assert description == "t-SNE (perplexity 3)"

"""The 2-D map: a uniform sample of the clustered rows, projected to two dimensions, by sonotype.

The sample comes from the report's single pass over the store (`analysis.report.scan`,
`map_sample` rows), in the clustering's normalised space. PCA is the default: fast,
deterministic, and distances along its axes mean something. t-SNE (scikit-learn)
separates sonotypes more clearly but distorts distances and takes longer; its
perplexity is lowered for small samples, as scikit-learn requires it below the
number of rows.
"""

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from analysis.report import page
from analysis.report.context import MissingInputError, ReportContext
from analysis.report.plots import new_figure, save_figure

_TSNE_PERPLEXITY = 30.0


def project(rows: np.ndarray, method: str, random_state: int) -> tuple[np.ndarray, str]:
    """Rows `[n, dim]` → `[n, 2]` and a description of the projection.

    Args:
        rows: float32 sample rows (n ≥ 3).
        method: "pca" or "tsne".
        random_state: seed (t-SNE and randomised PCA solvers).
    """
    if method == "tsne":
        perplexity = min(_TSNE_PERPLEXITY, (len(rows) - 1) / 3)
        model = TSNE(2, perplexity=perplexity, init="pca", random_state=random_state)
        return model.fit_transform(rows.astype(np.float64)), f"t-SNE (perplexity {perplexity:g})"
    pca = PCA(2, random_state=random_state)
    points = pca.fit_transform(rows.astype(np.float64))
    explained = pca.explained_variance_ratio_.sum()
    return points, f"PCA ({explained:.0%} of the variance on the two axes)"


def build(ctx: ReportContext) -> page.Section:
    """The map section (MissingInputError without clustering, labels or enough rows)."""
    scan = ctx.scan()
    k = ctx.clustering().k
    if len(scan.map_rows) < 3:
        raise MissingInputError(
            f"only {len(scan.map_rows)} labelled rows in the store: too few for a map"
        )
    points, how = project(scan.map_rows, ctx.config.map_method, ctx.config.random_state)
    colours = np.asarray(ctx.colours())
    figure = new_figure(7.5, 6.0)
    axes = figure.add_subplot()
    axes.scatter(
        points[:, 0], points[:, 1], s=5, c=colours[scan.map_labels], alpha=0.6, linewidths=0
    )
    for sonotype in np.unique(scan.map_labels):
        centre = np.median(points[scan.map_labels == sonotype], axis=0)
        axes.annotate(
            str(sonotype),
            centre,
            fontsize=9,
            fontweight="bold",
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colours[sonotype], "lw": 1.5},
        )
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(how, fontsize=10)
    image = save_figure(ctx.assets, "embedding-map", figure)
    level = ctx.clustering().level
    caption = (
        f"{len(scan.map_rows):,} {level}s drawn uniformly from the {scan.n_labelled:,} labelled "
        f"ones, coloured by sonotype; numbers mark each sonotype's median position."
    )
    body = page.figure(image, "2-D map of embeddings coloured by sonotype", caption)
    if len(np.unique(scan.map_labels)) < k:
        body += page.paragraph(
            f"{k - len(np.unique(scan.map_labels))} sonotypes have no row in the sample."
        )
    return page.Section("map", "Embedding map", body)

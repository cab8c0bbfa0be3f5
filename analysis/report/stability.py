"""Label stability across clustering versions, and the choice of k.

From the clustering's `history.json` (one entry per fit or update; see
`analysis.clusters_io.HistoryEntry`): a table of versions, and for each update two
different things: the share of previously seen rows whose stored label was rewritten,
and the share the new centroids would place in another sonotype (the map's drift,
whether or not labels were rewritten); the sonotype sizes of each
version, and each sonotype's centroid drift at the latest update. From
`stats/k_selection.parquet`: inertia and silhouette over a range of k.
"""

import numpy as np

from analysis.clusters_io import K_SELECTION_FILE
from analysis.report import page
from analysis.report.assets import Image
from analysis.report.context import ReportContext
from analysis.report.plots import new_figure, save_figure
from sonotype.fsio import exists, read_parquet


def _number(value: object, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def reassigned(entry: dict) -> float | None:
    """Share of old rows the version's centroids would move (`churn` in older histories)."""
    return entry.get("reassigned", entry.get("churn"))


def _share(value: float | None, method: str | None = None) -> str:
    if value is None:
        return "–"
    return f"{value:.2%}" + (f" ({method})" if method else "")


def version_rows(history: list[dict]) -> list[list[str]]:
    """One table row per version: version, kind, created, rows, new rows, labels rewritten,
    rows that would move, drift mean and max, inertia."""
    rows = []
    for entry in history:
        method = entry.get("reassigned_method", entry.get("churn_method", "?"))
        rows.append(
            [
                str(entry.get("version", "?")),
                str(entry.get("kind", "?")),
                str(entry.get("created", ""))[:16].replace("T", " "),
                _number(entry.get("n_rows")),
                _number(entry.get("n_new_rows")),
                _share(entry.get("relabelled")),
                _share(reassigned(entry), method),
                _number(entry.get("drift_mean")),
                _number(entry.get("drift_max")),
                _number(entry.get("inertia")),
            ]
        )
    return rows


def size_shares(history: list[dict], k: int) -> tuple[list[int], np.ndarray]:
    """Versions that recorded sizes and each sonotype's share of their rows: `[n_versions, k]`."""
    versions, shares = [], []
    for entry in history:
        sizes = entry.get("sizes")
        if sizes and len(sizes) == k and sum(sizes) > 0:
            versions.append(int(entry["version"]))
            shares.append(np.asarray(sizes, np.float64) / sum(sizes))
    return versions, np.asarray(shares).reshape(len(shares), k)


def growth_rows(history: list[dict], k: int) -> list[list[str]]:
    """Each sonotype's share of the rows before the latest update and of the rows it
    added, largest change first: which sonotypes the new data grew or shrank.

    Empty when the latest version is not an update, lacks sizes, or relabelled every
    row (then the old rows' labels changed too and the difference is not the new
    rows').
    """
    if len(history) < 2 or history[-1].get("kind") != "update" or history[-1].get("relabel_all"):
        return []
    before, after = history[-2].get("sizes"), history[-1].get("sizes")
    if not before or not after or len(after) != k or len(before) > k:
        return []
    # sonotypes the update opened had no rows before it
    old = np.pad(np.asarray(before, np.float64), (0, k - len(before)))
    new = np.asarray(after, np.float64) - old
    if old.sum() <= 0 or new.sum() <= 0:
        return []
    old_share, new_share = old / old.sum(), new / new.sum()
    change = new_share - old_share
    order = np.argsort(-np.abs(change), kind="stable")
    opened = set(history[-1].get("new_sonotypes", []))
    return [
        [
            f"{j} (new)" if j in opened else str(j),
            f"{old_share[j]:.1%}",
            f"{new_share[j]:.1%}",
            f"{100 * change[j]:+.1f}",
        ]
        for j in order
    ]


def _stability_image(ctx: ReportContext, history: list[dict], k: int) -> Image | None:
    versions, shares = size_shares(history, k)
    updates = [e for e in history if e.get("kind") == "update" and reassigned(e) is not None]
    drift = next((e.get("drift") for e in reversed(history) if e.get("drift")), None)
    panels = [bool(versions), bool(updates), drift is not None]
    if not any(panels):
        return None
    figure = new_figure(3.6 * sum(panels) + 0.4, 3.0)
    colours = ctx.colours()
    index = 1
    if versions:
        axes = figure.add_subplot(1, sum(panels), index)
        bottom = np.zeros(len(versions))
        labels = [f"v{v}" for v in versions]
        for sonotype in range(k):
            axes.bar(labels, shares[:, sonotype], 0.7, bottom, color=colours[sonotype])
            bottom += shares[:, sonotype]
        axes.set_title("sonotype shares per version", fontsize=9)
        axes.set_ylim(0, 1)
        index += 1
    if updates:
        axes = figure.add_subplot(1, sum(panels), index)
        labels = [f"v{e['version']}" for e in updates]
        moved = [100 * reassigned(e) for e in updates]
        rewritten = [100 * (e.get("relabelled") or 0.0) for e in updates]
        positions = np.arange(len(updates))
        axes.bar(positions - 0.2, rewritten, 0.4, label="labels rewritten")
        axes.bar(positions + 0.2, moved, 0.4, label="would move")
        axes.set_xticks(positions, labels)
        axes.set_ylim(0, max(1.0, 1.2 * max(moved + rewritten)))
        axes.set_title("% of old rows per update", fontsize=9)
        axes.legend(fontsize=7, frameon=False)
        index += 1
    if drift is not None:
        axes = figure.add_subplot(1, sum(panels), index)
        axes.bar(range(len(drift)), drift, color=colours[: len(drift)])
        axes.set_xticks(range(len(drift)))
        axes.set_title("centroid drift at the latest update", fontsize=9)
        axes.set_xlabel("sonotype", fontsize=8)
    for axes in figure.axes:
        axes.tick_params(labelsize=7)
    return save_figure(ctx.assets, "stability", figure)


def _k_selection_image(ctx: ReportContext, k: int) -> Image | None:
    path = ctx.clustering().stats_path(K_SELECTION_FILE)
    if not exists(path):
        return None
    table = read_parquet(path).to_pandas().sort_values("k")
    if table.empty:
        return None
    figure = new_figure(7.0, 2.8)
    left, right = figure.subplots(1, 2)
    left.plot(table["k"], table["inertia_per_row"], "o-")
    left.set_title("inertia per row (lower: tighter)", fontsize=9)
    right.plot(table["k"], table["silhouette"], "o-")
    right.set_title("silhouette (higher: better separated)", fontsize=9)
    for axes in (left, right):
        axes.axvline(k, color="grey", linestyle="--", linewidth=1)
        axes.set_xscale("log", base=2)
        axes.set_xticks(table["k"], [str(v) for v in table["k"]])
        axes.set_xlabel("k", fontsize=8)
        axes.tick_params(labelsize=7)
    return save_figure(ctx.assets, "k-selection", figure)


def build(ctx: ReportContext) -> page.Section:
    """The stability section (raises MissingInputError without a clustering)."""
    clustering = ctx.clustering()
    history, k = clustering.history, clustering.k
    header = ["version", "kind", "created", "rows", "new rows", "labels rewritten"]
    header += ["would move", "drift mean", "drift max", "inertia"]
    parts = [
        page.paragraph(
            "Each update (a new year of data) continues the model and matches the new "
            "centroids to the old ones, so sonotype numbers keep their meaning. Two "
            'different shares of the already-seen rows: "labels rewritten" is how many '
            "stored labels an update actually changed (none unless it relabels everything); "
            '"would move" is how many the new centroids would place in another sonotype, '
            "i.e. how far the map drifted. Drift is how far each centroid moved (in the "
            "clustering's normalised space).",
            lead=True,
        ),
        page.table(header, version_rows(history), numeric=[3, 4, 5, 6, 7, 8, 9]),
    ]
    if len(history) < 2:
        parts.append(page.paragraph("Only one version so far: stability shows after an update."))
    growth = growth_rows(history, k)
    if growth:
        parts.append(page.heading("What the latest update grew or shrank"))
        parts.append(
            page.table(
                ["sonotype", "share before", "share of the new rows", "change (points)"],
                growth,
                numeric=[1, 2, 3],
            )
        )
    image = _stability_image(ctx, history, k)
    if image is not None:
        parts.append(
            page.figure(
                image, "sonotype shares, rewritten and moving rows, and drift across versions"
            )
        )
    k_image = _k_selection_image(ctx, k)
    if k_image is not None:
        parts.append(page.heading("Choice of k"))
        parts.append(
            page.figure(
                k_image,
                "inertia and silhouette over k",
                f"k-means on the clustering's sample for a range of k; dashed line: k={k} in use.",
            )
        )
    return page.Section("stability", "Label stability", "".join(parts))

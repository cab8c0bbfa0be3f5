"""Quality: how the sonotypes scored against annotations, beside the log-mel yardstick.

Shown when `sonotype evaluate` has written `clusters/NAME/evaluation/scores.parquet`.
The page states plainly whether the sonotypes reach the stronger of the two
yardstick forms, so that nobody reads a map of sonotypes without knowing how far to
trust it.
"""

import pandas as pd
from matplotlib.axes import Axes

from analysis.report import page
from analysis.report.assets import Image
from analysis.report.context import MissingInputError, ReportContext
from analysis.report.plots import new_figure, save_figure
from sonotype.contracts import EVALUATION_SCORES_FILE
from sonotype.fsio import exists, join, read_parquet

SCORES = ("nmi", "ari", "v_measure", "purity", "probe")
SONOTYPES_PREFIX = "sonotypes"


def verdict(scores: pd.DataFrame, unit: str) -> str:
    """One sentence: the sonotypes against the stronger yardstick form, by NMI and ARI."""
    rows = scores[scores["unit"] == unit]
    ours = rows[rows["method"].str.startswith(SONOTYPES_PREFIX)]
    yardstick = rows[~rows["method"].str.startswith(SONOTYPES_PREFIX)]
    if ours.empty or yardstick.empty:
        return ""
    best = yardstick.loc[yardstick["nmi"].idxmax()]
    mine = ours.iloc[0]
    figures = (
        f"NMI {mine['nmi']:.2f} vs {best['nmi']:.2f}, ARI {mine['ari']:.2f} vs {best['ari']:.2f}"
    )
    ahead = [score.upper() for score in ("nmi", "ari") if mine[score] >= best[score]]
    if len(ahead) == 2:
        return (
            f"Per {unit}, the sonotypes reach or pass the stronger yardstick "
            f"({best['method']}): {figures}."
        )
    if ahead:
        behind = "ARI" if ahead == ["NMI"] else "NMI"
        return (
            f"Per {unit}, the sonotypes trail the stronger yardstick ({best['method']}) on "
            f"{behind} and pass it on {ahead[0]}: {figures}."
        )
    return (
        f"Per {unit}, the sonotypes trail the stronger yardstick ({best['method']}): {figures}. "
        "A plain spectrogram average separates these annotations better than this clustering."
    )


BARS = ("nmi", "ari", "probe")


def draw_score_bars(axes: Axes, rows: pd.DataFrame) -> None:
    """NMI, ARI and probe of each method of one unit, side by side (scores as written by
    `sonotype evaluate`); the evaluation's own figure draws the same bars."""
    width = 0.8 / len(rows)
    for offset, row in enumerate(rows.itertuples()):
        positions = [i + offset * width for i in range(len(BARS))]
        axes.bar(positions, [getattr(row, name) for name in BARS], width, label=row.method)
    centres = [i + width * (len(rows) - 1) / 2 for i in range(len(BARS))]
    axes.set_xticks(centres, ["NMI", "ARI", "probe"])
    axes.set_ylim(0, 1)
    axes.set_title(f"per {rows['unit'].iloc[0]} (k = {int(rows['k'].iloc[0])})", fontsize=9)


def _chart(ctx: ReportContext, scores: pd.DataFrame) -> Image:
    units = list(dict.fromkeys(scores["unit"]))
    figure = new_figure(4.2 * len(units), 3.0)
    for index, unit in enumerate(units):
        axes = figure.add_subplot(1, len(units), index + 1)
        draw_score_bars(axes, scores[scores["unit"] == unit])
        axes.tick_params(labelsize=7)
    figure.axes[0].legend(fontsize=7, loc="upper left")
    return save_figure(ctx.assets, "quality", figure)


def build(ctx: ReportContext) -> page.Section:
    """The quality section (raises MissingInputError before `sonotype evaluate` ran)."""
    path = join(ctx.layout.evaluation(ctx.name), EVALUATION_SCORES_FILE)
    if not exists(path):
        raise MissingInputError(
            f"No evaluation of clustering {ctx.name!r} yet: run `sonotype evaluate "
            f"{ctx.out} --name {ctx.name} --annotations FILE` with annotations of a few "
            "recordings to see how well the sonotypes match known sounds."
        )
    scores = read_parquet(path).to_pandas()
    first = scores.iloc[0]
    parts = [
        page.paragraph(
            f"Scored against annotations of {int(first['n_recordings'])} recordings "
            f"({int(first['n_labels'])} labels). Each method groups the same windows into "
            f"k = {int(first['k'])} clusters; the yardstick is k-means on each window's "
            "mean log-mel spectrum and on its spectral shape (mean level removed). NMI, ARI, "
            "V-measure and purity score the clusters; the probe (a linear classifier, "
            "cross-validated across recordings) scores whether the features carry the "
            "labels at all; chance is the share of the most common label.",
            lead=True,
        )
    ]
    for unit in dict.fromkeys(scores["unit"]):
        sentence = verdict(scores, unit)
        if sentence:
            parts.append(page.notice(sentence, warning="trail" in sentence))
    header = ["unit", "method", "windows", *SCORES, "chance"]
    rows = [
        [row["unit"], row["method"], f"{int(row['n_windows']):,}"]
        + [f"{row[name]:.3f}" for name in (*SCORES, "chance")]
        for _, row in scores.iterrows()
    ]
    parts.append(page.table(header, rows, numeric=list(range(2, len(header)))))
    parts.append(page.figure(_chart(ctx, scores), "scores of sonotypes and yardstick"))
    return page.Section("quality", "Quality", "".join(parts))

"""The evaluation's figure: scores side by side, and what each label became."""

import io

import pandas as pd

from analysis.report.plots import DPI, new_figure
from analysis.report.quality import draw_score_bars
from sonotype.fsio import write_bytes_atomic


def draw_quality(scores: pd.DataFrame, windows: pd.DataFrame, url: str) -> None:
    """Write a PNG: per-window NMI, ARI and probe of every method; labels × sonotypes.

    Args:
        scores: `Evaluation.scores`.
        windows: scored windows with `label` and `sonotype`.
        url: where the PNG goes.
    """
    figure = new_figure(11, 4)
    bars, table = figure.subplots(1, 2, width_ratios=[1, 1.3])
    draw_score_bars(bars, scores[scores["unit"] == scores["unit"].iloc[0]])
    bars.legend(fontsize="small", loc="upper left")
    counts = pd.crosstab(windows["label"], windows["sonotype"])
    shares = counts.to_numpy() / counts.to_numpy().sum(axis=1, keepdims=True)
    image = table.imshow(shares, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    table.set_xticks(range(counts.shape[1]), [str(c) for c in counts.columns])
    table.set_yticks(range(counts.shape[0]), [str(i) for i in counts.index])
    table.set_xlabel("sonotype")
    table.set_title("share of each label's windows per sonotype")
    figure.colorbar(image, ax=table)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    write_bytes_atomic(url, buffer.getvalue())

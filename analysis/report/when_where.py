"""When and where: hour × date heatmaps per sonotype and site, composition per site, diel patterns.

Everything here comes from the clustering's occurrence table (site, date, hour,
sonotype, n, seconds, share) and token-entropy table, with dates and hours in the
report's time zone (`ReportContext.statistics`). The tables are small (sites × dates
× hours × k rows), so no pass over the store is needed unless the zone differs.

Heatmap cells hold the share of the labelled audio of that site, date and hour that
belongs to the sonotype. A cell with no labelled audio at all (the recorder was off,
or every segment was dropped) is grey, not 0: absence of data is not absence of the
sound. Columns are the dates with any labelled audio (at any site): deployments leave
months-long gaps between seasons or years, which would otherwise squeeze the data
into slivers; a white line marks each gap. The colour scale of a sonotype is capped at
the 99th percentile of its non-zero cells, shared by its sites, so one exceptional hour
does not wash out the rest.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import colormaps

from analysis.clusters_io import TOKEN_USAGE_FILE
from analysis.report import page
from analysis.report.assets import Image
from analysis.report.context import MissingInputError, ReportContext
from analysis.report.plots import new_figure, save_figure
from sonotype.fsio import exists, read_parquet

_CAP_PERCENTILE = 99.0
_NO_DATA = "#e4e4e4"


@dataclass(frozen=True)
class Heatmap:
    """Share of one sonotype per site × hour of day × date.

    Attributes:
        sites: site names (panel order).
        dates: the calendar dates of the columns (dates with data, in order).
        values: float64 `[n_sites, 24, n_dates]`; NaN where nothing labelled was recorded.
        cap: the colour scale's upper bound.
    """

    sites: list[str]
    dates: list[pd.Timestamp]
    values: np.ndarray
    cap: float


def sites_of(occurrence: pd.DataFrame) -> list[str]:
    """Site names in sorted order."""
    return sorted(str(site) for site in occurrence["site"].unique())


def dates_of(occurrence: pd.DataFrame) -> list[pd.Timestamp]:
    """The calendar dates in the table, in order."""
    return sorted(pd.to_datetime(occurrence["date"]).unique())


def gaps(dates: list[pd.Timestamp]) -> list[int]:
    """Column positions after which the next date is not the following day."""
    return [i for i in range(len(dates) - 1) if (dates[i + 1] - dates[i]).days > 1]


def heatmap(occurrence: pd.DataFrame, sonotype: int) -> Heatmap:
    """The heatmap of one sonotype (see the module docstring)."""
    sites, dates = sites_of(occurrence), dates_of(occurrence)
    site_index = {site: i for i, site in enumerate(sites)}
    date_index = {date: i for i, date in enumerate(dates)}
    values = np.full((len(sites), 24, len(dates)), np.nan)
    rows_site = occurrence["site"].astype(str).map(site_index).to_numpy()
    rows_day = pd.to_datetime(occurrence["date"]).map(date_index).to_numpy()
    rows_hour = occurrence["hour"].to_numpy().astype(np.int64)
    values[rows_site, rows_hour, rows_day] = 0.0
    mine = (occurrence["sonotype"] == sonotype).to_numpy()
    values[rows_site[mine], rows_hour[mine], rows_day[mine]] = occurrence["share"].to_numpy()[mine]
    positive = values[values > 0]
    cap = float(np.percentile(positive, _CAP_PERCENTILE)) if positive.size else 1.0
    return Heatmap(sites, dates, values, cap)


def composition(occurrence: pd.DataFrame, k: int) -> tuple[list[str], np.ndarray]:
    """Share of each site's labelled seconds per sonotype: sites and `[n_sites, k]`."""
    sites = sites_of(occurrence)
    table = occurrence.pivot_table(
        index="site", columns="sonotype", values="seconds", aggfunc="sum", fill_value=0.0
    )
    table = table.reindex(index=sites, columns=range(k), fill_value=0.0)
    totals = table.sum(axis=1).replace(0, np.nan)
    return sites, table.div(totals, axis=0).fillna(0.0).to_numpy()


def diel_composition(occurrence: pd.DataFrame, site: str, k: int) -> np.ndarray:
    """Share of a site's labelled seconds per sonotype at each hour of day: `[24, k]`."""
    mine = occurrence[occurrence["site"].astype(str) == site]
    table = mine.pivot_table(
        index="hour", columns="sonotype", values="seconds", aggfunc="sum", fill_value=0.0
    ).reindex(index=range(24), columns=range(k), fill_value=0.0)
    totals = table.sum(axis=1).replace(0, np.nan)
    return table.div(totals, axis=0).fillna(0.0).to_numpy()


def _date_ticks(dates: list[pd.Timestamp]) -> tuple[list[int], list[str]]:
    step = max(1, math.ceil(len(dates) / 5))
    positions = list(range(0, len(dates), step))
    return positions, [dates[p].strftime("%Y-%m-%d") for p in positions]


def _heatmap_image(ctx: ReportContext, sonotype: int, data: Heatmap) -> Image:
    columns = min(4, len(data.sites))
    rows = math.ceil(len(data.sites) / columns)
    panel_width = min(5.0, max(2.4, 0.02 * len(data.dates) + 2.0))
    figure = new_figure(panel_width * columns + 0.8, 2.2 * rows + 0.3)
    cmap = colormaps["viridis"].with_extremes(bad=_NO_DATA)
    positions, labels = _date_ticks(data.dates)
    shown = None
    for index, site in enumerate(data.sites):
        axes = figure.add_subplot(rows, columns, index + 1)
        shown = axes.imshow(
            np.ma.masked_invalid(data.values[index]),
            aspect="auto",
            origin="lower",
            cmap=cmap,
            vmin=0.0,
            vmax=data.cap,
            interpolation="nearest",
        )
        for gap in gaps(data.dates):
            axes.axvline(gap + 0.5, color="white", linewidth=1.5)
        axes.set_title(site, fontsize=9)
        axes.set_yticks([0, 6, 12, 18, 23])
        axes.set_xticks(positions, labels, fontsize=7, rotation=20)
        axes.tick_params(labelsize=7)
        if index % columns == 0:
            axes.set_ylabel(f"hour ({ctx.config.timezone})", fontsize=7)
    if shown is not None:
        bar = figure.colorbar(shown, ax=figure.axes, shrink=0.9, pad=0.01)
        bar.ax.tick_params(labelsize=7)
        bar.set_label("share", fontsize=7)
    return save_figure(ctx.assets, f"heatmap-s{sonotype:04d}", figure)


def _stacked(axes, positions, shares: np.ndarray, colours: list[str], horizontal: bool) -> None:
    start = np.zeros(shares.shape[0])
    for sonotype in range(shares.shape[1]):
        if not shares[:, sonotype].any():
            continue
        draw = axes.barh if horizontal else axes.bar
        draw(
            positions, shares[:, sonotype], 0.8, start, color=colours[sonotype], label=str(sonotype)
        )
        start += shares[:, sonotype]


def _composition_image(ctx: ReportContext, occurrence: pd.DataFrame, k: int) -> Image:
    sites, shares = composition(occurrence, k)
    colours = ctx.colours()
    figure = new_figure(8.0, max(1.8, 0.45 * len(sites) + 1.2))
    axes = figure.add_subplot()
    _stacked(axes, sites, shares, colours, horizontal=True)
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of labelled audio")
    axes.invert_yaxis()
    if k <= 20:
        axes.legend(
            title="sonotype", fontsize=7, ncols=2, loc="center left", bbox_to_anchor=(1, 0.5)
        )
    return save_figure(ctx.assets, "composition-per-site", figure)


def _diel_image(ctx: ReportContext, occurrence: pd.DataFrame, k: int) -> Image:
    sites = sites_of(occurrence)
    columns = min(3, len(sites))
    rows = math.ceil(len(sites) / columns)
    figure = new_figure(3.6 * columns + 0.6, 2.4 * rows)
    colours = ctx.colours()
    for index, site in enumerate(sites):
        axes = figure.add_subplot(rows, columns, index + 1)
        _stacked(axes, range(24), diel_composition(occurrence, site, k), colours, False)
        axes.set_title(site, fontsize=9)
        axes.set_ylim(0, 1)
        axes.set_xticks(range(0, 24, 6))
        axes.tick_params(labelsize=7)
        axes.set_xlabel(f"hour ({ctx.config.timezone})", fontsize=7)
    return save_figure(ctx.assets, "diel-composition", figure)


def _entropy_image(ctx: ReportContext, entropy: pd.DataFrame) -> Image:
    figure = new_figure(5.4, 2.8)
    axes = figure.add_subplot()
    for site in sorted(entropy["site"].astype(str).unique()):
        mine = entropy[entropy["site"].astype(str) == site].set_index("hour")["entropy_bits"]
        # Hours without audio are gaps in the line, not slopes between their neighbours.
        by_hour = mine.groupby(level=0).mean().reindex(range(24))
        axes.plot(range(24), by_hour.to_numpy(), marker="o", markersize=3, label=site)
    axes.set_xticks(range(0, 24, 3))
    axes.set_xlabel(f"hour of day ({ctx.config.timezone})")
    axes.set_ylabel("token entropy (bits)")
    axes.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    return save_figure(ctx.assets, "token-entropy", figure)


def build(ctx: ReportContext) -> page.Section:
    """The when-and-where section (raises MissingInputError without a clustering)."""
    k = ctx.clustering().k
    tables = ctx.statistics()
    occurrence = tables["occurrence"]
    if occurrence.empty:
        raise MissingInputError(
            "the occurrence table is empty: no labelled row has a known time "
            "(segments without start_time cannot be placed in the day)"
        )
    zone = ctx.config.timezone
    parts = [
        page.paragraph(
            f"Dates and hours of day in {zone}. Shares are of the labelled audio of each "
            "site and hour.",
            lead=True,
        ),
        page.heading("Sonotype composition per site"),
        page.figure(_composition_image(ctx, occurrence, k), "sonotype composition per site"),
        page.heading("Through the day, per site"),
        page.figure(
            _diel_image(ctx, occurrence, k),
            "share of each sonotype per hour of day and site",
            "Each bar: the sonotype mix of that hour of the day, all dates together.",
        ),
    ]
    totals = occurrence.groupby("sonotype")["seconds"].sum().sort_values(ascending=False)
    chosen = sorted(int(s) for s in totals.index[: ctx.config.max_heatmap_sonotypes])
    parts.append(page.heading("Hour of day × date, per sonotype and site"))
    parts.append(
        page.paragraph(
            "Colour: the sonotype's share of the labelled audio of that hour; grey: nothing "
            "recorded (or nothing kept) at that site. Only dates with data are shown; a white "
            f"line marks a gap. Scales are capped at the {_CAP_PERCENTILE:g}th percentile of "
            "each sonotype's non-zero cells."
        )
    )
    if len(totals) > len(chosen):
        parts.append(
            page.notice(
                f"Showing the {len(chosen)} most frequent of {len(totals)} sonotypes "
                f"(max_heatmap_sonotypes={ctx.config.max_heatmap_sonotypes})."
            )
        )
    heatmaps = []
    for sonotype in chosen:
        data = heatmap(occurrence, sonotype)
        heatmaps.append(
            page.figure(
                _heatmap_image(ctx, sonotype, data),
                f"hour by date heatmap of sonotype {sonotype}",
                f"Sonotype {sonotype}: colour scale up to {data.cap:.0%}.",
            )
        )
    parts.append('<div class="figures">' + "".join(heatmaps) + "</div>")
    entropy = tables["token_entropy"]
    if not entropy.empty:
        parts.append(page.heading("Acoustic diversity through the day"))
        figures = page.figure(
            _entropy_image(ctx, entropy),
            "token entropy per hour of day and site",
            "Shannon entropy of the tokenizer's codes per hour: higher means more varied "
            "sound (more different token types in use).",
        )
        usage = _usage_figure(ctx)
        parts.append(f'<div class="figures">{figures}{usage}</div>')
    return page.Section("when-where", "When and where", "".join(parts))


def token_ranks(usage: pd.DataFrame) -> np.ndarray:
    """Frames per token over all sites and hours, most used first (tokens never used left out)."""
    counts = usage.groupby("token")["n"].sum().to_numpy()
    return np.sort(counts[counts > 0])[::-1]


def _usage_figure(ctx: ReportContext) -> str:
    """Rank-frequency plot of the codebook over the whole dataset (empty without the table)."""
    path = ctx.clustering().stats_path(TOKEN_USAGE_FILE)
    if not exists(path):
        return ""
    ranks = token_ranks(read_parquet(path, columns=["token", "n"]).to_pandas())
    if not len(ranks):
        return ""
    size = ctx.store().codebook_size
    figure = new_figure(4.2, 2.8)
    axes = figure.add_subplot()
    axes.loglog(np.arange(1, len(ranks) + 1), ranks / ranks.sum(), marker=".", linewidth=1)
    axes.set_xlabel("token rank")
    axes.set_ylabel("share of frames")
    axes.set_title(f"{len(ranks):,} of {size:,} codes used", fontsize=10)
    image = save_figure(ctx.assets, "codebook-usage", figure)
    return page.figure(
        image,
        "share of frames per token, by rank",
        "Codebook usage over the encoded data: a steep curve means few codes carry most frames.",
    )

"""Dataset overview: hours recorded per site and year, QC outcomes, failed and ignored files.

Reads `OUT/catalog/recordings.parquet` (a few columns) and the hours / QC tables of
`sonotype shards stats` (`catalog/stats_hours.parquet`, `stats_qc.parquet`). When
those tables are missing or were computed on another clock than the report's, they
are recomputed in memory from the segment catalog (one streaming pass,
`shards.stats.compute_shard_stats`); nothing is written to the catalog.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from analysis.report import page
from analysis.report.assets import Image
from analysis.report.context import MissingInputError, ReportContext
from analysis.report.plots import new_figure, save_figure
from shards.catalog import read_recordings
from shards.stats import HOURS_FILE, QC_FILE, compute_shard_stats
from sonotype.contracts import (
    RECORDING_STATUS_FAILED,
    RECORDING_STATUS_IGNORED,
    RECORDING_STATUS_OK,
    OutputLayout,
)
from sonotype.fsio import exists, join, url_to_fs

logger = logging.getLogger(__name__)

UNKNOWN = "(unknown)"
_IGNORED_LISTED = 50


@dataclass(frozen=True)
class Grid:
    """A labelled matrix: `values[i, j]` for row `rows[i]` and column `columns[j]`."""

    rows: list[str]
    columns: list[str]
    values: np.ndarray


def _label(value: object) -> str:
    return UNKNOWN if value is None else str(value)


def _order(labels: set[str]) -> list[str]:
    return sorted(labels, key=lambda label: (label == UNKNOWN, label))


def grid(pairs: dict[tuple[str, str], float], rows: list[str], columns: list[str]) -> Grid:
    """A Grid from (row, column) → value; absent pairs are 0."""
    values = np.zeros((len(rows), len(columns)))
    for (row, column), value in pairs.items():
        values[rows.index(row), columns.index(column)] += value
    return Grid(rows, columns, values)


def hours_by_site_and_year(hours: pa.Table) -> Grid:
    """Hours of kept audio, sites × years (unknown site or year last)."""
    pairs: dict[tuple[str, str], float] = defaultdict(float)
    for row in hours.select(["site", "year", "hours_kept"]).to_pylist():
        pairs[(_label(row["site"]), _label(row["year"]))] += row["hours_kept"] or 0.0
    return grid(pairs, _order({s for s, _ in pairs}), _order({y for _, y in pairs}))


def hours_by_hour_of_day(hours: pa.Table) -> Grid:
    """Hours of kept audio, sites × the 24 hours of the day (rows of unknown hour left out)."""
    pairs: dict[tuple[str, str], float] = defaultdict(float)
    for row in hours.select(["site", "hour_of_day", "hours_kept"]).to_pylist():
        if row["hour_of_day"] is not None:
            pairs[(_label(row["site"]), f"{row['hour_of_day']:02d}")] += row["hours_kept"] or 0.0
    return grid(pairs, _order({s for s, _ in pairs}), [f"{h:02d}" for h in range(24)])


def qc_outcomes(qc: pa.Table) -> tuple[Grid, Grid]:
    """Segments and hours per site × outcome: `kept`, then `dropped:<reason>` by reason."""
    counts: dict[tuple[str, str], float] = {}
    hours: dict[tuple[str, str], float] = {}
    for row in qc.to_pylist():
        measure = row["measure"]
        if measure == "kept" or measure.startswith("dropped:"):
            key = (_label(row["site"]), measure)
            counts[key] = float(row["n_segments"])
            hours[key] = float(row["hours"])
    sites = _order({s for s, _ in counts})
    outcomes = sorted({m for _, m in counts}, key=lambda m: (m != "kept", m))
    return grid(counts, sites, outcomes), grid(hours, sites, outcomes)


def dataset_tables(out: str, timezone: str) -> tuple[pa.Table, pa.Table, str]:
    """The hours and QC tables in `timezone`, and where they came from (for the caption).

    Raises:
        MissingInputError: there is no segment catalog.
    """
    layout = OutputLayout(out)
    hours_path = join(layout.catalog_dir, HOURS_FILE)
    qc_path = join(layout.catalog_dir, QC_FILE)
    if exists(hours_path) and exists(qc_path):
        fs, path = url_to_fs(hours_path)
        metadata = pq.read_schema(path, filesystem=fs).metadata or {}
        if metadata.get(b"timezone", b"").decode() == timezone:
            return _read(hours_path), _read(qc_path), f"{hours_path} and {qc_path}"
    segments = layout.segments
    if not exists(segments):
        raise MissingInputError(f"{segments}: no segment catalog yet; run `sonotype ingest` first")
    hours, qc = compute_shard_stats(out, timezone)
    return hours, qc, f"{segments} (aggregated for this report)"


def _read(url: str) -> pa.Table:
    fs, path = url_to_fs(url)
    return pq.read_table(path, filesystem=fs)


def recording_counts(recordings: pa.Table) -> dict[str, int]:
    """Recordings per status (ok, failed, ignored, and any other value found)."""
    counts = {RECORDING_STATUS_OK: 0, RECORDING_STATUS_FAILED: 0, RECORDING_STATUS_IGNORED: 0}
    for row in recordings.group_by("status").aggregate([("status", "count")]).to_pylist():
        counts[row["status"]] = row["status_count"]
    return counts


def failed_recordings(recordings: pa.Table, limit: int) -> list[dict]:
    """The first `limit` failed recordings (path, site, error), in path order."""
    failed = recordings.filter(pc.equal(recordings["status"], RECORDING_STATUS_FAILED))
    failed = failed.sort_by("path").slice(0, limit)
    return failed.select(["path", "site", "error"]).to_pylist()


def hours_text(hours: float) -> str:
    """Hours with as many decimals as a small total needs (0.02, 1.5, 1,234)."""
    if hours >= 100:
        return f"{hours:,.0f}"
    return f"{hours:.1f}" if hours >= 1 else f"{hours:.2g}"


def _bar_chart(ctx: ReportContext, name: str, data: Grid, ylabel: str, title: str) -> Image:
    """Stacked bars: one bar per row of `data`, one colour per column."""
    figure = new_figure(max(5.0, 0.55 * len(data.rows) + 3.5), 3.2)
    axes = figure.add_subplot()
    bottom = np.zeros(len(data.rows))
    for j, column in enumerate(data.columns):
        axes.bar(data.rows, data.values[:, j], bottom=bottom, label=column)
        bottom += data.values[:, j]
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.tick_params(axis="x", labelrotation=30 if len(data.rows) > 4 else 0)
    if len(data.columns) > 1:
        axes.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    return save_figure(ctx.assets, name, figure)


def _diel_chart(ctx: ReportContext, data: Grid) -> Image:
    figure = new_figure(7.0, 3.0)
    axes = figure.add_subplot()
    for i, site in enumerate(data.rows):
        axes.plot(range(24), data.values[i], marker="o", markersize=3, label=site)
    axes.set_xticks(range(0, 24, 3))
    axes.set_xlabel(f"hour of day ({ctx.config.timezone})")
    axes.set_ylabel("hours of audio")
    axes.set_title("Recording effort by hour of day", fontsize=10)
    axes.legend(fontsize=8, frameon=False, loc="center left", bbox_to_anchor=(1, 0.5))
    return save_figure(ctx.assets, "overview-effort-by-hour", figure)


def _grid_table(data: Grid, corner: str, digits: int) -> str:
    rows = [
        [row, *(f"{v:.{digits}f}" for v in data.values[i]), f"{data.values[i].sum():.{digits}f}"]
        for i, row in enumerate(data.rows)
    ]
    numeric = range(1, len(data.columns) + 2)
    return page.table([corner, *data.columns, "total"], rows, numeric=numeric)


def build(ctx: ReportContext) -> page.Section:
    """The dataset overview section."""
    parts: list[str] = []
    parts.append(_recordings_part(ctx))
    parts.append(_hours_part(ctx))
    return page.Section("overview", "Dataset overview", "".join(parts))


def _recordings_part(ctx: ReportContext) -> str:
    url = ctx.layout.recordings
    if not exists(url):
        return page.notice(f"{url}: no recordings catalog yet; run `sonotype ingest` first")
    recordings = read_recordings(ctx.out, ["path", "site", "status", "error", "duration_s"])
    counts = recording_counts(recordings)
    ok = recordings.filter(pc.equal(recordings["status"], RECORDING_STATUS_OK))
    hours = (pc.sum(ok["duration_s"]).as_py() or 0.0) / 3600
    sites = {s for s in ok["site"].to_pylist()}
    parts = [
        page.stat_boxes(
            [
                (str(counts[RECORDING_STATUS_OK]), "recordings read"),
                (str(counts[RECORDING_STATUS_FAILED]), "recordings failed"),
                (str(counts[RECORDING_STATUS_IGNORED]), "side files ignored"),
                (hours_text(hours), "hours recorded (files read)"),
                (str(len(sites)), "sites"),
            ]
        )
    ]
    failed = failed_recordings(recordings, ctx.config.max_failed_rows)
    parts.append(page.heading("Files that could not be read"))
    if not counts[RECORDING_STATUS_FAILED]:
        parts.append(page.paragraph("None: every audio file was decoded."))
    else:
        rows = [[r["path"], _label(r["site"]), r["error"] or ""] for r in failed]
        parts.append(page.table(["file", "site", "reason"], rows, scroll=True))
        if counts[RECORDING_STATUS_FAILED] > len(failed):
            parts.append(
                page.paragraph(
                    f"{counts[RECORDING_STATUS_FAILED] - len(failed)} more failed files are "
                    f"not listed (max_failed_rows={ctx.config.max_failed_rows}); see {url}."
                )
            )
    if counts[RECORDING_STATUS_IGNORED]:
        ignored = recordings.filter(pc.equal(recordings["status"], RECORDING_STATUS_IGNORED))
        paths = ignored.sort_by("path")["path"].to_pylist()[:_IGNORED_LISTED]
        listed = "\n".join(paths)
        more = counts[RECORDING_STATUS_IGNORED] - len(paths)
        if more > 0:
            listed += f"\n… and {more} more"
        parts.append(
            page.details(
                f"{counts[RECORDING_STATUS_IGNORED]} side files ignored (not audio, "
                "e.g. AppleDouble ._ files or recorder logs)",
                page.preformatted(listed),
            )
        )
    return "".join(parts)


def _hours_part(ctx: ReportContext) -> str:
    try:
        hours, qc, source = dataset_tables(ctx.out, ctx.config.timezone)
    except MissingInputError as error:
        return page.notice(str(error))
    zone = ctx.config.timezone
    by_year = hours_by_site_and_year(hours)
    parts = [page.heading(f"Hours of kept audio per site and year ({zone})")]
    if not by_year.rows:
        return "".join([*parts, page.paragraph("The segment catalog is empty.")])
    parts.append(_grid_table(by_year, "site", 2))
    chart = _bar_chart(ctx, "overview-hours", by_year, "hours of kept audio", "Hours per site")
    effort = _diel_chart(ctx, hours_by_hour_of_day(hours))
    parts.append(
        '<div class="figures">'
        + page.figure(chart, "hours of kept audio per site, stacked by year")
        + page.figure(effort, "hours of kept audio per hour of day and site")
        + "</div>"
    )
    counts, qc_hours = qc_outcomes(qc)
    parts.append(page.heading("Quality checks: segments kept and dropped"))
    parts.append(_grid_table(counts, "site", 0))
    outcome_chart = _bar_chart(ctx, "overview-qc", qc_hours, "hours", "Segments by QC outcome")
    parts.append(
        page.figure(
            outcome_chart,
            "hours of segments kept and dropped per site, by reason",
            "Dropped segments are not in the shards; dropped:<reason> names the check.",
        )
    )
    parts.append(page.paragraph(f"Source: {source}.", lead=True))
    return "".join(parts)

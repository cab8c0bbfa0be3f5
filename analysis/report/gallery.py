"""Sonotype gallery: one card per sonotype with its size, share, when/where it peaks, and examples.

Every sonotype of the clustering gets a card, whatever else is missing: sizes come
from the store's labels (the scan) or, failing that, from the clustering history.
Each example shows a spectrogram thumbnail (0 Hz at the bottom, up to half the
sample rate) and an audio player; see `analysis.report.scan` for how examples are
chosen and `analysis.report.clips` for how clips are cut.
"""

import logging

import numpy as np
import pandas as pd

from analysis.report import page
from analysis.report.clips import Example, cut_clips, locate_examples
from analysis.report.context import ReportContext
from analysis.report.scan import ScanResult
from analysis.store import SEGMENT
from sonotype.errors import SonotypeError

logger = logging.getLogger(__name__)


def local_time(time: object, zone: str, offset_s: float = 0.0) -> str:
    """A UTC time plus an offset, as `YYYY-MM-DD HH:MM:SS` in `zone` ("unknown time" if None)."""
    if time is None or pd.isna(time):
        return "unknown time"
    stamp = pd.Timestamp(time) + pd.Timedelta(seconds=offset_s)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
    return stamp.tz_convert(zone).strftime("%Y-%m-%d %H:%M:%S")


def peaks(occurrence: pd.DataFrame, k: int, zone: str) -> dict[int, str]:
    """Per sonotype, a line saying at which hour of day and at which site it is most present."""
    lines: dict[int, str] = {}
    if occurrence.empty:
        return lines
    by_hour = occurrence.groupby(["sonotype", "hour"])["seconds"].sum()
    by_site = occurrence.groupby(["sonotype", "site"])["seconds"].sum()
    for sonotype in range(k):
        if sonotype not in by_hour.index.get_level_values(0):
            continue
        hours = by_hour.loc[sonotype]
        sites = by_site.loc[sonotype]
        top_site = str(sites.idxmax())
        lines[sonotype] = (
            f"most present at {int(hours.idxmax()):02d} h ({zone}); "
            f"{sites.max() / sites.sum():.0%} of it at {top_site}"
        )
    return lines


def _sizes(ctx: ReportContext) -> tuple[np.ndarray, np.ndarray | None, str | None]:
    """Rows and seconds per sonotype: from the scan, else from the history (no seconds)."""
    clustering = ctx.clustering()
    try:
        scan = ctx.scan()
        return scan.sizes, scan.seconds, None
    except SonotypeError as error:
        sizes = clustering.history[-1].get("sizes") if clustering.history else None
        fallback = np.asarray(sizes if sizes else np.zeros(clustering.k), np.int64)
        return fallback, None, str(error)


def _examples(ctx: ReportContext, scan: ScanResult) -> dict[int, list[Example]]:
    chosen = []
    for sonotype in range(ctx.clustering().k):
        chosen.extend((sonotype, *found) for found in scan.candidates.of(sonotype))
    store = ctx.labelled_store()
    located = locate_examples(store, chosen, ctx.name, ctx.config.clip_s)
    done = cut_clips(ctx.out, located, ctx.assets, ctx.config)
    by_sonotype: dict[int, list[Example]] = {}
    for example in done:
        by_sonotype.setdefault(example.sonotype, []).append(example)
    return by_sonotype


def _example_html(example: Example, ctx: ReportContext, is_frame: bool) -> str:
    when = local_time(example.start_time, ctx.config.timezone, example.clip_start_s)
    detail = (
        f"{example.share:.0%} of the segment's frames"
        if is_frame
        else f"distance {example.distance:.3g} to the centroid"
    )
    caption = f"{example.site or 'unknown site'} · {when} · {detail}"
    if example.problem or example.image is None or example.audio_src is None:
        return (
            '<div class="example">'
            + page.notice(f"{caption}: no audio ({example.problem})", warning=True)
            + "</div>"
        )
    alt = f"spectrogram of sonotype {example.sonotype} example {example.key}"
    return (
        '<div class="example">'
        + page.img(example.image, alt)
        + page.audio(example.audio_src, example.clip_s, example.mime)
        + f'<div class="caption">{page.esc(caption)}</div></div>'
    )


def build(ctx: ReportContext) -> page.Section:
    """The gallery section (raises MissingInputError without a clustering)."""
    clustering = ctx.clustering()
    k, level = clustering.k, clustering.level
    is_frame = level != SEGMENT
    colours = ctx.colours()
    sizes, seconds, size_problem = _sizes(ctx)
    parts = [
        page.paragraph(
            f"{k} sonotypes of clustering {ctx.name!r} (version {clustering.version}, "
            f"{level} level, {clustering.model.get('feature', 'embeddings')}). Examples are the "
            + (
                "segments each sonotype dominates, most typical first; the clip is the "
                f"{ctx.config.clip_s:g} s where it is densest."
                if is_frame
                else f"segments nearest each centroid; the clip is their middle "
                f"{ctx.config.clip_s:g} s."
            )
            + " Spectrograms: time left to right, frequency from 0 Hz at the bottom. "
            + (
                f"Clips are peak-normalised to {ctx.config.clip_peak_dbfs:g} dBFS, so their "
                "loudness says nothing about the recorded level."
                if ctx.config.clip_peak_dbfs is not None
                else "Clips keep their recorded level."
            ),
            lead=True,
        )
    ]
    if size_problem:
        parts.append(page.notice(f"No examples: {size_problem}"))
    examples: dict[int, list[Example]] = {}
    if size_problem is None:
        try:
            examples = _examples(ctx, ctx.scan())
        except SonotypeError as error:
            parts.append(page.notice(f"No audio examples: {error}", warning=True))
        if k > ctx.config.max_examples:
            parts.append(
                page.notice(
                    f"k={k} is above max_examples={ctx.config.max_examples}: no audio examples."
                )
            )
    try:
        peak_lines = peaks(ctx.statistics()["occurrence"], k, ctx.config.timezone)
    except SonotypeError as error:
        logger.info("gallery without peak hours: %s", error)
        peak_lines = {}
    total = max(1, int(sizes.sum()))
    unit = "frames" if is_frame else "segments"
    cards = []
    for sonotype in range(k):
        facts = f"{int(sizes[sonotype]):,} {unit} · {sizes[sonotype] / total:.1%} of all"
        if seconds is not None:
            facts += f" · {page.duration_text(seconds[sonotype])} of audio"
        lines = [f'<p class="facts">{page.esc(facts)}</p>']
        if sonotype in peak_lines:
            lines.append(f'<p class="facts">{page.esc(peak_lines[sonotype])}</p>')
        found = [_example_html(e, ctx, is_frame) for e in examples.get(sonotype, [])]
        if not found and size_problem is None and k <= ctx.config.max_examples:
            lines.append(page.paragraph("No labelled rows: no example to show."))
        cards.append(
            f'<div class="card" id="sonotype-{sonotype}" data-sonotype="{sonotype}" '
            f'style="--swatch: {colours[sonotype]}"><h3>Sonotype {sonotype}</h3>'
            + "".join(lines)
            + "".join(found)
            + "</div>"
        )
    parts.append('<div class="gallery">' + "".join(cards) + "</div>")
    return page.Section("gallery", "Sonotype gallery", "".join(parts))

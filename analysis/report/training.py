"""Training: loss curves, codebook usage and validation metrics from a run's `metrics.jsonl`.

The file follows `sonotype.contracts` (METRIC_*): one JSON object per line with `step`,
`split` ("train" or "val") and numeric metrics named by prefix. It is read twice,
line by line: once to count the records of each split, once to keep every n-th so
that at most `max_curve_points` points per split are held, however long the run.
Malformed lines and non-numeric values are skipped and counted; missing keys simply
leave gaps.
"""

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

from analysis.report import page
from analysis.report.assets import Image
from analysis.report.context import MissingInputError, ReportContext
from analysis.report.plots import new_figure, save_figure
from sonotype.contracts import METRIC_SPLIT, METRIC_STEP, RunLayout
from sonotype.fsio import exists, url_to_fs

logger = logging.getLogger(__name__)

GROUPS = (
    ("loss/", "Losses", "Generator and discriminator loss terms."),
    ("codebook/", "Codebook", "Usage (share of codes used), perplexity and dead codes."),
    ("val/", "Validation", "Metrics on held-out shards."),
    (
        ("grad_norm/", "lr/", "speed/", "memory/"),
        "Optimisation",
        "Gradient norms, learning rates, throughput (samples/s) and peak memory (MB).",
    ),
)
"""Metric prefixes (one or several) and how the page groups them, in page order."""
_CONFIG_SHOWN_BYTES = 20000
_LOG_SCALE_RATIO = 20.0
"""A positive curve spanning more than this factor gets a logarithmic y axis."""


@dataclass
class Curves:
    """Metric series of a run, per split.

    Attributes:
        series: split → metric name → (steps, values), in file order.
        n_records: records per split in the file.
        n_skipped: malformed lines or values skipped.
        last_step: the largest step seen.
        time_s: the last `time_s` value seen, if any.
    """

    series: dict[str, dict[str, tuple[list[float], list[float]]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    n_records: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    n_skipped: int = 0
    last_step: int | None = None
    time_s: float | None = None

    def names(self) -> list[str]:
        """Every metric name, in sorted order."""
        return sorted({name for by_name in self.series.values() for name in by_name})


def _records(url: str, counter: list[int]) -> Iterator[dict]:
    fs, path = url_to_fs(url)
    with fs.open(path, "r", encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                counter[0] += 1
                continue
            if not isinstance(record, dict) or not _is_number(record.get(METRIC_STEP)):
                counter[0] += 1
                continue
            yield record


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_metrics(url: str, max_points: int) -> Curves:
    """Read `metrics.jsonl` into at most `max_points` points per split and metric.

    Args:
        url: the metrics file.
        max_points: points kept per split (every n-th record, the last one always).

    Returns:
        The curves.
    """
    totals: dict[str, int] = defaultdict(int)
    skipped = [0]
    for record in _records(url, skipped):
        totals[str(record.get(METRIC_SPLIT, "train"))] += 1
    curves = Curves(n_records=totals, n_skipped=skipped[0])
    stride = {split: max(1, math.ceil(n / max_points)) for split, n in totals.items()}
    seen: dict[str, int] = defaultdict(int)
    for record in _records(url, [0]):
        split = str(record.get(METRIC_SPLIT, "train"))
        position = seen[split]
        seen[split] += 1
        step = record[METRIC_STEP]
        curves.last_step = max(int(step), curves.last_step or 0)
        if _is_number(record.get("time_s")):
            curves.time_s = float(record["time_s"])
        is_last = position == totals[split] - 1
        if position % stride[split] and not is_last:
            continue
        for name, value in record.items():
            if name in (METRIC_STEP, METRIC_SPLIT, "time_s"):
                continue
            if not _is_number(value):
                curves.n_skipped += 1
                continue
            steps, values = curves.series[split].setdefault(name, ([], []))
            steps.append(float(step))
            values.append(float(value))
    return curves


def grouped(curves: Curves) -> list[tuple[str, str, list[str]]]:
    """(title, caption, metric names) per group of GROUPS that has metrics; others last."""
    names = curves.names()
    groups = []
    taken: set[str] = set()
    for prefix, title, caption in GROUPS:
        members = [n for n in names if n.startswith(prefix)]
        if members:
            groups.append((title, caption, members))
            taken.update(members)
    rest = [n for n in names if n not in taken]
    if rest:
        groups.append(("Other metrics", "", rest))
    return groups


def _panels(ctx: ReportContext, curves: Curves, title: str, names: list[str]) -> Image:
    """Small multiples: one panel per metric, train as a line, val as dots."""
    columns = min(4, len(names))
    rows = math.ceil(len(names) / columns)
    figure = new_figure(3.1 * columns, 2.3 * rows)
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, index + 1)
        shown: list[float] = []
        for split, style in (("train", "-"), ("val", "o-")):
            if name in curves.series.get(split, {}):
                steps, values = curves.series[split][name]
                axes.plot(steps, values, style, markersize=3, linewidth=1.2, label=split)
                shown.extend(values)
        if min(shown) > 0 and max(shown) > _LOG_SCALE_RATIO * min(shown):
            # Losses fall by orders of magnitude early on; a linear axis hides the rest.
            axes.set_yscale("log")
        axes.set_title(name, fontsize=9)
        axes.tick_params(labelsize=7)
        axes.set_xlabel("step", fontsize=7)
        if len(curves.series) > 1 and index == 0:
            axes.legend(fontsize=7, frameon=False)
    slug = title.lower().replace(" ", "-")
    return save_figure(ctx.assets, f"training-{slug}", figure)


def build(ctx: ReportContext) -> page.Section:
    """The training section.

    Raises:
        MissingInputError: no run directory given, or it has no metrics file.
    """
    if ctx.run_dir is None:
        raise MissingInputError(
            "no training run given: pass `--run RUN_DIR` to show its loss curves, "
            "codebook usage and validation metrics"
        )
    layout = RunLayout(ctx.run_dir)
    if not exists(layout.metrics):
        raise MissingInputError(f"{layout.metrics}: no metrics file in the training run")
    curves = read_metrics(layout.metrics, ctx.config.max_curve_points)
    if not curves.names():
        raise MissingInputError(f"{layout.metrics}: holds no metric records yet")
    boxes = [(f"{curves.last_step:,}", "last step")]
    for split in sorted(curves.n_records):
        boxes.append((f"{curves.n_records[split]:,}", f"{split} records"))
    if curves.time_s is not None:
        boxes.append((f"{curves.time_s / 3600:.2f}", "hours of training"))
    parts = [page.paragraph(f"Run: {ctx.run_dir}", lead=True), page.stat_boxes(boxes)]
    if curves.n_skipped:
        parts.append(
            page.notice(
                f"{curves.n_skipped} malformed lines or non-numeric values in "
                f"{layout.metrics} were skipped.",
                warning=True,
            )
        )
    collapse = _collapse_notice(curves)
    if collapse:
        parts.append(collapse)
    for title, caption, names in grouped(curves):
        image = _panels(ctx, curves, title, names)
        parts.append(page.heading(title))
        parts.append(page.figure(image, f"{title} over training steps", caption))
    parts.append(_config_part(layout))
    return page.Section("training", "Training", "".join(parts))


COLLAPSED = "val/codebook_collapsed"
"""1 when the trainer found a validation pass's codebook collapsed (thresholds: its config)."""


def _collapse_notice(curves: Curves) -> str:
    """A warning when the last validation pass found the codebook collapsed."""
    series = curves.series.get("val", {})
    if COLLAPSED not in series or not series[COLLAPSED][1] or series[COLLAPSED][1][-1] < 0.5:
        return ""
    step = int(series[COLLAPSED][0][-1])
    usage = series.get("val/codebook_usage", ([], [math.nan]))[1][-1]
    perplexity = series.get("val/codebook_perplexity", ([], [math.nan]))[1][-1]
    return page.notice(
        f"Codebook collapse at the last validation (step {step:,}): {usage:.1%} of codes "
        f"used, perplexity {perplexity:.1f}, below the thresholds of the training config "
        "(validation.min_codebook_usage, min_codebook_perplexity). Tokens of a collapsed "
        "codebook carry little: expect weak sonotypes.",
        warning=True,
    )


def _config_part(layout: RunLayout) -> str:
    if not exists(layout.config):
        return ""
    fs, path = url_to_fs(layout.config)
    with fs.open(path, "r", encoding="utf-8", errors="replace") as handle:
        text = handle.read(_CONFIG_SHOWN_BYTES)
    return page.details(f"Training config ({layout.config})", page.preformatted(text))

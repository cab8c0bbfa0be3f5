"""`write_report`: every section built in turn, each one failing alone, then the page written.

A section whose input does not exist yet (no training run given, no clustering) says
so in a note; a section whose input is broken shows a warning naming the file and
the problem, and is logged. Either way the other sections and the page are written:
the report is what an ecologist opens to see how far the pipeline got.
"""

import logging
from collections.abc import Callable

from analysis.report import (
    embedding_map,
    gallery,
    overview,
    quality,
    stability,
    training,
    when_where,
)
from analysis.report.assets import Assets
from analysis.report.context import INPUT_ERRORS, MissingInputError, ReportContext
from analysis.report.page import Section, notice, render_page
from sonotype.config.report import ReportConfig
from sonotype.contracts import OutputLayout
from sonotype.errors import DamagedStoreError, SonotypeError
from sonotype.fsio import write_text_atomic
from sonotype.output_lock import output_lock
from sonotype.progress import track

logger = logging.getLogger(__name__)

Builder = Callable[[ReportContext], Section]

SECTIONS: tuple[tuple[str, str, Builder], ...] = (
    ("overview", "Dataset overview", overview.build),
    ("quality", "Quality", quality.build),
    ("training", "Training", training.build),
    ("gallery", "Sonotype gallery", gallery.build),
    ("when-where", "When and where", when_where.build),
    ("map", "Embedding map", embedding_map.build),
    ("stability", "Label stability", stability.build),
)
"""(anchor, title, builder) of each section, in page order."""


def build_section(ctx: ReportContext, anchor: str, title: str, builder: Builder) -> Section:
    """One section, or a note saying why it is empty (see the module docstring)."""
    try:
        return builder(ctx)
    except DamagedStoreError:
        raise  # zeros read in place of lost chunks would be drawn as data: refuse the page
    except MissingInputError as error:
        logger.info("report section %r: %s", title, error)
        return Section(anchor, title, notice(str(error)))
    except INPUT_ERRORS as error:
        logger.warning("report section %r could not be built: %s", title, error)
        logger.debug("traceback of report section %r", title, exc_info=True)
        text = f"This section could not be built: {type(error).__name__}: {error}"
        return Section(anchor, title, notice(text, warning=True))


def _facts(ctx: ReportContext) -> list[str]:
    facts = [f"Output: {ctx.out}", f"Dates and times in {ctx.config.timezone}"]
    try:
        clustering = ctx.clustering()
        facts.insert(
            1,
            f"Clustering {ctx.name!r}: k={clustering.k} at {clustering.level} level, "
            f"version {clustering.version}, {clustering.n_rows:,} {clustering.level}s "
            f"(features: {ctx.features})",
        )
    except SonotypeError:
        facts.insert(1, f"Clustering {ctx.name!r}: not available")
    return facts


def write_report(
    out: str,
    *,
    config: ReportConfig,
    run_dir: str | None = None,
    features: str | None = None,
    name: str = "default",
) -> str:
    """Write `OUT/report/index.html` with its images and audio examples.

    The page opens from disk with no server and no network. Sections whose inputs are
    missing or broken say so; they never stop the page from being written.

    Args:
        out: the output root (`OUT/`, a path or fsspec URL).
        config: what the page shows and how much it samples.
        run_dir: a training run directory whose `metrics.jsonl` gives the curves.
        features: the feature store (None: `OUT/features.zarr`).
        name: the clustering to show (`OUT/clusters/<name>/`, `labels/<name>`).

    Returns:
        The path or URL of `index.html`.

    Raises:
        OSError: the report folder cannot be written.
        OutputLockedError: another run is writing this report.
    """
    with output_lock(out, "report"):
        return _write_report(out, config, run_dir, features, name)


def _write_report(
    out: str, config: ReportConfig, run_dir: str | None, features: str | None, name: str
) -> str:
    layout = OutputLayout(out)
    assets = Assets(layout.report_dir)
    ctx = ReportContext(
        out=out,
        config=config,
        assets=assets,
        run_dir=run_dir,
        features=features if features is not None else layout.features,
        name=name,
    )
    sections = [
        build_section(ctx, anchor, title, builder)
        for anchor, title, builder in track(SECTIONS, len(SECTIONS), "sections", "report")
    ]
    document = render_page("sonotype report", _facts(ctx), sections)
    write_text_atomic(layout.report_index, document)
    assets.remove_other_builds()
    logger.info(
        "report: index.html %.0f kB, %d images %.0f kB, %d audio examples %.0f kB",
        len(document.encode()) / 1000,
        assets.n_files["img"],
        assets.n_bytes["img"] / 1000,
        assets.n_files["audio"],
        assets.n_bytes["audio"] / 1000,
    )
    return layout.report_index

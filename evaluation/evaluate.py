"""Score a clustering against annotations, beside the log-mel yardstick over the same windows.

For each unit (the window, 1 s by default, and the segment) the windows of the
annotated recordings get the annotation's dominant label; then three methods are
scored on exactly those windows, each with the clustering's k:

- the clustering itself (its sonotype per window), with a linear probe on the
  tokenizer's embeddings pooled per window (mean and standard deviation) and the
  window's recorded level;
- k-means and a probe on each window's mean log-mel spectrum;
- k-means and a probe on its spectral shape (mean level removed).

Results go to `OUT/clusters/NAME/evaluation/`: `scores.parquet` and `scores.csv` (one
row per unit and method), `windows.parquet` (each scored window with its label and
sonotype) and `quality.png`.
"""

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis import FeatureStore, clusters_dir, load_clustering, open_store
from evaluation.annotations import DEFAULT_RAVEN_LABEL, read_annotations
from evaluation.figure import draw_quality
from evaluation.representation import window_representation, window_sonotypes
from evaluation.scores import kmeans_partition, majority_share, partition_scores, probe_accuracy
from evaluation.windows import SEGMENT, WINDOW, dominant_labels, window_table
from evaluation.yardstick import log_mel_windows, spectral_shape
from sonotype.contracts import EVALUATION_SCORES_FILE, EVALUATION_WINDOWS_FILE, OutputLayout
from sonotype.errors import SonotypeError
from sonotype.fsio import join, makedirs, read_parquet, write_parquet_atomic, write_text_atomic

logger = logging.getLogger(__name__)

SCORES_CSV = "scores.csv"
FIGURE_FILE = "quality.png"
SONOTYPES = "sonotypes"
LOG_MEL = "log-mel mean"
SHAPE = "spectral shape"


@dataclass(frozen=True)
class EvaluationSettings:
    """How windows are cut and labelled.

    Attributes:
        window_s: window length in seconds.
        min_overlap: share of a window its label must cover.
        fill: label of windows no annotation covers enough (None: not scored).
        raven_label: the label column of Raven selection tables.
        seed: seed of the yardstick's k-means and of the probe.
    """

    window_s: float = 1.0
    min_overlap: float = 0.5
    fill: str | None = None
    raven_label: str = DEFAULT_RAVEN_LABEL
    seed: int = 0


@dataclass(frozen=True)
class Evaluation:
    """What `evaluate` found and where it wrote it.

    Attributes:
        scores: one row per unit and method: `unit`, `method`, `k`, `n_windows`,
            `n_recordings`, `n_labels`, `nmi`, `ari`, `v_measure`, `purity`, `probe`,
            `chance`.
        windows: the scored windows of the window unit with `label` and `sonotype`.
        directory: `OUT/clusters/NAME/evaluation/`.
    """

    scores: pd.DataFrame
    windows: pd.DataFrame
    directory: str

    def describe(self) -> str:
        """The scores as a fixed-width table for the terminal."""
        shown = self.scores[["unit", "method", "k", "n_windows", "nmi", "ari", "probe"]]
        return shown.to_string(index=False, float_format=lambda value: f"{value:.3f}")


def evaluation_dir(out: str, name: str) -> str:
    """Where the evaluation of clustering `name` lives."""
    return OutputLayout(out).evaluation(name)


def evaluate(
    out: str, name: str, sources: list[str], settings: EvaluationSettings | None = None
) -> Evaluation:
    """Score clustering `name` of `OUT/features.zarr` against annotation files.

    Args:
        out: the output root (catalog, shards, features.zarr, clusters/).
        name: the clustering.
        sources: annotation CSVs or Raven selection tables (see `evaluation.annotations`).
        settings: windows and labelling (defaults: 1 s windows, half-window overlap).

    Returns:
        The scores and scored windows (also written under `evaluation_dir(out, name)`).

    Raises:
        SonotypeError: a missing store, clustering or catalog, unreadable annotations,
            or no window of the store covered by an annotation.
    """
    settings = settings or EvaluationSettings()
    layout = OutputLayout(out)
    store = open_store(layout.features)
    clustering = load_clustering(clusters_dir(store.url, name))
    recordings = read_parquet(layout.recordings, ["recording_id", "path", "start_time"])
    annotations = read_annotations(sources, recordings.to_pandas(), settings.raven_label)
    recording_ids = set(annotations["recording_id"])
    rows = []
    scored_windows = pd.DataFrame()
    for unit, window_s in ((WINDOW, settings.window_s), (SEGMENT, None)):
        windows = window_table(store, recording_ids, window_s)
        windows["label"] = dominant_labels(
            windows, annotations, settings.min_overlap, settings.fill
        )
        windows["sonotype"] = window_sonotypes(store, clustering, name, windows)
        windows = windows[windows["label"].notna() & (windows["sonotype"] >= 0)]
        windows = windows.reset_index(drop=True)
        if windows.empty:
            raise SonotypeError(
                f"no {unit} of the store is covered by an annotation for at least "
                f"{settings.min_overlap:.0%} of its length"
            )
        logger.info("%s unit: %d labelled windows", unit, len(windows))
        rows += _score_unit(unit, windows, store, layout.shards_dir, clustering.k, name, settings)
        if unit == WINDOW:
            scored_windows = windows
    scores = pd.DataFrame(rows)
    directory = evaluation_dir(out, name)
    _write(directory, scores, scored_windows)
    return Evaluation(scores, scored_windows, directory)


def _score_unit(
    unit: str,
    windows: pd.DataFrame,
    store: FeatureStore,
    shards_dir: str,
    k: int,
    name: str,
    settings: EvaluationSettings,
) -> list[dict]:
    truth = windows["label"].astype(str).to_numpy()
    groups = windows["recording_id"].to_numpy()
    log_mel = log_mel_windows(shards_dir, windows, store.sample_rate)
    methods = [
        (
            f"{SONOTYPES} ({name})",
            windows["sonotype"].to_numpy(),
            window_representation(store, windows),
        ),
        (LOG_MEL, None, log_mel),
        (SHAPE, None, spectral_shape(log_mel)),
    ]
    common = {
        "unit": unit,
        "k": k,
        "n_windows": len(windows),
        "n_recordings": len(np.unique(groups)),
        "n_labels": len(np.unique(truth)),
        "chance": majority_share(truth),
    }
    rows = []
    for method, partition, features in methods:
        if partition is None:
            partition = kmeans_partition(features, k, settings.seed)
        rows.append(
            {
                "method": method,
                **common,
                **partition_scores(truth, partition),
                "probe": probe_accuracy(features, truth, groups, settings.seed),
            }
        )
    return rows


def _write(directory: str, scores: pd.DataFrame, windows: pd.DataFrame) -> None:
    makedirs(directory)
    write_parquet_atomic(
        pa.Table.from_pandas(scores, preserve_index=False), join(directory, EVALUATION_SCORES_FILE)
    )
    write_text_atomic(join(directory, SCORES_CSV), scores.to_csv(index=False))
    kept = windows[["recording_id", "site", "start_s", "end_s", "label", "sonotype"]]
    write_parquet_atomic(
        pa.Table.from_pandas(kept, preserve_index=False), join(directory, EVALUATION_WINDOWS_FILE)
    )
    draw_quality(scores, windows, join(directory, FIGURE_FILE))

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
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis import FeatureStore, clusters_dir, load_clustering, open_store
from analysis.store_integrity import require_intact
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
    out: str,
    names: Sequence[str],
    sources: Sequence[str],
    settings: EvaluationSettings | None = None,
) -> list[Evaluation]:
    """Score clusterings of `OUT/features.zarr` against annotation files.

    The windows, the yardstick and the probes do not depend on the clustering: with
    several names they are computed once and every clustering is scored on the same
    windows (those every clustering has labelled).

    Args:
        out: the output root (catalog, shards, features.zarr, clusters/).
        names: the clusterings.
        sources: annotation CSVs or Raven selection tables (see `evaluation.annotations`).
        settings: windows and labelling (defaults: 1 s windows, half-window overlap).

    Returns:
        One evaluation per name, in order (each also written under
        `evaluation_dir(out, name)`).

    Raises:
        SonotypeError: a missing store, clustering or catalog, unreadable annotations,
            or no window of the store covered by an annotation.
    """
    settings = settings or EvaluationSettings()
    layout = OutputLayout(out)
    store = open_store(layout.features)
    require_intact(store)
    clusterings = {name: load_clustering(clusters_dir(store.url, name)) for name in names}
    recordings = read_parquet(layout.recordings, ["recording_id", "path", "start_time"])
    annotations = read_annotations(sources, recordings.to_pandas(), settings.raven_label)
    recording_ids = set(annotations["recording_id"])
    rows: dict[str, list[dict]] = {name: [] for name in names}
    scored: dict[str, pd.DataFrame] = {}
    for unit, window_s in ((WINDOW, settings.window_s), (SEGMENT, None)):
        windows = window_table(store, recording_ids, window_s)
        windows["label"] = dominant_labels(
            windows, annotations, settings.min_overlap, settings.fill
        )
        labelled = windows["label"].notna()
        sonotypes = {}
        for name, clustering in clusterings.items():
            sonotypes[name] = window_sonotypes(store, clustering, name, windows)
            labelled &= sonotypes[name] >= 0
        if not labelled.any():
            raise SonotypeError(
                f"no {unit} of the store is covered by an annotation for at least "
                f"{settings.min_overlap:.0%} of its length"
            )
        windows = windows[labelled].reset_index(drop=True)
        logger.info("%s unit: %d labelled windows", unit, len(windows))
        unit_scores = _UnitScores(unit, windows, store, layout.shards_dir, settings)
        for name, clustering in clusterings.items():
            partition = sonotypes[name][labelled.to_numpy()]
            rows[name] += unit_scores.rows(name, clustering.k, partition)
            if unit == WINDOW:
                scored[name] = windows.assign(sonotype=partition)
    results = []
    for name in names:
        scores = pd.DataFrame(rows[name])
        directory = evaluation_dir(out, name)
        _write(directory, scores, scored[name])
        results.append(Evaluation(scores, scored[name], directory))
    return results


class _UnitScores:
    """The scores of one unit's windows: the yardstick and the probes computed once,
    k-means of the yardstick once per k."""

    def __init__(
        self,
        unit: str,
        windows: pd.DataFrame,
        store: FeatureStore,
        shards_dir: str,
        settings: EvaluationSettings,
    ):
        self.unit, self.seed = unit, settings.seed
        self.truth = windows["label"].astype(str).to_numpy()
        groups = windows["recording_id"].to_numpy()
        log_mel = log_mel_windows(shards_dir, windows, store.sample_rate)
        self.features = {LOG_MEL: log_mel, SHAPE: spectral_shape(log_mel)}
        representation = window_representation(store, windows)
        self.probes = {
            method: probe_accuracy(features, self.truth, groups, self.seed)
            for method, features in [(SONOTYPES, representation), *self.features.items()]
        }
        self.common = {
            "n_windows": len(windows),
            "n_recordings": len(np.unique(groups)),
            "n_labels": len(np.unique(self.truth)),
            "chance": majority_share(self.truth),
        }
        self._yardstick: dict[int, list[dict]] = {}

    def rows(self, name: str, k: int, partition: np.ndarray) -> list[dict]:
        """The clustering's row, then the yardstick's rows at its k."""
        if k not in self._yardstick:
            self._yardstick[k] = [
                self._row(method, k, kmeans_partition(features, k, self.seed), method)
                for method, features in self.features.items()
            ]
        return [self._row(f"{SONOTYPES} ({name})", k, partition, SONOTYPES), *self._yardstick[k]]

    def _row(self, method: str, k: int, partition: np.ndarray, probe: str) -> dict:
        return {
            "unit": self.unit,
            "method": method,
            "k": k,
            **self.common,
            **partition_scores(self.truth, partition),
            "probe": self.probes[probe],
        }


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

"""A saved clustering under `OUT/clusters/<name>/`: versions of centroids, history, statistics.

```
OUT/clusters/<name>/
  model.json                  the commit point: name, fit_id (new at each fit), level,
                              feature, normalise, k, dim,
                              current version, data version (rows fitted; store's
                              n_frames, n_segments, shards at fit time); written last
  config.yaml                 the resolved ClusterConfig of the latest fit or update
  centre.npy                  float32 [dim]: the row subtracted before normalising
                              ("centred-l2", "standard", "balanced"); fixed, kept by updates
  scale.npy                   float32 [dim]: the column scales of "standard" and
                              "balanced", likewise
  history.json                one entry per version (fit or update): see `HistoryEntry`
  versions/v0001/centroids.npy  float32 [k, dim]: row j is sonotype j (normalised space)
  versions/v0001/counts.npy     float64 [k]: rows each centroid summarises (fit weight)
  versions/v0002/...          one folder per version, never rewritten once committed
  stats/occurrence.parquet    sonotype occurrence per site × date × hour-of-day
  stats/token_usage.parquet   token counts per site × hour-of-day
  stats/token_entropy.parquet token entropy per site × hour-of-day
  stats/k_selection.parquet   inertia and silhouette over a range of k
```

Every file is written atomically. A version's folder is written first, then
`history.json`, then `model.json`: until `model.json` names a version, readers see the
previous one, and a re-run recomputes and overwrites the unfinished version's files.
"""

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.features import FeatureSpec
from sonotype.contracts import OutputLayout
from sonotype.errors import SonotypeError
from sonotype.fsio import exists, join, split, url_to_fs, write_bytes_atomic, write_text_atomic

MODEL_FILE = "model.json"
CONFIG_FILE = "config.yaml"
HISTORY_FILE = "history.json"
VERSIONS_DIR = "versions"
CENTROIDS_FILE = "centroids.npy"
COUNTS_FILE = "counts.npy"
CENTRE_FILE = "centre.npy"
SCALE_FILE = "scale.npy"
STATS_DIR = "stats"
OCCURRENCE_FILE = "occurrence.parquet"
TOKEN_USAGE_FILE = "token_usage.parquet"
TOKEN_ENTROPY_FILE = "token_entropy.parquet"
K_SELECTION_FILE = "k_selection.parquet"

HistoryEntry = dict[str, Any]
"""One version: `version`, `kind` ("fit"/"update"), `created` (UTC ISO-8601), `n_rows`
(rows of the level the model has seen), `n_new_rows`, `n_frames`, `n_segments`,
`n_shards`, `inertia` (mean squared distance of the rows labelled by this version),
`n_labelled`, `sizes` (rows per sonotype in the label array, once labelled), and for
updates `mapping` (`mapping[j]` = index of the raw refitted centroid that became
sonotype j), `new_sonotypes` (numbers the update opened for new rows far from every
old centroid; k grows by as many), `relabelled` (share of previously seen rows whose
stored label was rewritten with another sonotype: 0 unless `relabel_all`), `reassigned` (share of
previously seen rows the new centroids would place in another sonotype, whether or
not their labels were rewritten), `reassigned_method` ("exact" over all old rows, or
"sample"), `reassigned_rows`, `drift` (per
sonotype, Euclidean distance between its old and new centroid), `drift_mean`,
`drift_max`."""


def clusters_root(store_url: str) -> str:
    """`OUT/clusters/` for the store `OUT/features.zarr` (OUT is the store's parent)."""
    return OutputLayout(split(store_url)[0] or ".").clusters_dir


def clusters_dir(store_url: str, name: str) -> str:
    """`OUT/clusters/<name>/` for the store `OUT/features.zarr`."""
    return join(clusters_root(store_url), name)


def version_dir(directory: str, version: int) -> str:
    """The folder of one version's centroids and counts."""
    return join(directory, VERSIONS_DIR, f"v{version:04d}")


def stats_path(directory: str, file_name: str) -> str:
    """A statistics table of the clustering (`OCCURRENCE_FILE`, ...)."""
    return join(directory, STATS_DIR, file_name)


def _save_npy(url: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_bytes_atomic(url, buffer.getvalue())


def _load_npy(url: str) -> np.ndarray:
    fs, path = url_to_fs(url)
    try:
        with fs.open(path, "rb") as handle:
            return np.load(io.BytesIO(handle.read()), allow_pickle=False)
    except FileNotFoundError:
        raise SonotypeError(f"{url}: missing; the clustering is incomplete") from None


def _read_json(url: str) -> Any:
    fs, path = url_to_fs(url)
    with fs.open(path, "r") as handle:
        return json.load(handle)


def _write_json(url: str, data: Any) -> None:
    write_text_atomic(url, json.dumps(data, indent=1, sort_keys=False) + "\n")


@dataclass(frozen=True)
class Clustering:
    """A committed clustering, as `load_clustering` reads it.

    Attributes:
        directory: `OUT/clusters/<name>/`.
        model: the content of `model.json`.
        centroids: float32 `[k, dim]`, row j = sonotype j, in the normalised space.
        counts: float64 `[k]`, rows each centroid summarises.
        history: one entry per version, oldest first (see `HistoryEntry`).
        centre: float32 `[dim]` subtracted before normalising ("centred-l2", "standard").
        scale: float32 `[dim]` column scales ("standard"), else None.
    """

    directory: str
    model: dict[str, Any]
    centroids: np.ndarray
    counts: np.ndarray
    history: list[HistoryEntry]
    centre: np.ndarray | None = None
    scale: np.ndarray | None = None

    @property
    def version(self) -> int:
        return int(self.model["version"])

    @property
    def k(self) -> int:
        return int(self.model["k"])

    @property
    def level(self) -> str:
        return str(self.model["level"])

    @property
    def n_rows(self) -> int:
        """Rows of the level the current version has seen (its data version)."""
        return int(self.model["n_rows"])

    def centroids_of(self, version: int) -> np.ndarray:
        """Centroids `[k, dim]` of an earlier committed version (for drift plots)."""
        if not 1 <= version <= self.version:
            raise SonotypeError(f"{self.directory}: no version {version} (1..{self.version})")
        return _load_npy(join(version_dir(self.directory, version), CENTROIDS_FILE))

    def stats_path(self, file_name: str) -> str:
        """Path of one of the statistics tables (`OCCURRENCE_FILE`, ...)."""
        return stats_path(self.directory, file_name)

    def feature_spec(self, store_url: str) -> FeatureSpec:
        """The rows of `store_url` this clustering groups, normalised as it was fitted."""
        centre = None if self.centre is None else tuple(float(x) for x in self.centre)
        scale = None if self.scale is None else tuple(float(x) for x in self.scale)
        model = self.model
        return FeatureSpec(
            store_url,
            model["level"],
            model["feature"],
            model["normalise"],
            centre,
            int(model.get("window_frames", 0)),
            scale,
            bool(model.get("loudness", False)),
        )


def has_clustering(directory: str) -> bool:
    """Whether a committed clustering exists in `directory`."""
    return exists(join(directory, MODEL_FILE))


def load_clustering(directory: str) -> Clustering:
    """Read the committed clustering in `OUT/clusters/<name>/`.

    Raises:
        SonotypeError: no committed clustering there, or a file is missing.
    """
    if not has_clustering(directory):
        raise SonotypeError(f"{directory}: no clustering (no {MODEL_FILE})")
    model = _read_json(join(directory, MODEL_FILE))
    version = int(model["version"])
    folder = version_dir(directory, version)
    history = [e for e in _read_json(join(directory, HISTORY_FILE)) if e["version"] <= version]
    centred = model["normalise"] in ("centred-l2", "standard", "balanced")
    scaled = model["normalise"] in ("standard", "balanced")
    return Clustering(
        directory=directory,
        model=model,
        centroids=_load_npy(join(folder, CENTROIDS_FILE)),
        counts=_load_npy(join(folder, COUNTS_FILE)),
        history=history,
        centre=_load_npy(join(directory, CENTRE_FILE)) if centred else None,
        scale=_load_npy(join(directory, SCALE_FILE)) if scaled else None,
    )


def commit_version(
    directory: str,
    model: dict[str, Any],
    centroids: np.ndarray,
    counts: np.ndarray,
    entry: HistoryEntry,
    config_yaml: str,
    centre: Sequence[float] | None = None,
    scale: Sequence[float] | None = None,
) -> None:
    """Write a new version and make it current (in the order of the module docstring).

    Args:
        directory: `OUT/clusters/<name>/`.
        model: the `model.json` content; its `version` is the new version.
        centroids: float32 `[k, dim]` in sonotype order.
        counts: `[k]`.
        entry: the history entry of the new version.
        config_yaml: the resolved config as YAML text.
        centre: the fit's centre ("centred-l2", "standard"), written with version 1 only.
        scale: the fit's column scales ("standard"), likewise.
    """
    version = int(model["version"])
    folder = version_dir(directory, version)
    if centre is not None:
        _save_npy(join(directory, CENTRE_FILE), np.asarray(centre, np.float32))
    if scale is not None:
        _save_npy(join(directory, SCALE_FILE), np.asarray(scale, np.float32))
    _save_npy(join(folder, CENTROIDS_FILE), np.asarray(centroids, np.float32))
    _save_npy(join(folder, COUNTS_FILE), np.asarray(counts, np.float64))
    previous = []
    if exists(join(directory, HISTORY_FILE)):
        previous = [e for e in _read_json(join(directory, HISTORY_FILE)) if e["version"] < version]
    _write_json(join(directory, HISTORY_FILE), [*previous, entry])
    write_text_atomic(join(directory, CONFIG_FILE), config_yaml)
    _write_json(join(directory, MODEL_FILE), model)


def update_history_entry(directory: str, version: int, changes: dict[str, Any]) -> None:
    """Add results known only after labelling (sizes, exact shares) to a version's entry."""
    history = _read_json(join(directory, HISTORY_FILE))
    for entry in history:
        if entry["version"] == version:
            entry.update(changes)
    _write_json(join(directory, HISTORY_FILE), history)

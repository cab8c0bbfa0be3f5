"""What the sections read, opened once and shared: store, clustering, statistics, the scan.

Each input is loaded on first use and the result (or the error) is kept, so that two
sections needing the same input neither read it twice nor fail differently. An input
that does not exist yet raises `MissingInputError`, which the page shows as a calm
note ("no clustering yet, run `sonotype cluster`") rather than a warning.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa

from analysis.clusters_io import (
    CONFIG_FILE,
    OCCURRENCE_FILE,
    TOKEN_ENTROPY_FILE,
    Clustering,
    clusters_dir,
    has_clustering,
    load_clustering,
)
from analysis.report.assets import Assets
from analysis.report.plots import sonotype_colours
from analysis.report.scan import ScanResult, scan_store
from analysis.stats import compute_statistics
from analysis.store import FeatureStore, open_store
from analysis.store_integrity import require_intact
from sonotype.config.load import read_yaml
from sonotype.config.report import ReportConfig
from sonotype.contracts import OutputLayout
from sonotype.errors import ConfigError, SonotypeError
from sonotype.fsio import exists, join, read_parquet

logger = logging.getLogger(__name__)

T = TypeVar("T")


class MissingInputError(SonotypeError):
    """An input of a section does not exist (yet); the section says so and the page goes on."""


INPUT_ERRORS = (SonotypeError, OSError, ValueError, KeyError, pa.ArrowException)
"""What a missing, truncated or malformed input raises (Parquet, JSON, Zarr, audio)."""


@dataclass
class ReportContext:
    """The report's inputs and settings.

    Attributes:
        out: the output root.
        config: report settings.
        assets: writer of the report's images and audio.
        run_dir: a training run directory, or None.
        features: the feature store URL.
        name: the clustering's name.
    """

    out: str
    config: ReportConfig
    assets: Assets
    run_dir: str | None
    features: str
    name: str
    _cache: dict[str, Any] = field(default_factory=dict)

    @property
    def layout(self) -> OutputLayout:
        return OutputLayout(self.out)

    @property
    def clusters_directory(self) -> str:
        return clusters_dir(self.features, self.name)

    def _cached(self, key: str, load: Callable[[], T]) -> T:
        """`load()` once; a broken input is kept as a SonotypeError and raised on each use."""
        if key not in self._cache:
            try:
                self._cache[key] = (load(), None)
            except SonotypeError as error:
                self._cache[key] = (None, error)
            except INPUT_ERRORS as error:
                wrapped = SonotypeError(f"{type(error).__name__}: {error}")
                wrapped.__cause__ = error
                self._cache[key] = (None, wrapped)
        value, error = self._cache[key]
        if error is not None:
            raise error
        return value

    def store(self) -> FeatureStore:
        """The feature store.

        Raises:
            MissingInputError: there is no store yet.
            SonotypeError: the store is broken.
        """

        def load() -> FeatureStore:
            if not exists(self.features):
                raise MissingInputError(
                    f"{self.features}: no feature store yet; run `sonotype encode` first"
                )
            store = open_store(self.features)
            require_intact(store)
            return store

        return self._cached("store", load)

    def clustering(self) -> Clustering:
        """The committed clustering `name`.

        Raises:
            MissingInputError: there is no clustering of that name yet.
            SonotypeError: it is incomplete.
        """

        def load() -> Clustering:
            directory = self.clusters_directory
            if not has_clustering(directory):
                raise MissingInputError(
                    f"{directory}: no clustering {self.name!r} yet (no model.json); "
                    "run `sonotype cluster` first"
                )
            return load_clustering(directory)

        return self._cached("clustering", load)

    def colours(self) -> list[str]:
        """One colour per sonotype of the clustering."""
        return sonotype_colours(self.clustering().k)

    def labelled_store(self) -> FeatureStore:
        """The store, checked to hold the clustering's labels.

        Raises:
            MissingInputError: no store, no clustering, or no `labels/<name>` in the store.
        """
        store, clustering = self.store(), self.clustering()
        if self.name not in store.label_names(clustering.feature_spec(self.features).storage_level):
            raise MissingInputError(
                f"{self.features}: no labels/{self.name} at {clustering.level} level; "
                f"run `sonotype cluster --name {self.name}` to label the store"
            )
        return store

    def scan(self) -> ScanResult:
        """Examples per sonotype, sizes and the map sample, in one pass (`analysis.report.scan`)."""

        def load() -> ScanResult:
            store, clustering = self.labelled_store(), self.clustering()
            spec = clustering.feature_spec(self.features)
            k = clustering.k
            per_sonotype = (
                min(self.config.examples_per_sonotype, self.config.max_examples // k)
                if k <= self.config.max_examples
                else 0
            )
            return scan_store(
                store,
                spec,
                self.name,
                clustering.centroids,
                clustering.n_rows,
                per_sonotype,
                self.config.map_sample,
                self.config.block_rows,
                self.config.random_state,
            )

        return self._cached("scan", load)

    def statistics(self) -> dict[str, pd.DataFrame]:
        """The occurrence and token-entropy tables with dates and hours in the report's zone.

        The clustering's own tables are used when they were computed in that zone;
        otherwise both are recomputed from the store's labels and tokens (one pass,
        `analysis.stats.compute_statistics`).
        """

        def load() -> dict[str, pd.DataFrame]:
            clustering = self.clustering()
            zone = self.config.timezone
            paths = {
                "occurrence": clustering.stats_path(OCCURRENCE_FILE),
                "token_entropy": clustering.stats_path(TOKEN_ENTROPY_FILE),
            }
            saved_zone = self._clustering_timezone()
            if saved_zone == zone and all(exists(path) for path in paths.values()):
                return {key: read_parquet(path).to_pandas() for key, path in paths.items()}
            logger.info(
                "statistics of clustering %r are in %s, the report shows %s: recomputing them",
                self.name,
                saved_zone or "an unknown zone (or missing)",
                zone,
            )
            tables = compute_statistics(
                self.labelled_store(), self.name, clustering.n_rows, zone, self.config.block_rows
            )
            return {key: tables[key].to_pandas() for key in paths}

        return self._cached("statistics", load)

    def _clustering_timezone(self) -> str | None:
        try:
            saved = read_yaml(join(self.clusters_directory, CONFIG_FILE))
        except ConfigError:
            return None
        zone = saved.get("timezone")
        return str(zone) if zone else None

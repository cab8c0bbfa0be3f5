"""`cluster_features`: fit or update a named clustering, label the store, write statistics.

A run goes through three phases, each of which a re-run can finish after a crash:

1. fit (new clustering, or `--force`) or update (`--update` with new rows): the model
   is computed in memory, then committed as a new version (`clusters_io`);
2. labels: if `labels/<name>` does not record the current version as complete, the
   version's rows are labelled block by block (all rows after a fit or with
   `relabel_all`, only the new rows otherwise), then its attributes record
   `version` and `n_labelled`;
3. statistics, written when labels were written in this run or a table is missing.

Re-running a finished run, or an update without new rows, changes nothing.
"""

import datetime as dt
import hashlib
import logging
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from analysis import clusters_io
from analysis.clusters_io import Clustering, HistoryEntry
from analysis.features import CENTRED, SCALED, WINDOW, FeatureSpec, FeatureView, row_moments
from analysis.incremental import centroid_drift, far_groups, label_changes, match_centroids
from analysis.kmeans import StreamingKMeans, block_sample, reservoir_sample
from analysis.labelling import ensure_labels
from analysis.scheduler import dask_client
from analysis.stats import compute_statistics, k_selection_table
from analysis.store import FeatureStore, open_store
from analysis.store_integrity import require_intact
from sonotype.config.cluster import SHAPING_FIELDS, ClusterConfig
from sonotype.config.load import dump_config
from sonotype.errors import OutputConflictError, SonotypeError
from sonotype.fsio import exists, join, url_to_fs, write_parquet_atomic
from sonotype.output_lock import output_lock

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterSummary:
    """What `cluster_features` did.

    Attributes:
        name: the clustering.
        directory: `OUT/clusters/<name>/`.
        action: "fit", "update" or "unchanged" (nothing new to fit).
        version: the current version.
        k: number of sonotypes.
        level: "frame" or "segment".
        n_rows: rows the model has seen.
        n_labelled: rows labelled in this run.
        inertia: mean squared distance of the rows labelled in this run (NaN if none).
        relabelled: share of old rows whose stored label was rewritten with another
            sonotype (updates only; 0 unless `relabel_all`).
        reassigned: share of old rows the new centroids would place in another sonotype
            (updates only): how far the map drifted, whether or not labels were rewritten.
        drift_max: largest centroid drift (updates only).
        tables: statistics tables written in this run, by name → path.
    """

    name: str
    directory: str
    action: str
    version: int
    k: int
    level: str
    n_rows: int
    n_labelled: int
    inertia: float
    relabelled: float | None = None
    reassigned: float | None = None
    drift_max: float | None = None
    tables: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        """One paragraph for the log."""
        text = (
            f"clustering {self.name!r} ({self.action}): version {self.version}, k={self.k} on "
            f"{self.n_rows} {self.level}s; {self.n_labelled} labelled this run"
        )
        if self.n_labelled:
            text += f" (mean squared distance {self.inertia:.4g})"
        if self.reassigned is not None:
            text += (
                f"; stored labels rewritten: {self.relabelled:.2%}; old rows the new "
                f"centroids would place elsewhere: {self.reassigned:.2%}; largest centroid "
                f"drift {self.drift_max:.4g}"
            )
        return text + f"; saved in {self.directory}"


def saved_config_path(store: str, name: str) -> str | None:
    """The resolved config of the clustering `name` of `store`, if it exists (for --update)."""
    directory = clusters_io.clusters_dir(store, name)
    if not clusters_io.has_clustering(directory):
        return None
    return join(directory, clusters_io.CONFIG_FILE)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _data_version(store: FeatureStore) -> dict[str, Any]:
    shards = store.shards
    digest = hashlib.sha256("\n".join(sorted(shards)).encode()).hexdigest()
    return {
        "n_frames": store.n_frames,
        "n_segments": store.n_segments,
        "n_shards": len(shards),
        "shards_sha256": digest,
    }


def _estimator(config: ClusterConfig) -> StreamingKMeans:
    return StreamingKMeans(
        config.k,
        batch_size=config.batch_size,
        block_rows=config.block_rows,
        passes=config.passes,
        reservoir_size=config.reservoir_size,
        n_init=config.n_init,
        reassignment_ratio=config.reassignment_ratio,
        random_state=config.random_state,
    )


def _model_json(
    name: str, config: ClusterConfig, view: FeatureView, version: int, n_rows: int, fit_id: str
) -> dict[str, Any]:
    return {
        "name": name,
        "fit_id": fit_id,
        "store": view.store.url,
        "level": config.level,
        "window_s": config.window_s,
        "window_frames": view.spec.window_frames,
        "loudness": view.spec.loudness,
        "feature": config.feature,
        "normalise": config.normalise,
        "k": config.k,
        "dim": view.dim,
        "version": version,
        "n_rows": n_rows,
        "data": _data_version(view.store),
        "created": _now(),
    }


def _new_spec(store: str, features: FeatureStore, config: ClusterConfig) -> FeatureSpec:
    """The rows a new fit groups; a centre (and scale) is computed here (one pass)."""
    window_frames = 0
    if config.level == WINDOW:
        window_frames = max(1, round(config.window_s * features.frame_rate))
    spec = FeatureSpec(
        store,
        config.level,
        config.feature,
        config.normalise,
        window_frames=window_frames,
        loudness=config.level == WINDOW and config.loudness,
    )
    if config.normalise not in CENTRED:
        return spec
    raw = replace(spec, normalise="none").open(features)
    centre, scale = row_moments(raw, config.block_rows)
    return replace(spec, centre=centre, scale=scale if config.normalise in SCALED else None)


def _fit_new(name: str, directory: str, config: ClusterConfig, view: FeatureView) -> np.ndarray:
    """Fit and commit version 1 on every committed row; returns the reservoir sample."""
    n_rows = view.n_rows
    model = _estimator(config).fit(view)
    entry: HistoryEntry = {
        "version": 1,
        "kind": "fit",
        "created": _now(),
        "n_rows": n_rows,
        "n_new_rows": n_rows,
        "relabel_all": True,
        **_data_version(view.store),
    }
    clusters_io.commit_version(
        directory,
        _model_json(name, config, view, 1, n_rows, uuid.uuid4().hex),
        model.cluster_centers_,
        model.counts_,
        entry,
        dump_config(config),
        centre=view.spec.centre,
        scale=view.spec.scale,
    )
    return model.reservoir_


def _update(
    name: str, directory: str, config: ClusterConfig, view: FeatureView, old: Clustering
) -> np.ndarray | None:
    """Continue (or refit) the saved model with the rows added since; commit a new version.

    Returns:
        The reservoir sample of a refit (None when continuing).
    """
    n_old, n_rows = old.n_rows, view.n_rows
    rng = np.random.default_rng(config.random_state)
    sample = block_sample(view, config.churn_sample, rng, config.block_rows, 0, n_old)
    init, init_counts = old.centroids, old.counts
    opened: list[int] = []
    if config.update_strategy == "continue" and config.new_sonotypes:
        # Far new rows get centroids of their own before the fit continues, so that a
        # new sound neither drags an old sonotype away nor hides inside it.
        new_sample = block_sample(view, config.churn_sample, rng, config.block_rows, n_old)
        centres, shares = far_groups(
            sample,
            new_sample,
            old.centroids,
            config.far_quantile,
            config.new_sonotype_min_share,
            config.new_sonotypes,
            config.random_state,
        )
        opened = list(range(old.k, old.k + len(centres)))
        init = np.vstack([old.centroids, centres])
        init_counts = np.concatenate([old.counts, shares * (n_rows - n_old)])
        config = config.model_copy(update={"k": len(init)})
    estimator = _estimator(config)
    if config.update_strategy == "continue":
        estimator.fit(view, start=n_old, init=init, init_counts=init_counts)
    else:
        estimator.fit(view)
    mapping = match_centroids(init, estimator.cluster_centers_)
    centroids = estimator.cluster_centers_[mapping]
    counts = estimator.counts_[mapping]
    drift = centroid_drift(old.centroids, centroids[: old.k])
    changed = label_changes(sample, old.centroids, centroids)
    version = old.version + 1
    entry: HistoryEntry = {
        "version": version,
        "kind": "update",
        "created": _now(),
        "n_rows": n_rows,
        "n_new_rows": n_rows - n_old,
        "relabel_all": config.relabel_all,
        "strategy": config.update_strategy,
        **_data_version(view.store),
        "mapping": mapping.tolist(),
        "new_sonotypes": opened,
        # the share of old rows that would move, estimated on a sample until (with
        # relabel_all) labelling counts it exactly; labels rewritten: none so far
        "reassigned": changed / max(1, len(sample)),
        "reassigned_method": "sample",
        "reassigned_rows": len(sample),
        "relabelled": 0.0,
        "drift": drift.tolist(),
        "drift_mean": float(drift.mean()),
        "drift_max": float(drift.max()),
    }
    clusters_io.commit_version(
        directory,
        _model_json(name, config, view, version, n_rows, old.model["fit_id"]),
        centroids,
        counts,
        entry,
        dump_config(config),
    )
    if opened:
        logger.info("update of %r opened new sonotypes %s for new rows far from all", name, opened)
    logger.info(
        "update of %r: %d new rows; %.2f%% of old rows would move (sample of %d), drift max %.4g",
        name,
        n_rows - n_old,
        100 * entry["reassigned"],
        len(sample),
        entry["drift_max"],
    )
    reservoir = estimator.reservoir_ if config.update_strategy == "refit" else None
    return reservoir


def _check_shaping(directory: str, saved: Clustering, config: ClusterConfig, force: bool) -> None:
    # the window length shapes only window-level clusterings (older models lack it)
    keys = [
        k for k in SHAPING_FIELDS if k not in ("window_s", "loudness") or config.level == WINDOW
    ]
    differing = [
        f"{key}={getattr(config, key)!r} (saved {saved.model.get(key)!r})"
        for key in keys
        if getattr(config, key) != saved.model.get(key)
    ]
    if differing and not force:
        raise OutputConflictError(
            f"{directory}: clustering was made with other settings: {', '.join(differing)}; "
            "use another --name, or --force to refit it from scratch"
        )


def _write_statistics(
    store: FeatureStore,
    name: str,
    clustering: Clustering,
    config: ClusterConfig,
    view: FeatureView,
    reservoir: np.ndarray | None,
    force: bool,
) -> dict[str, str]:
    tables: dict[str, str] = {}
    directory = clustering.directory
    k_path = clusters_io.stats_path(directory, clusters_io.K_SELECTION_FILE)
    if config.k_selection and (reservoir is not None or not exists(k_path)):
        if reservoir is None:
            rng = np.random.default_rng(config.random_state)
            reservoir = reservoir_sample(view, config.reservoir_size, rng, config.block_rows)
        table = k_selection_table(
            reservoir, config.k_selection, config.silhouette_sample, config.random_state
        )
        write_parquet_atomic(table, k_path)
        tables["k_selection"] = k_path
    paths = {
        "occurrence": clusters_io.stats_path(directory, clusters_io.OCCURRENCE_FILE),
        "token_usage": clusters_io.stats_path(directory, clusters_io.TOKEN_USAGE_FILE),
        "token_entropy": clusters_io.stats_path(directory, clusters_io.TOKEN_ENTROPY_FILE),
    }
    if force or not all(exists(path) for path in paths.values()):
        computed = compute_statistics(
            store, name, clustering.n_rows, config.timezone, config.block_rows
        )
        for key, path in paths.items():
            write_parquet_atomic(computed[key], path)
            tables[key] = path
    return tables


def cluster_features(
    store: str,
    name: str = "default",
    config: ClusterConfig | None = None,
    update: bool = False,
    force: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
) -> ClusterSummary:
    """Fit or update the clustering `name` of a feature store, label it, write statistics.

    Args:
        store: the feature store (`OUT/features.zarr`); results go to `OUT/clusters/<name>/`
            and `labels/<name>` in the store.
        name: the clustering's name.
        config: settings (None: the schema defaults).
        update: add the rows committed since the saved version (a new year): continue
            the model, match centroids to keep sonotype identities, record mapping,
            the share of old rows rewritten and that would move, and drift.
        force: refit from scratch, replacing a clustering made with other settings or
            on other rows.
        workers: threads for labelling when no scheduler is given.
        scheduler: address of a Dask scheduler for labelling.

    Returns:
        A summary of what was done.

    Raises:
        SonotypeError: no store, no clustering to update, or too few rows.
        OutputConflictError: the saved clustering was made with other settings or rows,
            and neither `update` nor `force` says what to do.
        OutputLockedError: another run is writing this clustering.
    """
    config = config if config is not None else ClusterConfig()
    if not name or "/" in name or name.startswith("."):
        raise SonotypeError(f"clustering name must be a plain folder name, got {name!r}")
    with output_lock(clusters_io.clusters_root(store), "cluster", name):
        return _cluster_features(store, name, config, update, force, workers, scheduler)


def _cluster_features(
    store: str,
    name: str,
    config: ClusterConfig,
    update: bool,
    force: bool,
    workers: int,
    scheduler: str | None,
) -> ClusterSummary:
    logger.info("clustering %r of %s with %s", name, store, config.model_dump(mode="json"))
    features = open_store(store, mode="r+")
    require_intact(features)
    directory = clusters_io.clusters_dir(store, name)
    saved = (
        clusters_io.load_clustering(directory) if clusters_io.has_clustering(directory) else None
    )
    if saved is not None:
        _check_shaping(directory, saved, config, force)
    if saved is not None and not force:
        spec = saved.feature_spec(store)
    else:
        spec = _new_spec(store, features, config)
    view = spec.open(features)
    if update and saved is None:
        raise SonotypeError(f"{directory}: no clustering {name!r} to update; run without --update")
    if saved is not None and not force and saved.n_rows > view.n_rows:
        raise OutputConflictError(
            f"{directory}: clustering {name!r} saw {saved.n_rows} {config.level}s but the "
            f"store has only {view.n_rows} (was it rebuilt?); use --force to refit"
        )
    if saved is not None and not update and not force and saved.n_rows != view.n_rows:
        raise OutputConflictError(
            f"{directory}: clustering {name!r} was fitted on {saved.n_rows} {config.level}s, "
            f"the store now has {view.n_rows}; use --update to add them or --force to refit"
        )
    if force and saved is not None:
        fs, path = url_to_fs(directory)
        fs.rm(path, recursive=True)
        saved = None
    n_labelled, inertia = 0, float("nan")
    action, reservoir = "unchanged", None
    with dask_client(scheduler) as client:
        if saved is not None:
            # Labels of the saved version may be unfinished (a killed run): finish them first.
            n_labelled, inertia = ensure_labels(
                features, name, spec, saved, config, client, workers
            )
        if saved is None:
            reservoir = _fit_new(name, directory, config, view)
            action = "fit"
        elif update and view.n_rows > saved.n_rows:
            reservoir = _update(name, directory, config, view, saved)
            action = "update"
        current = clusters_io.load_clustering(directory)
        if action != "unchanged":
            n_new, inertia = ensure_labels(features, name, spec, current, config, client, workers)
            n_labelled += n_new
    tables = _write_statistics(
        features, name, current, config, view, reservoir, force=n_labelled > 0
    )
    last = clusters_io.load_clustering(directory).history[-1]
    updated = action == "update"
    return ClusterSummary(
        name=name,
        directory=directory,
        action=action,
        version=current.version,
        k=current.k,
        level=current.level,
        n_rows=current.n_rows,
        n_labelled=n_labelled,
        inertia=inertia,
        relabelled=last["relabelled"] if updated else None,
        reassigned=last["reassigned"] if updated else None,
        drift_max=last["drift_max"] if updated else None,
        tables=tables,
    )

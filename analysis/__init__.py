"""Analysis: the Zarr feature store, out-of-core clustering, statistics and the report.

For the encode stage (writing features):
    `create_store(url, StoreIdentity(...))` then `store.append(tokens, embeddings,
    segments, shards=[...])` per shard; see `analysis.store_append` for the commit protocol.

For readers (report, notebooks):
    `open_store(url)` → committed lengths, `read`, `read_segments`, `dask_array`;
    `load_clustering(clusters_dir(store_url, name))` → centroids, counts, history;
    `Clustering.stats_path(OCCURRENCE_FILE)` etc. → the statistics tables.

For the CLI:
    `cluster_features(store_url, name, config, update=..., force=...)` → `ClusterSummary`;
    `write_report(out, config=ReportConfig(...), run_dir=..., features=..., name=...)`
    → the path of `OUT/report/index.html`.
"""

from analysis.clustering import ClusterSummary, cluster_features, saved_config_path
from analysis.clusters_io import (
    K_SELECTION_FILE,
    OCCURRENCE_FILE,
    TOKEN_ENTROPY_FILE,
    TOKEN_USAGE_FILE,
    Clustering,
    clusters_dir,
    has_clustering,
    load_clustering,
)
from analysis.features import FeatureSpec, FeatureView
from analysis.kmeans import StreamingKMeans
from analysis.report import write_report
from analysis.store import UNLABELLED, FeatureStore, StoreIdentity, create_store, open_store

__all__ = [
    "K_SELECTION_FILE",
    "OCCURRENCE_FILE",
    "TOKEN_ENTROPY_FILE",
    "TOKEN_USAGE_FILE",
    "UNLABELLED",
    "ClusterSummary",
    "Clustering",
    "FeatureSpec",
    "FeatureStore",
    "FeatureView",
    "StoreIdentity",
    "StreamingKMeans",
    "cluster_features",
    "clusters_dir",
    "create_store",
    "has_clustering",
    "load_clustering",
    "open_store",
    "saved_config_path",
    "write_report",
]

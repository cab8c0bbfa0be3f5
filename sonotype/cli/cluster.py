"""`sonotype cluster`: out-of-core k-means on the feature store → sonotypes."""

import argparse
import logging

from sonotype.cli.common import (
    HelpFormatter,
    add_config_options,
    add_dask_options,
    load_stage_config,
)

logger = logging.getLogger(__name__)

_EPILOG = """\
examples:
  sonotype cluster --features out/features.zarr --k 12
  sonotype cluster --features out/features.zarr --k 12 --level segment --name seg12
  sonotype cluster --features out/features.zarr --name default --update      (a new year)
  sonotype cluster --features out/features.zarr --k 12 --level segment --name bot \
      --set feature=tokens                                     (bag-of-tokens per segment)

--update continues from the saved model with the frames added since, labels them, and
keeps label identities stable across versions (old and new centroids matched by the
Hungarian method); the mapping, churn and centroid drift are recorded. It reuses the
settings saved with the clustering (OUT/clusters/NAME/config.yaml) unless --config is given.
Results: labels/NAME in the store; OUT/clusters/NAME/ (model.json, history.json,
versions/vNNNN/centroids.npy, stats/*.parquet).
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "cluster",
        parents=[parent],
        help="out-of-core k-means on features → sonotypes; --update for a new year",
        description=(
            "Cluster frame or segment embeddings with MiniBatchKMeans.partial_fit over Zarr\n"
            "chunks (memory bounded by chunk size), write labels back to the store, and save\n"
            "centroids, counts, history and statistics under OUT/clusters/NAME/."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--features", required=True, metavar="STORE", help="features.zarr")
    parser.add_argument("--k", type=int, metavar="K", help="number of sonotypes (new clusterings)")
    parser.add_argument(
        "--level",
        choices=["frame", "window", "segment"],
        help="cluster frames, windows (--set window_s=SECONDS, default 1) or segments",
    )
    parser.add_argument("--name", default="default", help="name of the clustering")
    parser.add_argument(
        "--update", action="store_true", help="update a saved clustering with new data"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="refit from scratch, replacing a clustering made with other settings or rows",
    )
    add_config_options(parser, None, "passes=2")
    add_dask_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import analysis
    from sonotype.config.cluster import ClusterConfig

    overrides = list(args.overrides)
    if args.k is not None:
        overrides.append(f"k={args.k}")
    if args.level is not None:
        overrides.append(f"level={args.level}")
    args.overrides = overrides
    if args.update and args.config is None:
        # An update starts from the settings the clustering was made with.
        args.config = analysis.saved_config_path(args.features, args.name)
    config = load_stage_config(args, ClusterConfig)
    summary = analysis.cluster_features(
        args.features,
        name=args.name,
        config=config,
        update=args.update,
        force=args.force,
        workers=args.workers,
        scheduler=args.scheduler,
    )
    logger.info("%s", summary.describe())
    return 0

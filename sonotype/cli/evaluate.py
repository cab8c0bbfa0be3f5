"""`sonotype evaluate OUT`: score a clustering against annotations, beside a log-mel yardstick."""

import argparse
import logging
import sys

from sonotype.cli.common import HelpFormatter

logger = logging.getLogger(__name__)

_EPILOG = """\
examples:
  sonotype evaluate out --annotations example/ground_truth.csv
  sonotype evaluate out --name seg12 --annotations labels.csv --window 2
  sonotype evaluate out --name default win seg --annotations labels.csv   (compare three)
  sonotype evaluate out --annotations raven/*.selections.txt --raven-label Species \\
      --fill none                        (windows without a selection count as "none")

Annotations: a CSV with `label`, `path` (or `recording_id`) and `start_s`/`end_s`
(seconds from the file start) or `begin_time`/`end_time` (UTC, ISO 8601); or Raven
selection tables (`Begin Time (s)`, `End Time (s)`, the label column of --raven-label),
one per recording, named after it or with a `Begin File` column.

Each window gets the label that covers most of it (at least --min-overlap of it). The
clustering, k-means on each window's mean log-mel (64 bands), and k-means on its
spectral shape (mean level removed) are scored on the same windows with the same k:
NMI, ARI, V-measure, purity, and a linear probe (logistic regression, folds grouped by
recording). Results: OUT/clusters/NAME/evaluation/ (scores.parquet, scores.csv,
windows.parquet, quality.png); the report shows them in its Quality section.
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        parents=[parent],
        help="score sonotypes against annotations, beside a log-mel yardstick",
        description=(
            "Score a clustering of OUT/features.zarr against annotations per window and per\n"
            "segment, beside k-means on log-mel statistics of the same windows."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("out", metavar="OUT", help="output root (catalog, shards, features)")
    parser.add_argument(
        "--annotations", nargs="+", required=True, metavar="FILE", help="CSV or Raven tables"
    )
    parser.add_argument(
        "--name",
        nargs="+",
        default=["default"],
        metavar="NAME",
        help="clustering(s) to score; several share the windows, yardstick and probes",
    )
    parser.add_argument(
        "--window", type=float, default=1.0, metavar="SECONDS", help="window length"
    )
    parser.add_argument(
        "--min-overlap",
        type=float,
        default=0.5,
        metavar="SHARE",
        help="share of a window its label must cover",
    )
    parser.add_argument(
        "--fill", metavar="LABEL", help="label of windows no annotation covers (default: skip)"
    )
    parser.add_argument(
        "--raven-label", default="Annotation", metavar="COLUMN", help="Raven label column"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of k-means and the probe")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import evaluation
    from sonotype.errors import ConfigError

    if args.window <= 0 or not 0 < args.min_overlap <= 1:
        raise ConfigError("--window must be > 0 and --min-overlap in (0, 1]")
    settings = evaluation.EvaluationSettings(
        window_s=args.window,
        min_overlap=args.min_overlap,
        fill=args.fill,
        raven_label=args.raven_label,
        seed=args.seed,
    )
    for result in evaluation.evaluate(args.out, args.name, args.annotations, settings):
        sys.stdout.write(result.describe() + "\n\n")
        logger.info("evaluation written to %s", result.directory)
    return 0

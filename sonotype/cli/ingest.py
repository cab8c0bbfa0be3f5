"""`sonotype ingest INPUT... --out OUT`: recordings → catalogs and WebDataset shards."""

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
  sonotype ingest /data/guiana/2024 --out /data/sonotype
  sonotype ingest 's3://lab-audio/guiana/**/*.flac' --out s3://lab-work/sonotype --scheduler tcp://head:8786
  sonotype ingest example-data --out out --set segment.length_s=5 --strict

A re-run skips recordings already ingested with the same fingerprint, so adding a new
year is the same command with the new folder; a killed run resumes where it stopped.
Failed files are listed in OUT/catalog/recordings.parquet with the reason; --strict
turns any failure into exit 1. OUT/catalog/ingest.yaml keeps the settings OUT was made
with; other output-shaping settings are refused unless --force.
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "ingest",
        parents=[parent],
        help="recordings → catalogs + resampled, segmented WebDataset shards",
        description=(
            "Discover recordings (folders, globs, fsspec URLs), read their metadata (site,\n"
            "start time), stream each file in blocks through channel selection, resampling,\n"
            "segmentation and quality checks, and write FLAC segments to WebDataset shards\n"
            "under OUT/shards with catalogs under OUT/catalog. Runs on Dask."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="folder, glob or URL of recordings"
    )
    parser.add_argument("--out", required=True, metavar="OUT", help="output root (path or URL)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any recording failed")
    parser.add_argument(
        "--force",
        action="store_true",
        help="accept settings that differ from those OUT was made with, and redo every "
        "recording found",
    )
    add_config_options(parser, "ingest.yaml", "segment.length_s=5")
    add_dask_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import ingest
    from sonotype.config.ingest import IngestConfig

    config = load_stage_config(args, IngestConfig)
    summary = ingest.run_ingest(
        args.inputs,
        args.out,
        config,
        workers=args.workers,
        scheduler=args.scheduler,
        force=args.force,
    )
    logger.info("%s", summary.describe())
    return 1 if args.strict and summary.n_failed else 0

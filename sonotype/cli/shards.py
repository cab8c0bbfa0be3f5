"""`sonotype shards verify|stats OUT`: check shards against the catalog; hours and QC tables."""

import argparse
import logging
import sys

from sonotype.cli.common import HelpFormatter

logger = logging.getLogger(__name__)

_EPILOG = """\
examples:
  sonotype shards verify out        every shard opens, every sample decodes, keys match the catalog
  sonotype shards stats out         hours per site / year / hour of day (UTC), QC summary
  sonotype shards stats out --timezone America/Cayenne
                                    the same, years and hours of day on local time
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "shards",
        parents=[parent],
        help="verify shards; hours and QC statistics",
        description="Verify the WebDataset shards of OUT against its catalog, or summarise them.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify",
        parents=[parent],
        help="check every shard and sample against catalog/segments.parquet",
        formatter_class=HelpFormatter,
    )
    verify.add_argument("out", metavar="OUT", help="output root written by `sonotype ingest`")
    verify.set_defaults(handler=run_verify)
    stats = actions.add_parser(
        "stats",
        parents=[parent],
        help="hours per site / year / hour-of-day and QC summary (table + Parquet)",
        formatter_class=HelpFormatter,
    )
    stats.add_argument("out", metavar="OUT", help="output root written by `sonotype ingest`")
    stats.add_argument(
        "--timezone",
        metavar="ZONE",
        help="IANA time zone for years and hours of day (default: UTC)",
    )
    stats.set_defaults(handler=run_stats)


def run_verify(args: argparse.Namespace) -> int:
    import shards

    report = shards.verify_shards(args.out)
    for problem in report.problems:
        sys.stderr.write(f"{problem}\n")
    logger.info("%s", report.describe())
    return 1 if report.problems else 0


def run_stats(args: argparse.Namespace) -> int:
    import shards

    stats = shards.shard_stats(args.out, timezone=args.timezone)
    sys.stdout.write(stats.to_text() + "\n")
    return 0

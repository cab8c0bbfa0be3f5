"""`sonotype features verify OUT`: check every stored byte of the feature store."""

import argparse
import logging
import sys

from sonotype.cli.common import HelpFormatter

logger = logging.getLogger(__name__)

_EPILOG = """\
examples:
  sonotype features verify out      every chunk present, every segment's rows match its checksum
  sonotype features verify --features s3://bucket/run/features.zarr
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "features",
        parents=[parent],
        help="verify the feature store",
        description="Check the feature store written by `sonotype encode`.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify",
        parents=[parent],
        help="find missing chunks and rows that differ from their checksums, by shard",
        formatter_class=HelpFormatter,
    )
    verify.add_argument("out", metavar="OUT", nargs="?", help="output root (OUT/features.zarr)")
    verify.add_argument("--features", metavar="URL", help="the store, if not OUT/features.zarr")
    verify.set_defaults(handler=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    """Exit 0 when the store is whole, 1 when damage was found (listed on stderr)."""
    from analysis.store import open_store
    from analysis.store_integrity import verify_store
    from sonotype.contracts import OutputLayout
    from sonotype.errors import SonotypeError

    if args.features is None and args.out is None:
        raise SonotypeError("give OUT or --features URL")
    url = args.features or OutputLayout(args.out).features
    damage = verify_store(open_store(url))
    if damage.problems:
        sys.stderr.write(damage.describe() + "\n")
        return 1
    logger.info("%s", damage.describe())
    return 0

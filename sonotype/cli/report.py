"""`sonotype report OUT`: the self-contained HTML report."""

import argparse
import logging

from sonotype.cli.common import HelpFormatter, add_config_options, load_stage_config

logger = logging.getLogger(__name__)

_EPILOG = """\
examples:
  sonotype report out                      → out/report/index.html (opens from disk)
  sonotype report out --run runs/tiny      include training curves of that run
  sonotype report out --set timezone=America/Cayenne --set examples_per_sonotype=2
                                           local dates and hours; fewer audio examples
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "report",
        parents=[parent],
        help="write OUT/report/index.html: when and where each sonotype occurs",
        description=(
            "Write a self-contained HTML report (no server, no network): dataset overview,\n"
            "training curves, a gallery of sonotypes with audio examples, and when and where\n"
            "each sonotype occurs."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("out", metavar="OUT", help="output root")
    parser.add_argument("--run", metavar="RUN_DIR", help="training run to show curves from")
    parser.add_argument(
        "--features", metavar="STORE", help="feature store (default: OUT/features.zarr)"
    )
    parser.add_argument("--name", default="default", help="clustering to show")
    add_config_options(parser, None, "examples_per_sonotype=4")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import analysis
    from sonotype.config.report import ReportConfig

    config = load_stage_config(args, ReportConfig)
    index = analysis.write_report(
        args.out, config=config, run_dir=args.run, features=args.features, name=args.name
    )
    logger.info("report written to %s", index)
    return 0

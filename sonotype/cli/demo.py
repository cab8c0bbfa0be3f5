"""`sonotype demo`: the whole chain on the example corpus, one command."""

import argparse
import logging

from sonotype.cli.common import HelpFormatter, add_config_options, load_stage_config

logger = logging.getLogger(__name__)

_EPILOG = """\
what it runs, each stage reading what the previous one wrote under DIR/:
  example (two years) → ingest year 1 → shards verify → train (tiny) → encode →
  cluster → ingest year 2 → encode → cluster --update → report

examples:
  sonotype demo --out demo-out
  sonotype demo --out demo-out --config configs/demo.yaml --set train_steps=50
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=[parent],
        help="run the whole chain on the example corpus",
        description="Run every stage on the synthetic example deployment and write the report.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", default="demo-out", metavar="DIR", help="where everything goes")
    add_config_options(parser, "demo.yaml", "train_steps=50")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sonotype.cli.pipeline import run_demo
    from sonotype.config.demo import DemoConfig

    config = load_stage_config(args, DemoConfig)
    index = run_demo(config, args.out)
    logger.info("demo finished; open %s", index)
    return 0

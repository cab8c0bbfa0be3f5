"""`sonotype config show|validate`: print resolved configs, check config files."""

import argparse
import logging
import sys
from pathlib import Path

from sonotype.cli.common import HelpFormatter
from sonotype.config import config_kinds, config_model, kind_of_path
from sonotype.config.load import CONFIGS_DIR, dump_config, load_config
from sonotype.errors import ConfigError

logger = logging.getLogger(__name__)

_EPILOG = """\
examples:
  sonotype config validate                       every YAML under configs/
  sonotype config validate my-ingest.yaml --kind ingest
  sonotype config show ingest --set segment.length_s=5
  sonotype config show configs/model/tiny.yaml
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "config",
        parents=[parent],
        help="show resolved configs or validate config files",
        description="Show a config with every default filled in, or validate config files.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        parents=[parent],
        help="print a resolved config as YAML",
        formatter_class=HelpFormatter,
    )
    show.add_argument(
        "what", metavar="KIND|FILE", help=f"a kind ({', '.join(config_kinds())}) or a YAML file"
    )
    show.add_argument("--kind", choices=config_kinds(), help="kind of FILE if not under configs/")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    show.set_defaults(handler=run_show)
    validate = actions.add_parser(
        "validate", parents=[parent], help="validate config files", formatter_class=HelpFormatter
    )
    validate.add_argument(
        "files", nargs="*", metavar="FILE", help="YAML files (default: all of configs/)"
    )
    validate.add_argument(
        "--kind", choices=config_kinds(), help="kind of FILE if not under configs/"
    )
    validate.set_defaults(handler=run_validate)


def _kind(path: Path, explicit: str | None) -> str:
    kind = explicit or kind_of_path(path)
    if kind is None:
        raise ConfigError(f"{path}: cannot tell which kind of config this is; pass --kind")
    return kind


def run_show(args: argparse.Namespace) -> int:
    if args.what in config_kinds():
        config = load_config(config_model(args.what), None, args.overrides)
    else:
        path = Path(args.what)
        config = load_config(config_model(_kind(path, args.kind)), path, args.overrides)
    sys.stdout.write(dump_config(config))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    files = [Path(f) for f in args.files] or sorted(CONFIGS_DIR.rglob("*.yaml"))
    problems = 0
    for path in files:
        try:
            load_config(config_model(_kind(path, args.kind)), path)
        except ConfigError as error:
            problems += 1
            sys.stderr.write(f"{error}\n")
        else:
            logger.info("%s: valid", path)
    if problems:
        sys.stderr.write(f"{problems} of {len(files)} config files are invalid\n")
        return 2
    logger.info("all %d config files are valid", len(files))
    return 0

"""Options shared by subcommands, and the one way a subcommand loads its config."""

import argparse
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from sonotype.config.load import CONFIGS_DIR, load_config

M = TypeVar("M", bound=BaseModel)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps hand-wrapped descriptions and epilogs; shows defaults that say something."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and default not in (None, False, [], argparse.SUPPRESS)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def verbosity_parent() -> argparse.ArgumentParser:
    """`-v` / `-q`, accepted before or after the subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more detail (DEBUG logs)",
    )
    parent.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="warnings and errors only; no progress bars",
    )
    return parent


def add_config_options(parser: argparse.ArgumentParser, default: str | None, example: str) -> None:
    """`--config FILE` and repeatable `--set KEY=VALUE` overrides.

    Args:
        parser: the subcommand parser.
        default: config file used when `--config` is not given, relative to the
            repository's `configs/` (None: the schema defaults).
        example: an override to show in the help text.
    """
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=str(CONFIGS_DIR / default) if default else None,
        help="YAML config (validated; unknown keys are errors)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help=f"override one setting: dotted path, YAML value (e.g. {example}); repeatable",
    )


def add_dask_options(parser: argparse.ArgumentParser) -> None:
    """`--workers N` for a local Dask cluster, or `--scheduler ADDRESS` for an existing one."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes of the local Dask cluster",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler (e.g. tcp://head:8786) instead of a local one",
    )


def load_stage_config(args: argparse.Namespace, model: type[M]) -> M:
    """Load the subcommand's config from `--config` and `--set` (ConfigError if invalid)."""
    path = Path(args.config) if args.config else None
    return load_config(model, path, args.overrides)

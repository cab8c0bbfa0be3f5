"""Entry point of `sonotype`: parse, set up logging, dispatch, map errors to exit codes."""

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType

from sonotype import __version__
from sonotype.cli import (
    cluster,
    config,
    demo,
    encode,
    evaluate,
    example,
    features,
    ingest,
    report,
    shards,
    train,
)
from sonotype.cli.common import HelpFormatter, verbosity_parent
from sonotype.errors import SonotypeError, environment_message
from sonotype.logs import configure_logging, verbosity_to_level

logger = logging.getLogger(__name__)

_SUBCOMMANDS = (
    example,
    ingest,
    shards,
    train,
    encode,
    features,
    cluster,
    evaluate,
    report,
    demo,
    config,
)

_DESCRIPTION = """\
sonotype learns the sound structure of long-term field recordings without labels.

The stages, each reading what the previous one wrote under OUT/:
  example  write a synthetic example deployment (for trying things out)
  ingest   recordings → catalogs + resampled, segmented WebDataset shards
  shards   verify shards against the catalog; hours and QC statistics
  train    train or fine-tune a WavTokenizer tokenizer on the shards
  encode   tokens + embeddings of every segment → features.zarr
  features verify the feature store: every chunk present, every segment's checksum
  cluster  out-of-core k-means on features → sonotypes (--update for a new year)
  evaluate score sonotypes against annotations, beside a log-mel yardstick
  report   OUT/report/index.html: when and where each sonotype occurs
  demo     the whole chain on the example corpus, in one command
"""

_EPILOG = """\
examples:
  sonotype demo --out demo-out
  sonotype ingest /data/guiana/2024 --out /data/sonotype --config configs/ingest.yaml
  sonotype <command> --help

Exit codes: 0 success; 1 the job ran but found problems (e.g. --strict failures,
verify problems); 2 bad usage, config or input, or an output that cannot be written
(full disk, quota, read-only, no permission; the message says which); 130 Ctrl-C;
143 SIGTERM.
"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with one subparser per stage."""
    parent = verbosity_parent()
    parser = argparse.ArgumentParser(
        prog="sonotype",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
        parents=[parent],
    )
    parser.add_argument("--version", action="version", version=f"sonotype {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _SUBCOMMANDS:
        module.register(subparsers, parent)
    return parser


class _Terminated(BaseException):
    """SIGTERM arrived: like KeyboardInterrupt, it unwinds past `except Exception`, so
    every `with` and `finally` (locks, temporary files) cleans up on the way out."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """SIGTERM (a scheduler's stop, `kill`) ends the command like Ctrl-C does, with a
    message and exit code 143, instead of killing the process silently. Stages that stop
    more gracefully (training checkpoints first) install their own handler inside."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `sonotype` command; returns the exit code (tests call this in-process).

    Args:
        argv: arguments without the program name (None: `sys.argv[1:]`).

    Returns:
        0 on success, 1 when the job found problems, 2 on bad usage, config or input,
        130 on Ctrl-C, 143 on SIGTERM.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    configure_logging(
        verbosity_to_level(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    )
    try:
        with _sigterm_raises():
            return int(args.handler(args))
    except SonotypeError as error:
        sys.stderr.write(f"sonotype {args.command}: error: {error}\n")
        return 2
    except OSError as error:
        message = environment_message(error)
        if message is None:
            raise
        sys.stderr.write(f"sonotype {args.command}: error: {message}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"sonotype {args.command}: interrupted; run it again to resume\n")
        return 130
    except _Terminated:
        sys.stderr.write(f"sonotype {args.command}: terminated; run it again to resume\n")
        return 143

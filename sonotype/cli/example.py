"""`sonotype example OUT`: write the seeded synthetic example deployment."""

import argparse
import logging
import os

from sonotype.cli.common import HelpFormatter, add_config_options, load_stage_config

logger = logging.getLogger(__name__)

_EPILOG = """\
what it writes (same seed → same bytes):
  OUT/PARACOU/2024/20240315_084500.WAV          AudioMoth: UTC names, 48 kHz mono WAV
  OUT/NOURAGUES/2024/NOURAGUES_20240315_054500.wav  Song Meter: local-time names, 44.1 kHz stereo
  OUT/SAUT-LAVILETTE/2024/SAUT-LAVILETTE_....flac   Song Meter archive as FLAC, 44.1 kHz mono
  CONFIG.TXT, *_Summary.txt, ._* files           side files ingest must skip
  OUT/ground_truth.parquet                       dominant source of every second
  OUT/ground_truth.csv                           the same as annotations for `sonotype evaluate`

examples:
  sonotype example example-data
  sonotype example small --config configs/example/small.yaml --seed 7
  sonotype example short --set file_s=30 --set years=[2024]
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "example",
        parents=[parent],
        help="write a synthetic example deployment with ground truth",
        description=(
            "Write a synthetic, seeded deployment of autonomous recorders: several sites,\n"
            "two or more years, dawn chorus, frogs, insects, rain and background noise on a\n"
            "diurnal schedule, plus a table of which source dominates each second."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("out", metavar="OUT", help="folder to write the deployment into")
    parser.add_argument("--seed", type=int, help="random seed (overrides the config's seed)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, metavar="N", help="rendering processes"
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite an example made with other settings"
    )
    add_config_options(parser, None, "file_s=30")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sonotype.config.example import ExampleConfig
    from sonotype.example import write_example

    if args.seed is not None:
        args.overrides = [*args.overrides, f"seed={args.seed}"]
    config = load_stage_config(args, ExampleConfig)
    summary = write_example(config, args.out, force=args.force, workers=args.workers)
    verb = "found complete" if summary.reused else "wrote"
    logger.info(
        "%s %d files, %.1f min of audio, in %s",
        verb,
        len(summary.audio_files),
        summary.audio_s / 60,
        summary.root,
    )
    return 0

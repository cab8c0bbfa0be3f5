"""`sonotype encode`: tokens and embeddings of every kept segment → Zarr."""

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
  sonotype encode --checkpoint runs/tiny/export/tokenizer.pt --shards out
  sonotype encode --checkpoint runs/ft/export/tokenizer.pt --shards out --device cuda
  sonotype encode --checkpoint model.ckpt --model-config model.yaml --shards out --workers 8
  sonotype encode --checkpoint tokenizer.pt --shards out --scheduler tcp://head:8786
  sonotype encode --checkpoint tokenizer.pt --shards out --workers 0     (no Dask, this process)

Re-running resumes a killed run and appends only new shards (a new year); with nothing
new it does nothing. A store made with another checkpoint or other output-shaping
settings (filters, gain, float16_overflow) is refused unless --force, which replaces it.
A shard that cannot be read is left out and tried again by the next run; --strict exits
1 when that happens or a segment was skipped. Every run re-encodes in place the shards
whose chunks are missing from the store; with --verify also those whose stored rows
differ from their checksums (`sonotype features verify` lists them without repairing).
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "encode",
        parents=[parent],
        help="tokens + embeddings of every segment → features.zarr",
        description=(
            "Encode every kept segment of the shards with a tokenizer checkpoint and write\n"
            "tokens (int16), pre-quantisation embeddings (float16) and per-segment pooled\n"
            "embeddings to a Zarr v3 store, with a Parquet table linking frames to time."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="tokenizer checkpoint")
    parser.add_argument(
        "--model-config", metavar="YAML", help="YAML of a published .ckpt given as --checkpoint"
    )
    parser.add_argument("--shards", required=True, metavar="OUT", help="output root with shards")
    parser.add_argument("--out", metavar="STORE", help="feature store (default: OUT/features.zarr)")
    parser.add_argument(
        "--device", default="cpu", help="torch device: cpu (Dask workers) or cuda (one GPU)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a store made with another checkpoint or other settings",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="read every stored row, compare it with its checksum and re-encode damaged shards "
        "(without it, only shards under missing chunks are repaired)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 if a shard failed or a segment was skipped"
    )
    add_config_options(parser, None, "batch_size=16")
    add_dask_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import training
    from sonotype.config.encode import EncodeConfig

    config = load_stage_config(args, EncodeConfig)
    summary = training.encode_features(
        checkpoint=args.checkpoint,
        shards=args.shards,
        store=args.out,
        config=config,
        model_config=args.model_config,
        device=args.device,
        workers=args.workers,
        scheduler=args.scheduler,
        force=args.force,
        verify=args.verify,
    )
    logger.info("%s", summary.describe())
    return 1 if args.strict and (summary.failed or summary.skipped) else 0

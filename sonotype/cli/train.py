"""`sonotype train`: train or fine-tune a WavTokenizer tokenizer on shards."""

import argparse
import logging
import os

from sonotype.cli.common import HelpFormatter, add_config_options, load_stage_config

logger = logging.getLogger(__name__)

_EPILOG = """\
examples:
  sonotype train --config configs/train/tiny.yaml --shards out --run runs/tiny
  sonotype train --config configs/train/tiny.yaml --shards out --run runs/tiny --resume
  sonotype train --config configs/train/gpu-8gb.yaml --shards out --run runs/g --until-step 5000
  sonotype train --config configs/train/finetune-40.yaml --shards out --run runs/ft \\
      --init-from wavtokenizer_large_unify_600_24k.ckpt --init-config wavtokenizer_40.yaml
  torchrun --standalone --nproc_per_node 2 -m sonotype train \\
      --config configs/train/wavtokenizer-40.yaml --shards out --run-dir runs/w40

The run directory holds checkpoints (full state for exact --resume), an inference
export loadable by training.load_tokenizer (export/tokenizer.pt), metrics.jsonl and
metrics.csv, TensorBoard logs and the resolved config. SIGINT/SIGTERM save a
checkpoint after the current step and exit with code 0; --resume continues exactly.
"""


def register(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "train",
        parents=[parent],
        help="train or fine-tune the WavTokenizer tokenizer on shards",
        description=(
            "Train a WavTokenizer (encoder, single-codebook VQ, Vocos decoder; MPD, MRD and\n"
            "DAC discriminators) on crops streamed from shards, with gradient accumulation,\n"
            "AMP, exact resume and DDP under torchrun."
        ),
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--shards", required=True, metavar="OUT", help="output root with shards")
    # --run-dir: torchrun's own parser takes `--run` for an abbreviation of its --run-path.
    parser.add_argument(
        "--run",
        "--run-dir",
        dest="run",
        required=True,
        metavar="RUN_DIR",
        help="run directory (--run-dir under torchrun)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="resume from the run's last checkpoint"
    )
    parser.add_argument(
        "--init-from", metavar="CKPT", help="start from a checkpoint (sonotype or published .ckpt)"
    )
    parser.add_argument(
        "--init-config", metavar="YAML", help="YAML of a published checkpoint given to --init-from"
    )
    parser.add_argument(
        "--until-step",
        type=int,
        metavar="N",
        help="stop with a checkpoint at step N (the schedule still ends at optim.max_steps)",
    )
    add_config_options(parser, "train/tiny.yaml", "optim.max_steps=100")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import training
    from sonotype.config.train import TrainConfig

    config = load_stage_config(args, TrainConfig)
    result = training.train(
        config,
        shards=args.shards,
        run_dir=args.run,
        resume=args.resume,
        init_from=args.init_from,
        init_config=args.init_config,
        until_step=args.until_step,
    )
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, rank 0 speaks for all
        logger.info("%s", result.describe())
    return 0

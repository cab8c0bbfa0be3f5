"""The demo chain: every stage run through its own subcommand, as a user would type it.

The demo holds no stage logic: it builds the command lines of `sonotype example`,
`ingest`, `shards verify|stats`, `train`, `encode`, `cluster` and `report` and runs
them in this process one after another, each reading what the previous one wrote.
Every stage resumes, so a second `sonotype demo` into the same folder finishes
quickly and gives the same result.
"""

import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sonotype.config.demo import DemoConfig
from sonotype.config.load import resolve_preset
from sonotype.contracts import OutputLayout, RunLayout
from sonotype.errors import SonotypeError
from sonotype.fsio import exists, join

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo writes under its folder."""

    root: str

    @property
    def example(self) -> str:
        """The synthetic deployment (recordings and ground truth)."""
        return join(self.root, "example")

    @property
    def out(self) -> str:
        """The output root of every stage: catalog, shards, features, clusters, report."""
        return join(self.root, "out")

    @property
    def run(self) -> str:
        """The training run."""
        return join(self.root, "run")


def _verbosity_flags() -> list[str]:
    """Pass the demo's own verbosity on to each stage."""
    level = logging.getLogger("sonotype").getEffectiveLevel()
    if level <= logging.DEBUG:
        return ["-v"]
    return ["-q"] if level >= logging.WARNING else []


def _overrides(settings: Sequence[str]) -> list[str]:
    return [argument for setting in settings for argument in ("--set", setting)]


def demo_commands(config: DemoConfig, paths: DemoPaths) -> list[tuple[str, list[str]]]:
    """The demo's stages as (title, sonotype command line) in order."""
    workers = str(config.workers or os.cpu_count() or 1)
    layout = OutputLayout(paths.out)
    run = RunLayout(paths.run)
    example_config = (
        ["--config", str(resolve_preset("example", config.example))] if config.example else []
    )
    train_config = str(resolve_preset("train", config.train))
    resume = ["--resume"] if exists(run.checkpoints_dir) else []
    train_overrides = list(config.train_overrides)
    if config.train_steps is not None:
        train_overrides.insert(0, f"optim.max_steps={config.train_steps}")

    def years(selected: list[int]) -> list[str]:
        return [join(paths.example, "*", str(year)) for year in selected]

    encode = ["encode", "--checkpoint", run.export, "--shards", paths.out, "--workers", workers]
    commands = [
        (
            "write the example deployment",
            [
                "example",
                paths.example,
                "--workers",
                workers,
                *example_config,
                *_overrides(config.example_overrides),
            ],
        ),
        (
            f"ingest {', '.join(map(str, config.first_years))}",
            ["ingest", *years(config.first_years), "--out", paths.out, "--workers", workers],
        ),
        ("verify the shards", ["shards", "verify", paths.out]),
        ("shard statistics", ["shards", "stats", paths.out, "--timezone", config.timezone]),
        (
            "train the tokenizer",
            [
                "train",
                "--config",
                train_config,
                "--shards",
                paths.out,
                "--run",
                paths.run,
                *resume,
                *_overrides(train_overrides),
            ],
        ),
        ("encode tokens and embeddings", encode),
        (
            f"cluster into {config.k} sonotypes",
            [
                "cluster",
                "--features",
                layout.features,
                "--k",
                str(config.k),
                "--name",
                config.clustering,
                *_overrides([f"timezone={config.timezone}"]),
            ],
        ),
    ]
    if config.later_years:
        commands += [
            (
                f"a new year arrives: ingest {', '.join(map(str, config.later_years))}",
                ["ingest", *years(config.later_years), "--out", paths.out, "--workers", workers],
            ),
            ("encode the new shards", encode),
            (
                "update the sonotypes with stable labels",
                ["cluster", "--features", layout.features, "--name", config.clustering, "--update"],
            ),
        ]
    commands.append(
        (
            "write the report",
            [
                "report",
                paths.out,
                "--run",
                paths.run,
                "--name",
                config.clustering,
                *_overrides([f"timezone={config.timezone}"]),
            ],
        )
    )
    return commands


def run_demo(config: DemoConfig, root: str) -> str:
    """Run the whole chain under `root` and return the report's path.

    Raises:
        SonotypeError: a stage failed (its own message was printed before).
    """
    from sonotype.cli.main import main

    paths = DemoPaths(root)
    commands = demo_commands(config, paths)
    started = time.monotonic()
    for number, (title, argv) in enumerate(commands, start=1):
        logger.info("demo %d/%d: %s", number, len(commands), title)
        logger.debug("sonotype %s", " ".join(argv))
        step_started = time.monotonic()
        code = main([*argv, *_verbosity_flags()])
        if code != 0:
            raise SonotypeError(
                f"demo stopped at step {number} ({title}): `sonotype {' '.join(argv)}` "
                f"exited with {code}"
            )
        logger.info(
            "demo %d/%d done in %.1f s", number, len(commands), time.monotonic() - step_started
        )
    index = OutputLayout(paths.out).report_index
    logger.info("demo finished in %.1f min", (time.monotonic() - started) / 60)
    sys.stdout.write(f"report: {index}\n")
    return index

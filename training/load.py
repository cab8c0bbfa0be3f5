"""Load the models of a checkpoint of either format: sonotype's own or a published `.ckpt`.

`load_tokenizer` uses this for inference; a trainer fine-tuning from a checkpoint uses it
to get the generator and, when the file has them, the discriminators.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sonotype.config.load import load_config, read_yaml
from sonotype.config.model import ModelConfig
from sonotype.errors import CheckpointMismatchError, ConfigError
from training.checkpoint import (
    is_lightning_checkpoint,
    load_state_checked,
    parse_tokenizer_checkpoint,
    read_checkpoint_file,
)
from training.model import Discriminators, Generator, build_discriminators, build_generator
from training.published import config_from_published, is_published_config, load_published

logger = logging.getLogger(__name__)


@dataclass
class LoadedModels:
    """What a checkpoint holds, built and loaded (on the CPU)."""

    config: ModelConfig
    generator: Generator
    discriminators: Discriminators | None
    """None when the file has no discriminator weights (an inference export)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """sonotype checkpoints' `extra` (e.g. the training step); empty for published ones."""


def load_models(path: str | Path, config: str | Path | ModelConfig | None = None) -> LoadedModels:
    """Build the models a checkpoint describes and load their weights.

    Args:
        path: a sonotype checkpoint or a published WavTokenizer `.ckpt` (path or URL).
        config: for a published `.ckpt`, its YAML (path) or a `ModelConfig`; a sonotype
            checkpoint describes itself, and a config given with it must be the same.

    Raises:
        CheckpointMismatchError: unknown format, weights that do not fit, or a config that
            contradicts a sonotype checkpoint.
        ConfigError: a published checkpoint without a usable YAML.
    """
    source = str(path)
    payload = read_checkpoint_file(path)
    if is_lightning_checkpoint(payload):
        if config is None:
            raise ConfigError(
                f"{source} is a published WavTokenizer checkpoint: give its YAML as config="
            )
        generator, discriminators, used = load_published(
            payload["state_dict"], resolve_model_config(config), source
        )
        loaded = LoadedModels(used, generator, discriminators)
    else:
        checkpoint = parse_tokenizer_checkpoint(payload, source)
        if config is not None and resolve_model_config(config) != checkpoint.config:
            raise CheckpointMismatchError(
                f"{source}: the config given differs from the one stored in the checkpoint; "
                "sonotype checkpoints describe themselves, leave config out"
            )
        generator = build_generator(checkpoint.config)
        load_state_checked(generator, checkpoint.generator, source, "generator")
        discriminators = None
        if checkpoint.discriminators is not None:
            discriminators = build_discriminators(checkpoint.config)
            load_state_checked(discriminators, checkpoint.discriminators, source, "discriminator")
        loaded = LoadedModels(checkpoint.config, generator, discriminators, checkpoint.extra)
    if not loaded.generator.quantizer.is_initialized:
        logger.warning("%s: the codebook was never initialized; every frame maps to code 0", source)
    return loaded


def resolve_model_config(config: str | Path | ModelConfig) -> ModelConfig:
    """A `ModelConfig`, or a YAML path holding a published WavTokenizer config or a sonotype one.

    Raises:
        ConfigError: unreadable or invalid YAML.
    """
    if isinstance(config, ModelConfig):
        return config
    data = read_yaml(config)
    if is_published_config(data):
        return config_from_published(data, str(config))
    return load_config(ModelConfig, config)

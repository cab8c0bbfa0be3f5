"""The models a run starts from: fresh weights, or a checkpoint's for fine-tuning (`--init-from`).

A fine-tuning run keeps the architecture of its config (`TrainConfig.model`) and
refuses a checkpoint whose architecture differs, naming every differing field: adopting
the checkpoint's silently would make the run's config lie about the model it trains.
Settings that only steer training (the codebook's EMA decay, smoothing, dead-code
threshold and k-means iterations, and the prenet dropout) may differ; the run's own
values apply. The generator's weights, codebook included, are loaded; so are the
discriminators' when the checkpoint has them (a published training checkpoint or a
sonotype one), otherwise they start fresh. Optimizers always start fresh.
"""

import logging
from pathlib import Path
from typing import Any

from sonotype.config.model import ModelConfig
from sonotype.errors import CheckpointMismatchError
from training.checkpoint import load_state_checked
from training.load import load_models
from training.model import Discriminators, Generator, build_discriminators, build_generator

logger = logging.getLogger(__name__)

TRAINING_ONLY_FIELDS = frozenset(
    {
        "quantizer.decay",
        "quantizer.eps",
        "quantizer.threshold_ema_dead_code",
        "quantizer.kmeans_iters",
        "backbone.dropout",
    }
)
"""Model settings that do not change the weights' meaning (may differ when fine-tuning)."""


def build_models(
    config: ModelConfig,
    init_from: str | Path | None = None,
    init_config: str | Path | None = None,
) -> tuple[Generator, Discriminators]:
    """The generator and discriminators of `config`, fresh or loaded from a checkpoint.

    Args:
        config: the run's architecture.
        init_from: a sonotype checkpoint (tokenizer, export or training) or a published
            WavTokenizer `.ckpt`; None for fresh weights (from torch's current seed).
        init_config: the YAML of a published `.ckpt` (its Lightning config or a sonotype
            model config); sonotype checkpoints describe themselves.

    Returns:
        (generator, discriminators), on the CPU, in training mode.

    Raises:
        CheckpointMismatchError: the checkpoint's architecture differs from `config`
            (every differing field is listed), or its weights do not fit.
        ConfigError: a published checkpoint without a usable YAML.
    """
    generator = build_generator(config)
    discriminators = build_discriminators(config)
    if init_from is None:
        return generator, discriminators
    loaded = load_models(init_from, init_config)
    differences = architecture_differences(
        loaded.config, config, with_discriminators=loaded.discriminators is not None
    )
    if differences:
        raise CheckpointMismatchError(
            f"{init_from}: its architecture differs from the run's model config in "
            f"{len(differences)} field(s): " + "; ".join(differences) + ". Set the run's "
            "`model` to the checkpoint's architecture (e.g. model: wavtokenizer-40)"
        )
    source = str(init_from)
    load_state_checked(generator, loaded.generator.state_dict(), source, "generator")
    if loaded.discriminators is not None:
        load_state_checked(
            discriminators, loaded.discriminators.state_dict(), source, "discriminator"
        )
    logger.info(
        "fine-tuning from %s: generator%s loaded; optimizers start fresh",
        source,
        " and discriminators" if loaded.discriminators is not None else " (discriminators fresh)",
    )
    return generator, discriminators


def architecture_differences(
    found: ModelConfig, expected: ModelConfig, with_discriminators: bool = True
) -> list[str]:
    """`field: checkpoint X, config Y` for every architecture field that differs.

    Args:
        found: the checkpoint's model config.
        expected: the run's.
        with_discriminators: compare the discriminators too (when the checkpoint has them).
    """
    theirs = _flatten(found.model_dump(mode="json"))
    ours = _flatten(expected.model_dump(mode="json"))
    return [
        f"{key}: checkpoint {theirs.get(key)!r}, config {ours.get(key)!r}"
        for key in sorted(set(theirs) | set(ours))
        if key not in TRAINING_ONLY_FIELDS
        and (with_discriminators or not key.startswith("discriminators."))
        and theirs.get(key) != ours.get(key)
    ]


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat

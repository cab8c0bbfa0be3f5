"""Published WavTokenizer checkpoints: their YAML → `ModelConfig`, their keys ↔ ours, both ways.

A published checkpoint is a PyTorch Lightning `.ckpt` whose `state_dict` holds every
module of the reference training module, next to a YAML giving the architecture under
`model.init_args.{feature_extractor,backbone,head}` (the layout of
`jishengpeng/WavTokenizer: configs/*.yaml`; the `from_hparams` layout without the
`model.init_args` level is read too).

Key translation, applied to each of our state-dict keys (the inverse is built from the
model at hand, so loading and exporting always agree):

- weight norm: our `parametrizations.weight.original0/1` are the reference's old-style
  `weight_g`/`weight_v` (the same tensors: g has the weight's rank with size 1 in every
  dimension but the first, in both);
- `encoder.*` → `feature_extractor.encodec.encoder.model.<i>.*`, with the SEANet
  `nn.Sequential` positions (conv 0; per stage i: residual 1+3i, strided conv 3+3i; LSTM;
  last conv), residual convs at `block.1`/`block.3`, each conv under `conv.conv`;
- `quantizer.*` → `feature_extractor.encodec.quantizer.vq.layers.0._codebook.*`;
- backbone/head/discriminator renames listed in `_RENAMES`;
- `dac.*` → `dacdiscriminator.discriminator.*`, and each conv + LeakyReLU pair is an
  `nn.Sequential` there (`.0` added).

Ignored when loading: the unused EnCodec decoder (`feature_extractor.encodec.decoder.*`)
and the mel loss' buffers (`melspec_loss.*`). The reference holds the DAC discriminator
twice, as `dac.*` and, inside its loss module, as `dacdiscriminator.discriminator.*`:
one module under two names (`DACGANLoss(self.dac)`), so the tensors are the same. We
load the loss' copy, the one the reference's training step runs, check that `dac.*`
agrees, and write both when exporting. In the first release of the reference training
code (`decoder/experiment.py`) `configure_optimizers` hands only MPD and MRD to the
discriminator optimizer, so a checkpoint trained with it holds the DAC discriminator's
initial weights (later versions of the repository add it); a fine-tuning run should not
expect a trained DAC discriminator from a published file.
"""

import logging
import re
from pathlib import Path
from typing import Any

import torch

from sonotype.config.load import read_yaml, validate_config
from sonotype.config.model import ModelConfig
from sonotype.errors import CheckpointMismatchError, ConfigError
from training.checkpoint import load_state_checked
from training.model import Discriminators, Generator, build_discriminators, build_generator

logger = logging.getLogger(__name__)

IGNORED_PREFIXES = ("feature_extractor.encodec.decoder.", "melspec_loss.")
"""Published keys that are not part of the model (the unused EnCodec decoder, loss buffers)."""

DAC_DUPLICATE_PREFIX = "dac."
"""The second name of the DAC discriminator in published checkpoints."""

_ENCODER = "feature_extractor.encodec.encoder.model."
_CODEBOOK = "feature_extractor.encodec.quantizer.vq.layers.0._codebook."
_DAC = "dacdiscriminator.discriminator."

_RENAMES: list[tuple[str, str]] = [
    # (regex over our key, replacement), applied in order after the prefix is mapped.
    (r"\.parametrizations\.weight\.original0$", ".weight_g"),
    (r"\.parametrizations\.weight\.original1$", ".weight_v"),
    (r"^backbone\.input_conv\.", "backbone.embed."),
    (r"^backbone\.input_norm\.", "backbone.norm."),
    (r"^backbone\.output_norm\.", "backbone.final_layer_norm."),
    (r"^backbone\.prenet\.", "backbone.pos_net."),
    (r"^(backbone\.pos_net\.\d+)\.query\.", r"\1.q."),
    (r"^(backbone\.pos_net\.\d+)\.key\.", r"\1.k."),
    (r"^(backbone\.pos_net\.\d+)\.value\.", r"\1.v."),
    (r"^(backbone\.pos_net\.\d+)\.output\.", r"\1.proj_out."),
    (r"^backbone\.blocks\.(\d+)\.layer_scale$", r"backbone.convnext.\1.gamma"),
    (r"^backbone\.blocks\.", "backbone.convnext."),
    (r"^(backbone\.convnext\.\d+)\.depthwise\.", r"\1.dwconv."),
    (r"^(backbone\.convnext\.\d+)\.pointwise1\.", r"\1.pwconv1."),
    (r"^(backbone\.convnext\.\d+)\.pointwise2\.", r"\1.pwconv2."),
    (r"^head\.linear\.", "head.out."),
    (r"^mpd\.", "multiperioddisc."),
    (r"^mrd\.", "multiresddisc."),
    (r"^dac\.(discriminators\.\d+\.convs\.\d+)\.", _DAC + r"\1.0."),
    (r"^dac\.(discriminators\.\d+\.band_convs\.\d+\.\d+)\.", _DAC + r"\1.0."),
    (r"^dac\.", _DAC),
    (r"\.output_conv\.", ".conv_post."),
    (r"\.embedding\.", ".emb."),
]


def published_key_map(
    generator: Generator, discriminators: Discriminators | None = None
) -> dict[str, str]:
    """Our state-dict key → the published key, for every tensor of the given modules.

    Discriminator keys are prefixed by their name in `Discriminators` (`mpd.`, `mrd.`,
    `dac.`), as in `Discriminators.state_dict()`.
    """
    n_stages = len(generator.encoder.stages)
    has_lstm = generator.encoder.lstm is not None
    keys = list(generator.state_dict())
    if discriminators is not None:
        keys += list(discriminators.state_dict())
    return {key: _published_name(key, n_stages, has_lstm) for key in keys}


def _published_name(key: str, n_stages: int, has_lstm: bool) -> str:
    if key.startswith("encoder."):
        key = _ENCODER + _encoder_position(key.removeprefix("encoder."), n_stages, has_lstm)
    elif key.startswith("quantizer."):
        key = _CODEBOOK + key.removeprefix("quantizer.")
    for pattern, replacement in _RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


_STAGE_PARTS = {
    # our part of a stage → (offset in the Sequential, path below that position)
    "residual.conv1": (1, "block.1"),
    "residual.conv2": (1, "block.3"),
    "residual.shortcut": (1, "shortcut"),
    "downsample": (3, ""),
}


def _encoder_position(key: str, n_stages: int, has_lstm: bool) -> str:
    """Our encoder key → its place in EnCodec's `SEANetEncoder.model` Sequential.

    The Sequential holds: conv 0; per stage i a residual block (1 + 3i), an ELU and the
    strided conv (3 + 3i); the LSTM if any; an ELU; the last conv. Each conv sits under
    `conv.conv` (EnCodec's SConv1d → NormConv1d → Conv1d).
    """
    stage = re.match(r"^stages\.(\d+)\.(.+?)\.conv\.(.+)$", key)
    if stage:
        offset, path = _STAGE_PARTS[stage[2]]
        position = f"{offset + 3 * int(stage[1])}" + (f".{path}" if path else "")
        return f"{position}.conv.conv.{stage[3]}"
    if key.startswith("input_conv.conv."):
        return "0.conv.conv." + key.removeprefix("input_conv.conv.")
    if key.startswith("lstm."):
        return f"{3 * n_stages + 1}." + key
    if key.startswith("output_conv.conv."):
        last = 3 * n_stages + 2 + int(has_lstm)
        return f"{last}.conv.conv." + key.removeprefix("output_conv.conv.")
    raise ValueError(f"encoder key {key!r} has no place in the published layout")


def published_state_dict(
    generator: Generator, discriminators: Discriminators | None = None
) -> dict[str, torch.Tensor]:
    """Our modules' tensors under the published keys (the DAC discriminator under both names).

    The EnCodec decoder and mel-loss buffers are not part of our model and are not written.
    """
    ours = dict(generator.state_dict())
    if discriminators is not None:
        ours.update(discriminators.state_dict())
    state = {}
    for key, published in published_key_map(generator, discriminators).items():
        tensor = ours[key].detach().cpu()
        state[published] = tensor
        if published.startswith(_DAC):
            state[DAC_DUPLICATE_PREFIX + published.removeprefix(_DAC)] = tensor
    return state


def config_from_published(data: dict[str, Any], source: str) -> ModelConfig:
    """Convert a published WavTokenizer YAML (already read) into a `ModelConfig`.

    Args:
        data: the YAML's mapping, either Lightning's (`model.init_args.*`) or the
            `from_hparams` layout (`feature_extractor`, `backbone`, `head` at the top).
        source: the file, for messages.

    Raises:
        ConfigError: a part is missing, of a class sonotype does not implement, or has
            settings this architecture does not support.
    """
    model = data
    if isinstance(data.get("model"), dict) and isinstance(data["model"].get("init_args"), dict):
        model = data["model"]["init_args"]
    parts = {}
    for part, expected in (
        ("feature_extractor", "EncodecFeatures"),
        ("backbone", "VocosBackbone"),
        ("head", "ISTFTHead"),
    ):
        section = model.get(part)
        if not isinstance(section, dict):
            raise ConfigError(f"{source}: no {part} section (expected model.init_args.{part})")
        class_name = str(section.get("class_path", "")).rsplit(".", 1)[-1]
        if class_name != expected:
            raise ConfigError(
                f"{source}: {part}.class_path is {section.get('class_path')!r}; sonotype "
                f"implements {expected} only"
            )
        parts[part] = section.get("init_args") or {}
    features, backbone, head = parts["feature_extractor"], parts["backbone"], parts["head"]
    if features.get("num_quantizers", 1) != 1:
        raise ConfigError(
            f"{source}: feature_extractor.num_quantizers is {features['num_quantizers']}; "
            "sonotype implements the single-codebook model (1)"
        )
    if features.get("encodec_model", "encodec_24khz") != "encodec_24khz":
        raise ConfigError(f"{source}: feature_extractor.encodec_model must be encodec_24khz")
    # EncodecFeatures hard-codes the SEANet sizes (32 filters, 512-d, 2 LSTM layers) and
    # lists `dowmsamples` decoder-first; the encoder applies them reversed.
    strides = list(reversed(features.get("dowmsamples", [6, 5, 5, 4])))
    settings = {
        "sample_rate": model.get("sample_rate", 24000),
        "encoder": {"strides": strides},
        "quantizer": {
            "codebook_size": features.get("vq_bins", 16384),
            "kmeans_iters": features.get("vq_kmeans", 800),
        },
        "backbone": {
            "dim": backbone.get("dim"),
            "intermediate_dim": backbone.get("intermediate_dim"),
            "n_layers": backbone.get("num_layers"),
            "n_conditions": backbone.get("adanorm_num_embeddings"),
            "layer_scale_init": backbone.get("layer_scale_init_value"),
        },
        "head": {
            "n_fft": head.get("n_fft"),
            "hop_length": head.get("hop_length"),
            "padding": head.get("padding", "same"),
        },
    }
    if backbone.get("input_channels", 512) != 512:
        raise ConfigError(
            f"{source}: backbone.input_channels is {backbone['input_channels']}; the published "
            "encoder's latent size is 512"
        )
    return validate_config(ModelConfig, settings, source)


def read_published_config(path: str | Path) -> ModelConfig:
    """Read a published WavTokenizer YAML file into a `ModelConfig`.

    Raises:
        ConfigError: unreadable, or not a supported WavTokenizer configuration.
    """
    return config_from_published(read_yaml(path), str(path))


def is_published_config(data: dict[str, Any]) -> bool:
    """Whether a YAML mapping looks like a published WavTokenizer config."""
    model = data.get("model")
    if isinstance(model, dict) and isinstance(model.get("init_args"), dict):
        return "feature_extractor" in model["init_args"]
    return "feature_extractor" in data and "backbone" in data


def load_published(
    state: dict[str, torch.Tensor], config: ModelConfig, source: str
) -> tuple[Generator, Discriminators | None, ModelConfig]:
    """Build our modules for a published checkpoint's `state_dict` and load its tensors.

    Discriminators are built and loaded when the checkpoint has any of their keys (a
    training checkpoint); their conditional embeddings, if present, set `n_embeddings`.

    Args:
        state: the Lightning `state_dict`.
        config: the architecture from the checkpoint's YAML.
        source: the file, for messages.

    Returns:
        (generator, discriminators or None, the config actually used).

    Raises:
        CheckpointMismatchError: a key is missing (named as in the file), unexpected,
            or has the wrong shape.
    """
    state = _one_dac_copy(dict(state), source)
    has_discriminators = any(
        key.startswith(("multiperioddisc.", "multiresddisc.", _DAC)) for key in state
    )
    config = _with_discriminator_embeddings(config, state)
    generator = build_generator(config)
    discriminators = build_discriminators(config) if has_discriminators else None
    key_map = published_key_map(generator, discriminators)
    ours_of = {published: ours for ours, published in key_map.items()}

    unexpected = [k for k in state if k not in ours_of and not k.startswith(IGNORED_PREFIXES)]
    missing = [published for published in ours_of if published not in state]
    problems = [
        f"{len(keys)} {label}: {_listing(keys)}"
        for label, keys in (("missing", missing), ("not in this architecture", unexpected))
        if keys
    ]
    if problems:
        raise CheckpointMismatchError(
            f"{source}: the checkpoint does not fit the WavTokenizer its YAML describes: "
            + "; ".join(problems)
        )
    generator_keys = set(generator.state_dict())
    ours = {ours_of[key]: tensor for key, tensor in state.items() if key in ours_of}
    load_state_checked(
        generator, {k: v for k, v in ours.items() if k in generator_keys}, source, "generator"
    )
    if discriminators is not None:
        load_state_checked(
            discriminators,
            {k: v for k, v in ours.items() if k not in generator_keys},
            source,
            "discriminator",
        )
    logger.info(
        "loaded published checkpoint %s (%s discriminators)",
        source,
        "with" if discriminators is not None else "without",
    )
    return generator, discriminators, config


def _listing(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _one_dac_copy(state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Keep one copy of the DAC discriminator: the loss module's, else `dac.*` renamed."""
    duplicates = {k: state.pop(k) for k in list(state) if k.startswith(DAC_DUPLICATE_PREFIX)}
    if not any(key.startswith(_DAC) for key in state):
        state.update(
            {_DAC + k.removeprefix(DAC_DUPLICATE_PREFIX): v for k, v in duplicates.items()}
        )
        return state
    differing = [
        key
        for key, tensor in duplicates.items()
        if not torch.equal(state.get(_DAC + key.removeprefix(DAC_DUPLICATE_PREFIX), tensor), tensor)
    ]
    if differing:
        logger.warning(
            "%s: %d dac.* tensors differ from dacdiscriminator.discriminator.* (first: %s); "
            "loading the latter, the copy the reference's loss runs",
            source,
            len(differing),
            differing[0],
        )
    return state


def _with_discriminator_embeddings(
    config: ModelConfig, state: dict[str, torch.Tensor]
) -> ModelConfig:
    """Set MPD/MRD `n_embeddings` from conditional embedding tables found in the checkpoint."""
    updates = {}
    for name, prefix in (("mpd", "multiperioddisc."), ("mrd", "multiresddisc.")):
        table = state.get(f"{prefix}discriminators.0.emb.weight")
        section = getattr(config.discriminators, name)
        if table is not None and section is not None:
            updates[name] = section.model_copy(update={"n_embeddings": int(table.shape[0])})
    if not updates:
        return config
    discriminators = config.discriminators.model_copy(update=updates)
    return config.model_copy(update={"discriminators": discriminators})

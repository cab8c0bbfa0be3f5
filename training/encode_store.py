"""The feature store an encode writes to: which model made it, and refusing to mix models.

A store holds the features of one model, encoded one way. `checkpoint_sha256` names the
model: the SHA-256 of the checkpoint file's bytes (streamed, so any size and any fsspec
URL), which `sha256sum tokenizer.pt` reproduces for a sonotype checkpoint. A published
WavTokenizer `.ckpt` does not describe its own architecture, so its YAML decides how the
weights are read; for it the digest goes on over the canonical JSON of the resolved
`ModelConfig` (keys sorted), and the same weights read with another YAML make another
store. The encode settings that shape the features (`EncodeConfig.output_shaping`) are
saved beside the store (`contracts.features_config_path`).
"""

import hashlib
import json
import logging

from analysis.store import FeatureStore, StoreIdentity, create_store, is_unfinished, open_store
from sonotype.config.encode import EncodeConfig
from sonotype.config.load import read_yaml, save_config, validate_config
from sonotype.config.model import ModelConfig
from sonotype.contracts import features_config_path
from sonotype.errors import CheckpointMismatchError, ConfigError, OutputConflictError
from sonotype.fsio import exists, join, url_to_fs
from training.checkpoint import is_lightning_checkpoint, read_checkpoint_file

logger = logging.getLogger(__name__)

_READ_BYTES = 1 << 22


def checkpoint_sha256(path: str, model_config: ModelConfig | None = None) -> str:
    """The digest that names the model in a feature store (see the module docstring).

    Args:
        path: the checkpoint (local path or fsspec URL).
        model_config: the config given for it; counted only for a published `.ckpt`.

    Returns:
        64 hexadecimal digits.

    Raises:
        CheckpointMismatchError: the file is missing or unreadable.
    """
    digest = hashlib.sha256()
    fs, fs_path = url_to_fs(path)
    try:
        with fs.open(fs_path, "rb") as handle:
            while block := handle.read(_READ_BYTES):
                digest.update(block)
    except (FileNotFoundError, IsADirectoryError) as error:
        raise CheckpointMismatchError(f"{path}: checkpoint file not found") from error
    # A sonotype checkpoint holds its config: one given with it must equal it (load_models
    # checks), so it adds nothing and must not change the name of the model.
    if model_config is not None and is_lightning_checkpoint(read_checkpoint_file(path)):
        text = json.dumps(model_config.model_dump(mode="json"), sort_keys=True)
        digest.update(b"\0model_config\0" + text.encode("utf-8"))
    return digest.hexdigest()


def prepare_store(
    url: str, identity: StoreIdentity, config: EncodeConfig, force: bool
) -> FeatureStore:
    """Open the store to append to (created if absent) and save the settings beside it.

    Args:
        url: the store (`OUT/features.zarr`).
        identity: the model and rates of this run.
        config: this run's settings.
        force: replace a store made with another checkpoint or other output-shaping settings
            (its features and segment table are deleted) instead of refusing.

    Returns:
        The store, as committed so far.

    Raises:
        CheckpointMismatchError: the store holds features of another checkpoint.
        OutputConflictError: the store was encoded with other output-shaping settings, or
            its model differs in rate, codebook or dimension.
    """
    replace = False
    if exists(join(url, "zarr.json")) and not is_unfinished(url):
        existing = open_store(url)
        if existing.checkpoint_sha256 != identity.checkpoint_sha256:
            if not force:
                raise CheckpointMismatchError(
                    f"{url}: holds features of checkpoint sha256 {existing.checkpoint_sha256}, "
                    f"and this checkpoint is {identity.checkpoint_sha256}; the features of two "
                    "models cannot share a store: encode into another --out, or --force to "
                    "replace this store"
                )
            replace = True
        if not existing.has_loudness:
            if not force:
                raise OutputConflictError(
                    f"{url}: was written by an earlier sonotype, without each frame's "
                    "recorded loudness that window-level sonotypes use; encode it again with "
                    "--force (or into another --out)"
                )
            replace = True
        differing = _differing_settings(url, config)
        if differing and not force:
            raise OutputConflictError(
                f"{url}: was encoded with other settings ({', '.join(differing)} differ, "
                f"see {features_config_path(url)}); use the same settings, another --out, or "
                "--force to replace this store"
            )
        replace = replace or bool(differing)
        if replace:
            logger.warning("--force: replacing %s (%d frames)", url, existing.n_frames)
    store = create_store(url, identity, overwrite=replace)
    save_config(config, features_config_path(url), "sonotype encode")
    return store


def complete_shards(url: str, digest: str, config: EncodeConfig) -> set[str] | None:
    """The shards already in the store, if a run with this model and settings can append.

    Lets a re-run with nothing new stop before loading the model; conflicts are left to
    `prepare_store` to report.

    Returns:
        The store's `shards`, or None when there is no store, or it was made with another
        checkpoint or other output-shaping settings.
    """
    if not exists(join(url, "zarr.json")) or is_unfinished(url):
        return None  # prepare_store creates it (again, after a creation that was killed)
    store = open_store(url)
    if (
        store.checkpoint_sha256 != digest
        or not store.has_loudness
        or _differing_settings(url, config)
    ):
        return None
    return set(store.shards)


def _differing_settings(url: str, config: EncodeConfig) -> list[str]:
    """Dotted names of output-shaping settings that differ from those saved with the store."""
    saved_url = features_config_path(url)
    if not exists(saved_url):
        return []
    try:
        saved = validate_config(EncodeConfig, read_yaml(saved_url), saved_url)
    except ConfigError as error:
        raise OutputConflictError(
            f"{saved_url}: the saved encode settings are not valid for this version ({error}); "
            "use another --out or --force"
        ) from error
    old, new = saved.output_shaping(), config.output_shaping()
    return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))

"""`--init-from`: fine-tuning starts from a published-layout checkpoint's weights."""

import logging

import pytest
import torch

import training
from sonotype.config.load import CONFIGS_DIR
from sonotype.errors import CheckpointMismatchError
from tests.training.conftest import seed_codebook
from tests.training.published_layout import lightning_checkpoint
from tests.training.trainer_config import tiny_train_config
from training.model import build_discriminators, build_generator
from training.published import published_state_dict

TINY_YAML = CONFIGS_DIR / "model" / "tiny.yaml"


def _fine_tune(config, checkpoint, out: str, run_dir) -> training.TrainResult:
    return training.train(
        config, shards=out, run_dir=str(run_dir), init_from=checkpoint, init_config=TINY_YAML
    )


@pytest.fixture
def published_tiny(tmp_path, tiny_config):
    """A Lightning `.ckpt` in the published key layout holding a tiny model (seeded)."""
    torch.manual_seed(11)
    generator, discriminators = build_generator(tiny_config), build_discriminators(tiny_config)
    seed_codebook(generator)
    path = tmp_path / "published-tiny.ckpt"
    torch.save(lightning_checkpoint(published_state_dict(generator, discriminators)), path)
    return path, generator, discriminators


def test_fine_tuning_starts_from_the_published_weights(
    published_tiny, soundscape_out, tmp_path, caplog
):
    path, generator, discriminators = published_tiny
    # A learning rate so small that no weight moves: the run ends with what it loaded.
    config = tiny_train_config(
        "optim.lr=1e-30",
        "optim.max_steps=1",
        "optim.warmup_steps=0",
        "losses.mel_only_warmup_steps=0",
    )
    with caplog.at_level(logging.INFO, logger="training"):
        result = _fine_tune(config, path, soundscape_out, tmp_path / "run")
    assert "fine-tuning from" in caplog.text
    assert "k-means" not in caplog.text  # the checkpoint's codebook is kept
    trained = training.load_models(result.checkpoint)
    pairs = ((generator, trained.generator), (discriminators, trained.discriminators))
    for source, loaded in pairs:
        for (name, expected), (_, found) in zip(
            source.named_parameters(), loaded.named_parameters(), strict=True
        ):
            assert torch.allclose(found, expected, rtol=0, atol=1e-20), name
    # The codebook is the file's, moved by one EMA step only.
    moved = trained.generator.quantizer.embed - generator.quantizer.embed
    assert moved.norm() < 0.2 * generator.quantizer.embed.norm()


def test_a_checkpoint_of_another_architecture_is_refused_with_the_fields(
    published_tiny, soundscape_out, tmp_path
):
    path, _, _ = published_tiny
    config = tiny_train_config("model.backbone.dim=32", "model.backbone.intermediate_dim=96")
    with pytest.raises(CheckpointMismatchError) as error:
        _fine_tune(config, path, soundscape_out, tmp_path / "run")
    message = str(error.value)
    assert "2 field(s)" in message
    assert "backbone.dim: checkpoint 64, config 32" in message
    assert "backbone.intermediate_dim: checkpoint 192, config 96" in message


def test_training_only_settings_may_differ(published_tiny, soundscape_out, tmp_path):
    path, _, _ = published_tiny
    config = tiny_train_config(
        "model.backbone.dropout=0.0",
        "model.quantizer.decay=0.5",
        "optim.max_steps=1",
        "validation.every_steps=0",
    )
    assert _fine_tune(config, path, soundscape_out, tmp_path / "run").step == 1

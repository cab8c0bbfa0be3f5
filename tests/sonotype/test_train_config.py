"""TrainConfig: model presets (with overrides reaching into them), defaults, cross-field rules."""

from pathlib import Path

import pytest

from sonotype.config import config_model
from sonotype.config.load import CONFIGS_DIR, load_config
from sonotype.config.model import ModelConfig
from sonotype.config.train import TrainConfig, ValidationConfig
from sonotype.errors import ConfigError

TRAIN_PRESETS = sorted((CONFIGS_DIR / "train").glob("*.yaml"))


def test_train_kind_is_registered():
    assert config_model("train") is TrainConfig


def test_the_defaults_are_the_reference_recipe():
    config = TrainConfig()
    assert config.model == ModelConfig()  # the published 40 tokens/s architecture
    assert (config.optim.lr, config.optim.betas) == (2e-4, (0.9, 0.999))
    assert (config.losses.mel, config.losses.commit) == (45.0, 1000.0)
    assert config.data.crop_s == 3.0


def test_a_model_preset_name_is_resolved_and_overrides_reach_into_it(tmp_path: Path):
    path = tmp_path / "train.yaml"
    path.write_text("model: tiny\ndata:\n  crop_s: 1.0\n")
    config = load_config(TrainConfig, path, ["model.backbone.n_layers=3"])
    tiny = load_config(ModelConfig, CONFIGS_DIR / "model" / "tiny.yaml")
    assert config.model == tiny.model_copy(
        update={"backbone": tiny.backbone.model_copy(update={"n_layers": 3})}
    )


def test_an_unknown_model_preset_is_named(tmp_path: Path):
    path = tmp_path / "train.yaml"
    path.write_text("model: huge\n")
    with pytest.raises(ConfigError, match="model preset 'huge' not found"):
        load_config(TrainConfig, path)


def test_a_crop_that_is_not_a_whole_number_of_hops_is_refused():
    with pytest.raises(ConfigError, match=r"data: crop of 1000 samples is not a multiple of"):
        load_config(TrainConfig, overrides=["model=tiny", "data.crop_samples=1000"])


def test_a_reader_rate_other_than_the_model_rate_is_refused():
    with pytest.raises(ConfigError, match=r"data\.sample_rate"):
        load_config(TrainConfig, overrides=["data.sample_rate=16000"])


@pytest.mark.parametrize("path", TRAIN_PRESETS, ids=lambda p: p.stem)
def test_train_presets_name_their_command_and_validate(path: Path):
    assert path.read_text().startswith("# ")
    assert "sonotype train" in path.read_text().split("\n\n")[0]
    config = load_config(TrainConfig, path)
    assert config.data.crop_length(config.model.sample_rate, config.model.hop_length) > 0


def test_the_presets_shipped():
    assert {p.stem for p in TRAIN_PRESETS} >= {"tiny", "wavtokenizer-40", "finetune-40", "gpu-8gb"}


def test_codebook_collapse_names_each_figure_below_its_threshold():
    validation = ValidationConfig(min_codebook_usage=0.1, min_codebook_perplexity=16)
    assert validation.codebook_collapse(0.5, 100.0) is None
    usage_only = validation.codebook_collapse(0.027, 40.0)
    assert usage_only is not None
    assert "2.7% of codes used (threshold 10%)" in usage_only
    assert "perplexity" not in usage_only
    both = validation.codebook_collapse(0.027, 6.2)
    assert both is not None
    assert "perplexity 6.2 (threshold 16)" in both

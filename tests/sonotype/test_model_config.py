"""ModelConfig: presets, the one-hop rule and the constraints of the ISTFT head."""

import pytest

from sonotype.config import config_model
from sonotype.config.load import CONFIGS_DIR, load_config
from sonotype.config.model import ModelConfig
from sonotype.errors import ConfigError


def preset(name: str) -> ModelConfig:
    return load_config(ModelConfig, CONFIGS_DIR / "model" / f"{name}.yaml")


def test_model_kind_is_registered():
    assert config_model("model") is ModelConfig


@pytest.mark.parametrize(
    ("name", "strides", "hop", "frame_rate"),
    [
        # Published facts: 40 tokens/s with strides 4·5·5·6, 75 tokens/s with 2·4·5·8.
        ("wavtokenizer-40", [4, 5, 5, 6], 600, 40.0),
        ("wavtokenizer-75", [2, 4, 5, 8], 320, 75.0),
        ("tiny", [4, 5, 5, 6], 600, 40.0),
    ],
)
def test_presets_have_the_published_hops(name, strides, hop, frame_rate):
    config = preset(name)
    assert config.sample_rate == 24000
    assert config.encoder.strides == strides
    assert config.hop_length == hop == config.head.hop_length
    assert config.frame_rate == frame_rate


def test_the_schema_defaults_are_the_published_40_model():
    assert preset("wavtokenizer-40") == ModelConfig()


def test_tiny_crops_and_segments_are_whole_frames():
    hop = preset("tiny").hop_length
    assert (3 * 24000) % hop == 0
    assert (10 * 24000) % hop == 0


def test_head_hop_must_equal_the_product_of_strides():
    with pytest.raises(ConfigError) as error:
        load_config(ModelConfig, None, ["head.hop_length=320"])
    message = str(error.value)
    assert "head.hop_length (320)" in message
    assert "[4, 5, 5, 6] (600)" in message


def test_changing_strides_alone_is_refused():
    with pytest.raises(ConfigError, match="one token"):
        load_config(ModelConfig, None, ["encoder.strides=[2, 4, 5, 8]"])
    config = load_config(
        ModelConfig,
        None,
        ["encoder.strides=[2, 4, 5, 8]", "head.hop_length=320", "head.n_fft=1280"],
    )
    assert config.frame_rate == 75.0


@pytest.mark.parametrize("n_fft", [600, 900, 1201])
def test_head_n_fft_must_leave_an_even_overlap_of_at_least_one_hop(n_fft):
    with pytest.raises(ConfigError) as error:
        load_config(ModelConfig, None, [f"head.n_fft={n_fft}"])
    assert f"expected n_fft ({n_fft}) at least 2 × hop_length (600)" in str(error.value)


def test_backbone_width_must_split_into_groups():
    with pytest.raises(ConfigError, match="divisible by n_groups"):
        load_config(ModelConfig, None, ["backbone.dim=100"])


def test_discriminators_can_be_switched_off():
    config = load_config(ModelConfig, None, ["discriminators.dac=null"])
    assert config.discriminators.dac is None
    assert config.discriminators.mpd is not None


def test_bad_bands_are_refused():
    with pytest.raises(ConfigError, match="low < high"):
        load_config(ModelConfig, None, ["discriminators.dac.bands=[[0.5, 0.2]]"])

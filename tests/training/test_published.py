"""Published Lightning checkpoints: loading, tensors in the right places, export back, errors.

The checkpoints here are written by the tests in the published layout (every key and
shape of `reference/*.tsv`, random values), since the real ones cannot be downloaded.
"""

import logging
from pathlib import Path

import pytest
import torch

from sonotype.config.load import read_yaml
from sonotype.errors import CheckpointMismatchError, ConfigError
from tests.training.conftest import preset
from tests.training.published_layout import (
    lightning_checkpoint,
    published_yaml,
    random_published_state,
)
from training import load_models, load_tokenizer
from training.checkpoint import read_checkpoint_file
from training.model import build_discriminators, build_generator
from training.published import (
    IGNORED_PREFIXES,
    config_from_published,
    load_published,
    published_key_map,
    published_state_dict,
    read_published_config,
)


def _write(directory: Path, variant: str, with_discriminators: bool) -> tuple[Path, Path]:
    checkpoint = directory / f"wavtokenizer-{variant}.ckpt"
    torch.save(
        lightning_checkpoint(random_published_state(variant, 7, with_discriminators)), checkpoint
    )
    config = directory / f"wavtokenizer-{variant}.yaml"
    config.write_text(published_yaml(variant))
    return checkpoint, config


@pytest.fixture(scope="module")
def published_40(tmp_path_factory) -> tuple[Path, Path]:
    """The 40 tokens/s layout with discriminators (a training checkpoint)."""
    return _write(tmp_path_factory.mktemp("published-40"), "40", with_discriminators=True)


@pytest.fixture(scope="module")
def published_75(tmp_path_factory) -> tuple[Path, Path]:
    """The 75 tokens/s layout without discriminators."""
    return _write(tmp_path_factory.mktemp("published-75"), "75", with_discriminators=False)


@pytest.fixture(scope="module")
def loaded_40(published_40):
    checkpoint, config = published_40
    state = read_checkpoint_file(checkpoint)["state_dict"]
    generator, discriminators, _ = load_published(
        state, config_from_published(read_yaml(config), str(config)), str(checkpoint)
    )
    return state, generator, discriminators


@pytest.mark.parametrize("variant", ["40", "75"])
@pytest.mark.parametrize("lightning_layout", [True, False])
def test_published_yaml_converts_to_the_preset(tmp_path, variant, lightning_layout):
    path = tmp_path / "config.yaml"
    path.write_text(published_yaml(variant, lightning_layout))
    assert read_published_config(path) == preset(f"wavtokenizer-{variant}")


def test_generator_tensors_are_the_files_tensors(loaded_40):
    state, generator, discriminators = loaded_40
    key_map = published_key_map(generator, discriminators)
    for ours, tensor in generator.state_dict().items():
        assert torch.equal(tensor, state[key_map[ours]]), ours


def test_discriminators_are_loaded_from_the_loss_copy(loaded_40):
    state, generator, discriminators = loaded_40
    assert discriminators is not None
    key_map = published_key_map(generator, discriminators)
    for ours, tensor in discriminators.state_dict().items():
        assert key_map[ours].startswith(("multiperioddisc.", "multiresddisc.", "dacdiscriminator."))
        assert torch.equal(tensor, state[key_map[ours]]), ours


def test_effective_conv_weights_are_g_times_v_over_norm_v(loaded_40):
    state, generator, _ = loaded_40
    prefix = "feature_extractor.encodec.encoder.model."
    convs = {
        "0": generator.encoder.input_conv,
        "4.block.1": generator.encoder.stages[1].residual.conv1,
        "9": generator.encoder.stages[2].downsample,
        "15": generator.encoder.output_conv,
    }
    for position, conv in convs.items():
        g = state[f"{prefix}{position}.conv.conv.weight_g"]
        v = state[f"{prefix}{position}.conv.conv.weight_v"]
        norm = v.flatten(1).norm(dim=1).view(-1, 1, 1)
        torch.testing.assert_close(conv.conv.weight, g * v / norm, rtol=1e-5, atol=1e-7)


def test_export_reproduces_the_file_bit_for_bit(loaded_40):
    state, generator, discriminators = loaded_40
    exported = published_state_dict(generator, discriminators)
    expected = {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}
    assert sorted(exported) == sorted(expected)
    for key, tensor in expected.items():
        assert torch.equal(exported[key], tensor), key


def test_load_tokenizer_reads_a_published_checkpoint_with_its_yaml(published_40):
    checkpoint, config = published_40
    tokenizer = load_tokenizer(checkpoint, config=config)
    assert tokenizer.config == preset("wavtokenizer-40")
    assert (tokenizer.sample_rate, tokenizer.frame_rate, tokenizer.hop_length) == (24000, 40.0, 600)
    assert tokenizer.embedding_dim == 512
    codes = tokenizer.encode(torch.randn(1, 6000 + 7))
    assert codes.shape == (1, 11)
    assert tokenizer.decode(codes).shape == (1, 11 * 600)


def test_a_checkpoint_without_discriminators_loads_the_generator_only(published_75):
    checkpoint, config = published_75
    state = read_checkpoint_file(checkpoint)["state_dict"]
    generator, discriminators, used = load_published(
        state, config_from_published(read_yaml(config), str(config)), str(checkpoint)
    )
    assert discriminators is None
    assert used.frame_rate == 75.0
    exported = published_state_dict(generator)
    assert all(torch.equal(exported[key], state[key]) for key in exported)
    assert set(exported) == {k for k in state if not k.startswith(IGNORED_PREFIXES)}


def test_load_models_reads_a_published_checkpoint_for_fine_tuning(published_75):
    checkpoint, config = published_75
    models = load_models(checkpoint, config=config)
    assert models.config == preset("wavtokenizer-75")
    assert models.discriminators is None
    assert models.extra == {}


def test_a_published_checkpoint_needs_its_yaml(published_75):
    checkpoint, _ = published_75
    with pytest.raises(ConfigError, match="give its YAML as config="):
        load_tokenizer(checkpoint)


# --- mismatches, on the tiny architecture in the published layout (fast) -------------


@pytest.fixture
def tiny_published(tiny_config) -> dict[str, torch.Tensor]:
    state = published_state_dict(build_generator(tiny_config), build_discriminators(tiny_config))
    state["feature_extractor.encodec.decoder.model.0.conv.conv.bias"] = torch.zeros(3)
    state["melspec_loss.mel_spec.spectrogram.window"] = torch.ones(8)
    return state


def test_ignored_keys_are_ignored_and_the_rest_loads(tiny_published, tiny_config):
    generator, discriminators, _ = load_published(tiny_published, tiny_config, "tiny.ckpt")
    assert discriminators is not None
    assert torch.equal(generator.quantizer.embed, tiny_published[
        "feature_extractor.encodec.quantizer.vq.layers.0._codebook.embed"
    ])  # fmt: skip


def test_a_missing_key_is_named_as_in_the_file(tiny_published, tiny_config):
    del tiny_published["backbone.convnext.1.gamma"]
    with pytest.raises(CheckpointMismatchError) as error:
        load_published(tiny_published, tiny_config, "tiny.ckpt")
    assert "tiny.ckpt" in str(error.value)
    assert "1 missing: backbone.convnext.1.gamma" in str(error.value)


def test_an_unexpected_key_is_named(tiny_published, tiny_config):
    tiny_published["backbone.convnext.7.gamma"] = torch.ones(64)
    with pytest.raises(
        CheckpointMismatchError, match=r"not in this architecture: backbone\.convnext\.7"
    ):
        load_published(tiny_published, tiny_config, "tiny.ckpt")


def test_a_wrong_shape_is_named(tiny_published, tiny_config):
    tiny_published["head.out.bias"] = torch.zeros(5)
    with pytest.raises(
        CheckpointMismatchError, match=r"head\.linear\.bias \(5,\) \(model: \(2402,\)\)"
    ):
        load_published(tiny_published, tiny_config, "tiny.ckpt")


def test_the_dac_copy_alone_is_enough(tiny_published, tiny_config):
    twin = "dacdiscriminator.discriminator."
    for key in [k for k in tiny_published if k.startswith(twin)]:
        del tiny_published[key]
    _, discriminators, _ = load_published(tiny_published, tiny_config, "tiny.ckpt")
    weight = "discriminators.0.convs.0.parametrizations.weight.original1"
    assert torch.equal(
        discriminators["dac"].state_dict()[weight],
        tiny_published["dac.discriminators.0.convs.0.0.weight_v"],
    )


def test_differing_dac_copies_are_reported(tiny_published, tiny_config, caplog):
    tiny_published["dac.discriminators.0.conv_post.bias"] = torch.full((1,), 9.0)
    with caplog.at_level(logging.WARNING, logger="training.published"):
        _, discriminators, _ = load_published(tiny_published, tiny_config, "tiny.ckpt")
    assert "dac.discriminators.0.conv_post.bias" in caplog.text
    loaded = discriminators["dac"].state_dict()["discriminators.0.output_conv.bias"]
    assert torch.equal(
        loaded, tiny_published["dacdiscriminator.discriminator.discriminators.0.conv_post.bias"]
    )


def test_conditional_discriminator_embeddings_are_picked_up(tiny_published, tiny_config):
    for index in range(5):
        tiny_published[f"multiperioddisc.discriminators.{index}.emb.weight"] = torch.randn(4, 32)
    _, discriminators, used = load_published(tiny_published, tiny_config, "tiny.ckpt")
    assert used.discriminators.mpd.n_embeddings == 4
    assert discriminators["mpd"].discriminators[0].embedding.weight.shape == (4, 32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("num_quantizers: 1", "num_quantizers: 8"), "single-codebook"),
        (("EncodecFeatures", "MelSpectrogramFeatures"), "implements EncodecFeatures only"),
        (("input_channels: 512", "input_channels: 128"), "latent size is 512"),
        (("n_fft: 2400", "n_fft: 1000"), "at least 2 × hop_length"),
    ],
)  # fmt: skip
def test_unsupported_published_yamls_are_config_errors(tmp_path, change, message):
    path = tmp_path / "config.yaml"
    path.write_text(published_yaml("40").replace(*change))
    with pytest.raises(ConfigError, match=message) as error:
        config_from_published(read_yaml(path), str(path))
    assert str(path) in str(error.value)

"""sonotype's own checkpoints: round trip, self-description, refusals with reasons."""

import collections
from pathlib import Path

import fsspec
import pytest
import torch

from sonotype.config.load import dump_config
from sonotype.errors import CheckpointMismatchError
from training import build_discriminators, load_models, load_tokenizer, save_tokenizer, unwrap
from training.checkpoint import (
    FORMAT,
    parse_tokenizer_checkpoint,
    read_checkpoint_file,
    tokenizer_payload,
    write_checkpoint_file,
)


def test_round_trip_gives_identical_outputs(tmp_path, tiny_config, tiny_generator):
    path = tmp_path / "tokenizer.pt"
    discriminators = build_discriminators(tiny_config)
    save_tokenizer(path, tiny_config, tiny_generator, discriminators, extra={"step": 42})
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer.pt"]  # no temporary left
    tokenizer = load_tokenizer(path)
    assert tokenizer.config == tiny_config
    wav = torch.randn(2, 24000 + 5)
    with torch.inference_mode():
        codes, latents = tiny_generator.encode(wav)
        audio = tiny_generator.decode(codes)
    assert torch.equal(tokenizer.encode(wav), codes)
    assert torch.equal(tokenizer.embed(wav), latents.transpose(1, 2))
    assert torch.equal(tokenizer.decode(codes), audio)


def test_the_file_describes_itself(tmp_path, tiny_config, tiny_generator):
    path = tmp_path / "tokenizer.pt"
    discriminators = build_discriminators(tiny_config)
    save_tokenizer(path, tiny_config, tiny_generator, discriminators, extra={"step": 42})
    checkpoint = parse_tokenizer_checkpoint(read_checkpoint_file(path), str(path))
    assert checkpoint.config == tiny_config
    assert checkpoint.extra == {"step": 42}
    assert sorted(checkpoint.generator) == sorted(tiny_generator.state_dict())
    assert sorted(checkpoint.discriminators) == sorted(discriminators.state_dict())
    for key, tensor in discriminators.state_dict().items():
        assert torch.equal(checkpoint.discriminators[key], tensor)


def test_load_models_returns_what_the_file_holds(tmp_path, tiny_config, tiny_generator):
    path = tmp_path / "train.pt"
    discriminators = build_discriminators(tiny_config)
    save_tokenizer(path, tiny_config, tiny_generator, discriminators, extra={"step": 7})
    models = load_models(path)
    assert models.config == tiny_config
    assert models.extra == {"step": 7}
    for key, tensor in discriminators.state_dict().items():
        assert torch.equal(models.discriminators.state_dict()[key], tensor)
    export = tmp_path / "export.pt"
    save_tokenizer(export, tiny_config, tiny_generator)
    assert load_models(export).discriminators is None


def test_wrappers_are_removed_before_saving(tmp_path, tiny_config, tiny_generator):
    compiled = torch.compile(tiny_generator)  # compiles lazily; never run here
    assert unwrap(compiled) is tiny_generator
    payload = tokenizer_payload(tiny_config, compiled)
    assert sorted(payload["generator"]) == sorted(tiny_generator.state_dict())


def test_an_inference_export_has_no_discriminators(tmp_path, tiny_config, tiny_generator):
    path = tmp_path / "export.pt"
    save_tokenizer(path, tiny_config, tiny_generator)
    payload = read_checkpoint_file(path)
    assert payload["format"] == FORMAT
    assert payload["version"] == 1
    assert payload["discriminators"] is None


def test_a_training_checkpoint_may_carry_more(tmp_path, tiny_config, tiny_generator):
    path = tmp_path / "train.pt"
    payload = tokenizer_payload(tiny_config, tiny_generator)
    payload["optimizers"] = {"generator": {"state": {}, "param_groups": []}}
    write_checkpoint_file(payload, path)
    assert load_tokenizer(path).config == tiny_config


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"weights": torch.zeros(1)}, "expected a 'sonotype-tokenizer' checkpoint"),
        ([1, 2], "found list"),
        ({"format": FORMAT, "version": 2, "model_config": {}, "generator": {}}, "version 2"),
        ({"format": FORMAT, "version": 1}, "lacks"),
        ({"format": FORMAT, "version": 1, "model_config": {"bogus": 1}, "generator": {}}, "bogus"),
    ],
)
def test_foreign_payloads_are_refused_with_the_file_name(tmp_path, payload, message):
    path = tmp_path / "other.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointMismatchError, match=message) as error:
        load_tokenizer(path)
    assert str(path) in str(error.value)


def test_weights_that_do_not_fit_are_listed(tmp_path, tiny_config, tiny_generator):
    path = tmp_path / "broken.pt"
    payload = tokenizer_payload(tiny_config, tiny_generator)
    del payload["generator"]["quantizer.embed"]
    payload["generator"]["backbone.extra.weight"] = torch.zeros(1)
    write_checkpoint_file(payload, path)
    with pytest.raises(CheckpointMismatchError) as error:
        load_tokenizer(path)
    message = str(error.value)
    assert "1 missing: quantizer.embed" in message
    assert "1 unexpected: backbone.extra.weight" in message


def test_a_contradicting_config_is_refused(tmp_path, tiny_config, tiny_generator):
    path = tmp_path / "tokenizer.pt"
    save_tokenizer(path, tiny_config, tiny_generator)
    other = tiny_config.model_copy(update={"sample_rate": 16000})
    with pytest.raises(CheckpointMismatchError, match="leave config out"):
        load_tokenizer(path, config=other)
    yaml_path = tmp_path / "same.yaml"
    yaml_path.write_text(dump_config(tiny_config))
    assert load_tokenizer(path, config=yaml_path).config == tiny_config


class _Pickled:
    """Not a tensor or a plain container: weights_only loading must refuse it."""


def test_pickled_objects_are_never_unpickled(tmp_path):
    path = tmp_path / "unsafe.pt"
    torch.save({"format": FORMAT, "payload": _Pickled()}, path)
    with pytest.raises(CheckpointMismatchError, match="not a readable weights-only"):
        read_checkpoint_file(path)


def test_ordered_dicts_from_state_dict_are_fine(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(collections.OrderedDict(a=torch.ones(2)), path)
    assert torch.equal(read_checkpoint_file(path)["a"], torch.ones(2))


def test_missing_and_garbage_files_are_named(tmp_path: Path):
    with pytest.raises(CheckpointMismatchError, match="not found"):
        read_checkpoint_file(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint\n" * 4)
    with pytest.raises(CheckpointMismatchError, match=r"garbage\.pt: not a readable"):
        read_checkpoint_file(garbage)


def test_checkpoints_can_live_behind_an_fsspec_url(tiny_config, tiny_generator):
    url = "memory://sonotype-tests/checkpoints/tokenizer.pt"
    save_tokenizer(url, tiny_config, tiny_generator)
    try:
        tokenizer = load_tokenizer(url)
    finally:
        fsspec.filesystem("memory").rm("/sonotype-tests", recursive=True)
    assert tokenizer.config == tiny_config
    assert torch.equal(tokenizer.generator.quantizer.embed, tiny_generator.quantizer.embed)

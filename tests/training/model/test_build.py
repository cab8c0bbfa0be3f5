"""Both published sizes: parameter counts and key/shape layout against the reference key lists."""

import math

import pytest
import torch

from tests.training.conftest import preset
from tests.training.published_layout import reference_layout
from training.model import Discriminators, Generator, build_discriminators, build_generator
from training.published import IGNORED_PREFIXES, published_key_map


@pytest.fixture(scope="module", params=["40", "75"])
def published_model(request) -> tuple[str, Generator, Discriminators]:
    config = preset(f"wavtokenizer-{request.param}")
    return request.param, build_generator(config).eval(), build_discriminators(config)


def _elements(layout: dict[str, tuple[int, ...]], prefix: str) -> int:
    return sum(math.prod(shape) for key, shape in layout.items() if key.startswith(prefix))


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_module_sizes_equal_the_published_tensors(published_model):
    variant, generator, discriminators = published_model
    layout = reference_layout(variant)
    assert _parameters(generator.encoder) == _elements(layout, "feature_extractor.encodec.encoder.")
    assert _parameters(generator.backbone) == _elements(layout, "backbone.")
    assert _parameters(generator.head) == _elements(layout, "head.out.")
    codebook = sum(buffer.numel() for buffer in generator.quantizer.buffers())
    assert codebook == _elements(layout, "feature_extractor.encodec.quantizer.")
    assert _parameters(discriminators["mpd"]) == _elements(layout, "multiperioddisc.")
    assert _parameters(discriminators["mrd"]) == _elements(layout, "multiresddisc.")
    assert _parameters(discriminators["dac"]) == _elements(layout, "dacdiscriminator.")


def test_generators_are_about_72_million_parameters(published_model):
    variant, generator, _ = published_model
    layout = reference_layout(variant)
    in_use = sum(
        _elements(layout, prefix)
        for prefix in ("feature_extractor.encodec.encoder.", "backbone.", "head.out.")
    )
    assert _parameters(generator) == in_use
    assert 71_500_000 < in_use < 72_500_000


def test_every_published_key_and_shape_maps_one_to_one(published_model):
    variant, generator, discriminators = published_model
    expected = {
        key: shape
        for key, shape in reference_layout(variant).items()
        if not key.startswith((*IGNORED_PREFIXES, "dac."))  # dac.* is the duplicate copy
    }
    key_map = published_key_map(generator, discriminators)
    ours = {**generator.state_dict(), **discriminators.state_dict()}
    mapped = {key_map[key]: tuple(tensor.shape) for key, tensor in ours.items()}
    assert len(set(key_map.values())) == len(key_map)
    assert mapped == expected


def test_published_generators_give_f_frames_and_f_hop_samples(published_model):
    variant, generator, _ = published_model
    hop = {"40": 600, "75": 320}[variant]
    n_samples = 24000 + 123  # not a multiple of either hop
    with torch.no_grad():
        out = generator(torch.randn(1, n_samples))
    n_frames = math.ceil(n_samples / hop)
    assert out.codes.shape == (1, n_frames)
    assert out.latents.shape == (1, 512, n_frames)
    assert out.audio.shape == (1, n_frames * hop)

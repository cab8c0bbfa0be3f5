"""Fixtures of the model tests: seeded torch, the tiny model with a usable codebook."""

import pytest
import torch

from sonotype.config.load import CONFIGS_DIR, load_config
from sonotype.config.model import ModelConfig
from training.model import Generator, build_generator


@pytest.fixture(autouse=True)
def deterministic_torch():
    """Seed torch's global generator and restore its state afterwards."""
    state = torch.random.get_rng_state()
    torch.manual_seed(0)
    yield
    torch.random.set_rng_state(state)


def preset(name: str) -> ModelConfig:
    """A model preset from configs/model/."""
    return load_config(ModelConfig, CONFIGS_DIR / "model" / f"{name}.yaml")


def seed_codebook(generator: Generator, seed: int = 0) -> None:
    """Initialise the codebook from encoder outputs of noise, so codes are not all zero."""
    size = generator.quantizer.codebook_size
    noise = torch.randn(
        4, size * generator.hop_length // 4 + 1, generator=torch.Generator().manual_seed(seed)
    )
    with torch.no_grad():
        latents = generator.encoder(0.3 * noise)  # [4, D, >= K / 4 frames]
    vectors = latents.transpose(1, 2).reshape(-1, latents.shape[1])[:size]
    generator.quantizer.initialize(vectors.clone(), torch.ones(size))


@pytest.fixture(scope="module")
def tiny_config() -> ModelConfig:
    return preset("tiny")


@pytest.fixture(scope="module")
def tiny_generator(tiny_config: ModelConfig) -> Generator:
    """The tiny generator, seeded weights and codebook, in eval mode (do not modify)."""
    with torch.random.fork_rng():
        torch.manual_seed(1)
        generator = build_generator(tiny_config)
    seed_codebook(generator)
    return generator.eval()

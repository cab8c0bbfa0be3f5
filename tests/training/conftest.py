"""Fixtures of the model tests: seeded torch, the tiny model with a usable codebook."""

import pytest
import torch

from sonotype.config.load import CONFIGS_DIR, load_config
from sonotype.config.model import ModelConfig
from training.model import Generator, build_generator


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared 2-core machine a second OpenMP thread spinning
    against other processes makes small convolutions some 30 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


def seed_codebook(generator: Generator, seed: int = 1234) -> None:
    """Initialise the codebook from encoder outputs of noise, so codes are not all zero."""
    size = generator.quantizer.codebook_size
    noise = torch.randn(
        4, size * generator.hop_length // 4 + 1, generator=torch.Generator().manual_seed(seed)
    )
    with torch.no_grad():
        latents = generator.encoder(0.3 * noise)  # [4, D, >= K / 4 frames]
    vectors = latents.transpose(1, 2).reshape(-1, latents.shape[1])[:size]
    generator.quantizer.initialize(vectors.clone(), torch.ones(size))


def assert_nearest_codes(
    codes: torch.Tensor, embeddings: torch.Tensor, codebook: torch.Tensor
) -> None:
    """Every code is a nearest codebook vector of its embedding `[B, F, D]`, up to rounding.

    An untrained encoder's outputs crowd together, so two codes can be equally near within
    float rounding; which one wins then depends on how the distance product was blocked.
    """
    distances = torch.cdist(embeddings.reshape(-1, embeddings.shape[-1]), codebook)
    chosen = distances.gather(1, codes.reshape(-1, 1))
    nearest = distances.min(dim=1, keepdim=True).values
    assert float((chosen - nearest).max()) <= 1e-5


def record_lengths(monkeypatch: pytest.MonkeyPatch, owner: object, method: str) -> list[int]:
    """Wrap `owner.method` so every call records the last dimension of its first argument."""
    seen: list[int] = []
    original = getattr(owner, method)

    def recording(x: torch.Tensor, *args, **kwargs):
        seen.append(x.shape[-1])
        return original(x, *args, **kwargs)

    monkeypatch.setattr(owner, method, recording)
    return seen


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


@pytest.fixture(scope="session")
def soundscape_out(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Three shards (4, 4 and 3 segments of 2 s) of 24 kHz synthetic soundscapes (read-only)."""
    from tests.training.soundscape_shards import write_soundscape_out

    return write_soundscape_out(tmp_path_factory.mktemp("soundscape-out"), (4, 4, 3), 2.0)
